//! A small loopback fixture: an issuer issues two transcripts on its
//! embedded registry (the second revoked), the registry is served on a free
//! loopback port, and a verifier is set up against it.
//!
//! The transcripts come from `tests/support/university.rs`, which the
//! HTTP load bench shares. `serve` below runs a router until the runtime
//! stops; `vouch_registry::testkit::serve_router` is the stoppable one, and
//! these tests have not moved to it yet.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use vouch_core::{AnchorProof, ClaimPath, DidKey, SdJwt};
use vouch_issuer::issuer::{self, Issuer, Quiet};
use vouch_issuer::keystore::Cost;
use vouch_registry::node::Node;
use vouch_verifier::{NodePin, PolicyFile, Verifier};

use crate::university;

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("vouch-ver-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Serves `router` on a free loopback port until the runtime stops.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

pub const AUD: &str = "https://hr.example.com";

/// An issued pair of transcripts on a served registry.
pub struct Fixture {
    pub root: TempDir,
    /// The registry's base URL.
    pub url: String,
    pub node_vkey: String,
    /// Holder keys: 0's credential is valid, 1's revoked, 2's suspended.
    pub holders: Vec<SigningKey>,
    /// The credentials, by holder.
    pub credentials: Vec<SdJwt>,
    /// Their anchor proofs, by holder.
    pub proofs: Vec<AnchorProof>,
    /// Holder 0's transcript whose validity ended when it was issued
    /// (`exp` = `iat`): expired under a policy with `leeway = 0`.
    pub expired: SdJwt,
}

impl Fixture {
    pub async fn new(name: &str) -> Self {
        let root = TempDir::new(name);
        let dir = root.path().join("university");
        let holders: Vec<SigningKey> = (0..3u8)
            .map(|i| SigningKey::from_bytes(&[40 + i; 32]))
            .collect();
        let out = root.path().join("credentials");
        {
            let (iss, template, csv) = university::issue_transcripts(&dir, &out, &holders, 6).await;
            // The second revoked (1), the third suspended (2).
            for (prefix, value) in [("000002-", 1), ("000003-", 2)] {
                let text = std::fs::read_to_string(file_of(&out, prefix)).unwrap();
                let (uri, idx) = issuer::status_of_credential(&text, iss.did()).unwrap();
                iss.set_status(&uri, idx, value).await.unwrap();
            }
            // One more for holder 0, valid for 0 days: it expires the
            // second it is issued, for a verifier that tolerates no clock
            // skew (`leeway = 0`).
            let mut brief = template;
            brief.valid_days = Some(0);
            let one = csv.lines().take(2).collect::<Vec<_>>().join("\n") + "\n";
            let (rows, errors) = vouch_issuer::input::parse(one.as_bytes(), &brief).unwrap();
            assert!(errors.is_empty());
            let id = issuer::batch_id(&brief, one.as_bytes(), false);
            iss.issue(
                &brief,
                &id,
                &rows,
                &root.path().join("brief"),
                false,
                &Quiet,
            )
            .await
            .unwrap();
        }
        let expired = SdJwt::parse(
            &std::fs::read_to_string(file_of(&root.path().join("brief"), "000001-")).unwrap(),
        )
        .unwrap();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
        let by_file: HashMap<String, AnchorProof> = manifest["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["file"].as_str().unwrap().to_owned(),
                    serde_json::from_value(c["anchor_proof"].clone()).unwrap(),
                )
            })
            .collect();
        let mut credentials = Vec::new();
        let mut proofs = Vec::new();
        for prefix in ["000001-", "000002-", "000003-"] {
            let path = file_of(&out, prefix);
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            credentials.push(SdJwt::parse(&std::fs::read_to_string(&path).unwrap()).unwrap());
            proofs.push(by_file[&name].clone());
        }
        let node = Arc::new(Node::open(&dir.join("registry")).unwrap());
        let node_vkey = node.vkey();
        let url = serve(vouch_registry::api::app(node).unwrap()).await;
        Self {
            root,
            url,
            node_vkey,
            holders,
            credentials,
            proofs,
            expired,
        }
    }

    /// A verifier in `<root>/<name>` trusting the node, synced.
    pub async fn verifier(&self, name: &str) -> Verifier {
        self.verifier_with(name, None).await
    }

    /// A verifier in `<root>/<name>` under `policy`, synced.
    pub async fn verifier_with(&self, name: &str, policy: Option<PolicyFile>) -> Verifier {
        let dir = self.root.path().join(name);
        Verifier::init(
            &dir,
            &self.url,
            NodePin::Key(self.node_vkey.clone()),
            Some(AUD.into()),
        )
        .await
        .unwrap();
        let mut v = Verifier::open(&dir, policy).unwrap();
        v.sync(None).await.unwrap();
        v
    }

    /// A transcript for holder `i` from an issuer this registry never
    /// heard of (its own embedded registry).
    pub async fn stranger_credential(&self, i: usize) -> SdJwt {
        let dir = self.root.path().join("stranger");
        issuer::init(&dir, "Diploma Mill", None, "pw", Cost::TEST).unwrap();
        let csv = format!(
            "holder,institution,student_name,student_id,programme,degree,award_date,gpa,courses\n\
             {},Diploma Mill,Student,S1,Anything,PhD,2025-07-15,4.00,\"X1|Course|6|A|2025-S1\"\n",
            DidKey::from_public_key(&self.holders[i].verifying_key()).as_str()
        );
        let template = vouch_issuer::template::find("transcript").unwrap();
        let (rows, _) = vouch_issuer::input::parse(csv.as_bytes(), &template).unwrap();
        let out = dir.join("out");
        let iss = Issuer::open(&dir, "pw").unwrap();
        let id = issuer::batch_id(&template, csv.as_bytes(), false);
        iss.issue(&template, &id, &rows, &out, false, &Quiet)
            .await
            .unwrap();
        SdJwt::parse(&std::fs::read_to_string(file_of(&out, "000001-")).unwrap()).unwrap()
    }

    /// Holder `i`'s presentation of three courses for `aud` and `nonce`.
    pub fn present(&self, i: usize, aud: &str, nonce: &str) -> String {
        self.present_credential(&self.credentials[i], i, aud, nonce)
    }

    /// Holder `i`'s presentation of `credential`: the courses it has among
    /// the first six, three of them.
    pub fn present_credential(
        &self,
        credential: &SdJwt,
        i: usize,
        aud: &str,
        nonce: &str,
    ) -> String {
        let disclose: Vec<ClaimPath> = ["/courses/0", "/courses/2", "/courses/5"]
            .iter()
            .map(|p| ClaimPath::parse(p).unwrap())
            .collect();
        let disclose = match credential.present(&disclose) {
            Ok(p) => p,
            Err(_) => credential
                .present(&[ClaimPath::parse("/courses/0").unwrap()])
                .unwrap(),
        };
        disclose
            .bind(&self.holders[i], aud, nonce, vouch_verifier::now())
            .serialize()
    }
}

fn file_of(dir: &Path, prefix: &str) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(prefix) && name.ends_with(".sd-jwt")
        })
        .unwrap()
}

/// Uploads `plaintext` to the registry's relay at `url`, encrypted: the
/// link.
pub async fn upload(url: &str, plaintext: &str) -> String {
    let key = [0x5au8; 32];
    let jwe = vouch_verifier::relay::seal(plaintext, &key).unwrap();
    let reply: serde_json::Value = reqwest::Client::new()
        .put(format!("{url}/v1/relay?ttl=600"))
        .body(jwe)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    vouch_verifier::relay::link(url, reply["id"].as_str().unwrap(), &key)
}

/// `text` with one character of its `part`-th `~`-separated part's
/// signature changed (in `s`, which stays canonical; part 0 is the issuer
/// JWT, the last the KB-JWT).
pub fn broken_signature(text: &str, part: usize) -> String {
    let mut parts: Vec<String> = text.split('~').map(str::to_owned).collect();
    let mut jws: Vec<char> = parts[part].chars().collect();
    let at = jws.len() - 10;
    jws[at] = if jws[at] == 'A' { 'B' } else { 'A' };
    parts[part] = jws.into_iter().collect();
    parts.join("~")
}

/// What a verifier asks of a presentation answering `request`: its nonce.
pub fn ask(request: &vouch_core::presentation_request::PresentationRequest) -> vouch_verifier::Ask {
    vouch_verifier::Ask {
        aud: None,
        nonce: Some(request.nonce().to_owned()),
    }
}

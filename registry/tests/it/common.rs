use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::chain::{Action, Entry, ListUri};
use vouch_core::status_list::{StatusList, StatusListClaims};
use vouch_core::DidKey;
use vouch_registry::node::{Node, NodeConfig};
use vouch_registry::{api, keys, now};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("vouch-reg-{name}-{}-{n}", std::process::id()));
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

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn did(k: &SigningKey) -> String {
    DidKey::from_public_key(&k.verifying_key())
        .as_str()
        .to_owned()
}

/// Initialises a node in `dir` that accepts these witnesses.
pub fn init_node(dir: &Path, witnesses: Vec<String>, need: usize) -> SigningKey {
    let config = NodeConfig {
        origin: "test.example/registry".into(),
        witnesses,
        need,
    };
    Node::init(dir, config, now(), &mut StdRng::seed_from_u64(7)).unwrap();
    keys::read(&dir.join("authority.key")).unwrap()
}

/// Serves `node` on a free loopback port; the server stops with the runtime.
pub async fn serve(node: Arc<Node>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = api::app(node).unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}")
}

pub fn accredit(authority: &SigningKey, seq: u64, issuer: &SigningKey, kinds: &[&str]) -> Entry {
    Entry::sign(
        authority,
        seq,
        now(),
        Action::Accredit {
            issuer: did(issuer),
            name: "Test University".into(),
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
        },
    )
}

/// The status list of `key(2)`, the issuer every test accredits.
pub fn uni_list() -> String {
    ListUri::format("http://registry.test", &did(&key(2)), "1")
}

pub fn anchor(issuer: &SigningKey, seq: u64, n: u64) -> Entry {
    Entry::sign(
        issuer,
        seq,
        now(),
        Action::Anchor {
            list: uni_list(),
            root: format!("{:064x}", n + 1),
            count: 2,
            first: n * 10,
            last: n * 10 + 9,
        },
    )
}

pub fn status(issuer: &SigningKey, seq: u64, sequence: u64, list: &str, revoked: &[u64]) -> Entry {
    let mut l = StatusList::new(1, 1024).unwrap();
    for &i in revoked {
        l.set(i, 1).unwrap();
    }
    let token = StatusListClaims {
        sub: list.into(),
        iss: Some(did(issuer)),
        iat: now(),
        exp: None,
        ttl: Some(60),
        list: l,
    }
    .sign(
        &DidKey::from_public_key(&issuer.verifying_key()).verification_method(),
        issuer,
    );
    Entry::sign(
        issuer,
        seq,
        now(),
        Action::Status {
            list: list.into(),
            sequence,
            token: token.as_str().to_owned(),
        },
    )
}

/// Serves `router` on a free loopback port through the library's
/// [`vouch_registry::serve()`] under `limits`, until `shutdown` completes;
/// returns the base URL and the server task.
pub async fn serve_router_until(
    router: axum::Router,
    limits: vouch_registry::ServeLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (String, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let task = tokio::spawn(vouch_registry::serve(listener, router, limits, shutdown));
    (format!("http://{addr}"), task)
}

/// [`serve_router_until`] that runs until the runtime stops.
pub async fn serve_router(router: axum::Router, limits: vouch_registry::ServeLimits) -> String {
    serve_router_until(router, limits, std::future::pending())
        .await
        .0
}

//! Writes Vouch's own outputs as seed inputs for the fuzz targets in fuzz/:
//! credentials and presentations from the sample transcript, their QR
//! envelopes, chain entries of every kind, signed and cosigned checkpoints,
//! Status List Tokens (with the lists of tests/vectors/status-list), and
//! did:keys. Deterministic: the same files every run.
//!
//! `cargo run -p vouch-core --example fuzz_seeds -- fuzz/corpus` (scripts/fuzz
//! seed does this and adds the published vectors from tests/vectors).
//! The keys, clock, audience and nonce are the ones fuzz/src/core_checks.rs
//! verifies with, so the seed presentations pass every check there.

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::chain::{Action, Entry};
use vouch_core::did::DidKey;
use vouch_core::envelope;
use vouch_core::jws::PublicKey;
use vouch_core::log::{self, Block, Hash};
use vouch_core::sample;
use vouch_core::status_list::{EncodedStatusList, StatusList, StatusListClaims, StatusRef};
use vouch_core::vc::{self, CredentialRequest, IssuerKey};
use vouch_core::ClaimPath;

const NOW: i64 = 1_780_000_000;
const AUD: &str = "https://hr.example.com";
const NONCE: &str = "n-0S6_WzA2Mj";
const ORIGIN: &str = "fuzz.example/registry";
const WITNESS: &str = "fuzz.example/witness";
const LIST: &str = "https://registry.example/status/1";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: fuzz_seeds CORPUS_DIR")?,
    );
    let issuer = IssuerKey::new(SigningKey::from_bytes(&[0x11; 32]));
    let holder = SigningKey::from_bytes(&[0x22; 32]);
    let witness = SigningKey::from_bytes(&[0x33; 32]);

    // Credentials and presentations.
    let mut plain = Vec::new();
    let mut bound = Vec::new();
    for (n, (sd_paths, decoys)) in [
        (&["/courses/0", "/courses/4", "/courses/7"][..], 0),
        (&["/student_name", "/gpa"][..], 2),
        (&[][..], 0),
        (&["/courses/11", "/degree", "/award_date"][..], 4),
    ]
    .into_iter()
    .enumerate()
    {
        let mut concealment = sample::transcript_concealment();
        concealment.max_decoys = decoys;
        let request = CredentialRequest {
            vct: sample::TRANSCRIPT_VCT.into(),
            iat: NOW - 86_400,
            exp: Some(NOW + 365 * 86_400),
            holder: PublicKey::Ed25519(holder.verifying_key()),
            status: Some(StatusRef {
                idx: 4711 + n as u64,
                uri: LIST.into(),
            }),
            claims: sample::transcript_claims(n as u64),
            concealment,
        };
        let credential = vc::issue(request, &issuer, &mut StdRng::seed_from_u64(n as u64))?;
        let paths: Vec<ClaimPath> = sd_paths
            .iter()
            .map(|p| ClaimPath::parse(p))
            .collect::<std::result::Result<_, _>>()?;
        let presented = credential.present(&paths)?;
        plain.push(credential.serialize());
        plain.push(presented.serialize());
        bound.push(presented.bind(&holder, AUD, NONCE, NOW).serialize());
    }
    write_all(&out.join("sd_jwt_compact"), "vouch", &plain)?;
    write_all(&out.join("sd_jwt_compact"), "vouch-kb", &bound[..1])?;
    write_all(&out.join("sd_jwt_kb"), "vouch", &bound)?;
    let envelopes: Vec<String> = bound
        .iter()
        .chain(&plain[..2])
        .map(|p| envelope::encode(p))
        .collect::<std::result::Result<_, _>>()?;
    write_all(&out.join("envelope"), "vouch", &envelopes)?;

    // Chain entries: one of each kind, in an order a chain accepts.
    let authority = SigningKey::from_bytes(&[0x44; 32]);
    let did = |k: &SigningKey| {
        DidKey::from_public_key(&k.verifying_key())
            .as_str()
            .to_owned()
    };
    let entries = [
        Entry::sign(
            &authority,
            0,
            NOW,
            Action::Genesis {
                origin: ORIGIN.into(),
                authorities: vec![did(&authority)],
            },
        ),
        Entry::sign(
            &authority,
            1,
            NOW + 1,
            Action::Accredit {
                issuer: issuer.did().as_str().into(),
                name: "University of Example".into(),
                kinds: vec!["transcript".into(), "employment".into()],
            },
        ),
        Entry::sign(
            issuer.signing_key(),
            0,
            NOW + 2,
            Action::Anchor {
                list: LIST.into(),
                root: "ab".repeat(32),
                count: 4,
                first: 4711,
                last: 4714,
            },
        ),
        Entry::sign(
            issuer.signing_key(),
            1,
            NOW + 3,
            Action::Status {
                list: LIST.into(),
                sequence: 1,
                token: status_token(&issuer, StatusList::new(1, 8192)?)?,
            },
        ),
        Entry::sign(
            &authority,
            2,
            NOW + 4,
            Action::Withdraw {
                issuer: issuer.did().as_str().into(),
                reason: "fuzz seed".into(),
            },
        ),
        Entry::sign(
            &authority,
            3,
            NOW + 5,
            Action::rotate_key(ORIGIN, &did(&authority), &witness, 3),
        ),
    ];
    let lines: Vec<String> = entries
        .iter()
        .map(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
        .collect();
    write_all(&out.join("chain_entry"), "vouch", &lines)?;
    write_all(&out.join("chain_entry"), "vouch-chain", &[lines.join("\n")])?;
    // A hand-made entry by the small-order (identity) key with R = identity
    // and s = 0: the Ed25519 equation holds, but a strict check refuses it;
    // the single and batch signature checks must agree.
    let weak = ed25519_dalek::VerifyingKey::from_bytes(&{
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    })?;
    let mut weak_sig = [0u8; 64];
    weak_sig[0] = 1;
    let template = &entries[5];
    let text = String::from_utf8_lossy(template.as_bytes())
        .replace(
            template.author().as_str(),
            DidKey::from_public_key(&weak).as_str(),
        )
        .replace(
            &vouch_core::b64::encode(template_sig(template)),
            &vouch_core::b64::encode(weak_sig),
        );
    write_all(&out.join("chain_entry"), "vouch-weak-key", &[text])?;

    // Blocks as checkpoints and signed notes.
    let node = issuer.signing_key();
    let genesis = Block {
        origin: ORIGIN.into(),
        height: 0,
        time: NOW,
        prev: Hash([0; 32]),
        size: 1,
        root: Hash([7; 32]),
    };
    let next = Block {
        height: 1,
        time: NOW + 60,
        prev: genesis.hash(),
        size: 6,
        root: Hash([9; 32]),
        ..genesis.clone()
    };
    let mut notes = Vec::new();
    for block in [&genesis, &next] {
        notes.push(block.body());
        let signed = log::sign_block(block, node)?;
        let cosigned = log::cosign(&signed, WITNESS, &witness, NOW as u64 + 61)?;
        notes.push(format!("{signed}\0{cosigned}"));
        notes.push(signed);
        notes.push(cosigned);
    }
    notes.push(log::node_vkey(ORIGIN, &node.verifying_key()));
    notes.push(log::witness_vkey(WITNESS, &witness.verifying_key()));
    write_all(&out.join("checkpoint"), "vouch", &notes)?;

    // Status List Tokens with the published lists, and the lists alone.
    let mut tokens = Vec::new();
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/status-list");
    for name in [
        "status_list_encoding_json.md",
        "status_list_encoding2_json.md",
        "status_list_encoding1_long_json.md",
    ] {
        let text = fs::read_to_string(vectors.join(name))?;
        // The JSON object, its long `lst` wrapped over lines in the draft.
        let json: String = text
            .get(text.find('{').ok_or("no JSON object")?..)
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let encoded: EncodedStatusList = serde_json::from_str(&json)?;
        tokens.push(serde_json::to_string(&encoded)?);
        tokens.push(status_token(&issuer, StatusList::decode(&encoded)?)?);
    }
    let mut list = StatusList::new(2, 64)?;
    list.set(3, 1)?;
    list.set(63, 2)?;
    tokens.push(status_token(&issuer, list)?);
    write_all(&out.join("status_list"), "vouch", &tokens)?;

    // did:keys and verification methods.
    let mut dids = Vec::new();
    for seed in [0x11u8, 0x22, 0x33, 0x44, 0x00, 0xff] {
        let d = DidKey::from_public_key(&SigningKey::from_bytes(&[seed; 32]).verifying_key());
        dids.push(d.as_str().to_owned());
        dids.push(d.verification_method());
    }
    write_all(&out.join("did_key"), "vouch", &dids)?;

    // Relay uploads: query line, id line ("-": the id the upload returned),
    // then the blob.
    let relay = [
        format!("ttl=60\n-\n{}", envelopes[0]),
        "ttl=600&once=false\n-\nsealed box".to_owned(),
        format!("once=true\n{}\nx", "0".repeat(32)),
        "ttl=0\nnothex\n".to_owned(),
    ];
    write_all(&out.join("relay"), "vouch", &relay)?;
    Ok(())
}

/// The signature bytes of an entry, from its canonical JSON.
fn template_sig(entry: &Entry) -> Vec<u8> {
    let wire: serde_json::Value = serde_json::from_slice(entry.as_bytes()).unwrap_or_default();
    vouch_core::b64::decode(wire["sig"].as_str().unwrap_or_default()).unwrap_or_default()
}

fn status_token(issuer: &IssuerKey, list: StatusList) -> Result<String> {
    let claims = StatusListClaims {
        sub: LIST.into(),
        iss: Some(issuer.did().as_str().into()),
        iat: NOW,
        exp: Some(NOW + 86_400),
        ttl: Some(300),
        list,
    };
    Ok(claims
        .sign(&issuer.did().verification_method(), issuer.signing_key())
        .as_str()
        .to_owned())
}

fn write_all(dir: &Path, prefix: &str, items: &[impl AsRef<[u8]>]) -> Result<()> {
    fs::create_dir_all(dir)?;
    for (i, item) in items.iter().enumerate() {
        fs::write(dir.join(format!("{prefix}-{i:02}")), item)?;
    }
    Ok(())
}

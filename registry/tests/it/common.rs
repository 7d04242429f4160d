use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use vouch_core::chain::{Action, Entry, ListUri};
use vouch_core::status_list::{StatusList, StatusListClaims};
use vouch_core::DidKey;
use vouch_registry::node::Node;
use vouch_registry::{now, testkit};

pub use tempfile::TempDir;
pub use vouch_registry::testkit::TestServer;

/// The real `vouch-registry` binary.
pub const BIN: &str = env!("CARGO_BIN_EXE_vouch-registry");

/// Runs `vouch-registry COMMAND --dir DIR` to its end; panics with its
/// output unless it succeeds. Returns its standard output.
pub fn run_on_dir(command: &str, dir: &Path) -> String {
    let out = std::process::Command::new(BIN)
        .args([command, "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "vouch-registry {command} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Trust in `node` alone: its key, no witnesses.
pub fn trust_alone(node: &Node) -> vouch_registry::replica::Trust {
    vouch_registry::replica::Trust {
        node_vkey: node.vkey(),
        witnesses: vec![],
        need: 0,
    }
}

/// A temporary directory named after the test, removed when dropped.
pub fn tempdir(name: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(&format!("vouch-reg-{name}-"))
        .tempdir()
        .unwrap()
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
    testkit::init_node(dir, witnesses, need).unwrap()
}

/// Serves `node` on a free loopback port until the server is dropped.
pub async fn serve(node: Arc<Node>) -> TestServer {
    testkit::serve_node(node).await.unwrap()
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
/// [`vouch_registry::serve_router`] under `limits`, until the server is
/// dropped or stopped.
pub async fn serve_router(router: axum::Router, limits: vouch_registry::ServeLimits) -> TestServer {
    testkit::serve_router(router, limits).await.unwrap()
}

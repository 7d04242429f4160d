//! What a witness checks before it cosigns, and how it is configured: block
//! times, a pinned node key, and the quorum `init` accepts; `verify` pins a
//! replica's node key the same way.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::log::{self, Block};
use vouch_registry::node::Node;
use vouch_registry::replica::ReplicaError;
use vouch_registry::witness::{Witness, WitnessError, BLOCK_CLOCK_SKEW};
use vouch_registry::{keys, now};

use crate::common::*;

fn witness(dir: &Path) -> Witness {
    Witness::open(dir, Some("w"), &mut StdRng::seed_from_u64(5)).unwrap()
}

/// A node that accepts witness `w`'s cosignatures (1 of 1), with one entry
/// after genesis not yet sealed.
fn node_for(dir: &Path, w: &Witness) -> Node {
    let authority = init_node(dir, vec![w.vkey()], 1);
    let node = Node::open(dir).unwrap();
    node.submit(
        accredit(&authority, 1, &key(2), &["transcript"]).as_bytes(),
        now(),
    )
    .unwrap();
    node
}

fn refused_block(err: &WitnessError) -> String {
    match err {
        WitnessError::Refused(ReplicaError::BadBlock { reason, .. }) => reason.to_string(),
        other => panic!("expected a refused block, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_refuses_a_block_from_the_future() {
    let root = tempdir("witness-future");
    let mut w = witness(&root.path().join("w"));
    let node = Arc::new(node_for(&root.path().join("node"), &w));
    let clock = now();
    node.seal(clock + BLOCK_CLOCK_SKEW + 60).unwrap().unwrap();
    let server = serve(node.clone()).await;
    let client = server.client();
    w.pin_node(&node.vkey()).unwrap();

    let err = w.round_at(&client, clock).await.unwrap_err();
    assert!(refused_block(&err).contains("ahead"), "{err}");
    assert!(err.to_string().contains("REFUSING TO COSIGN"), "{err}");
    let stored = node.block(1).unwrap().unwrap();
    assert!(
        node.policy().verify(stored.as_bytes()).is_err(),
        "the block was cosigned"
    );
    // Within the skew of the witness's clock, it is cosigned.
    let (height, by) = w.round_at(&client, clock + 60).await.unwrap().unwrap();
    assert_eq!((height, by), (1, vec!["w".to_string()]));
}

#[test]
fn a_witness_refuses_a_block_whose_time_goes_back() {
    let root = tempdir("witness-back");
    let dir = root.path().join("node");
    let mut w = witness(&root.path().join("w"));
    let first = {
        let node = node_for(&dir, &w);
        node.seal(now()).unwrap().unwrap();
        node.head()
    };
    {
        // The witness cosigns block 1. The node is served on a runtime of
        // its own, so that dropping the runtime stops the server and closes
        // the node's store.
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let node = Arc::new(Node::open(&dir).unwrap());
            let server = serve(node.clone()).await;
            let client = server.client();
            w.pin_node(&node.vkey()).unwrap();
            w.round(&client).await.unwrap().unwrap();
        });
    }
    {
        // One more entry, then a block 2 whose time is before block 1's,
        // signed with the node's key as a misbehaving node would.
        let node = Node::open(&dir).unwrap();
        node.submit(anchor(&key(2), 0, 0).as_bytes(), now())
            .unwrap();
        let size = node.size();
        let back = Block {
            origin: first.origin.clone(),
            height: 2,
            time: first.time - 100,
            prev: first.hash(),
            size,
            root: node.store().root(size).unwrap(),
        };
        let node_key = keys::read(&dir.join("node.key")).unwrap();
        let note = log::sign_block(&back, &node_key).unwrap();
        node.store().put_block(2, &note, true).unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let node = Arc::new(Node::open(&dir).unwrap());
        assert_eq!(node.head().height, 2);
        let server = serve(node.clone()).await;
        let client = server.client();
        let err = w.round(&client).await.unwrap_err();
        assert!(refused_block(&err).contains("goes back"), "{err}");
        let stored = node.block(2).unwrap().unwrap();
        assert!(node.policy().verify(stored.as_bytes()).is_err());
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_follows_only_a_pinned_node_key_or_explicit_first_use() {
    let root = tempdir("witness-pin");
    let mut w = witness(&root.path().join("w"));
    let node = Arc::new(node_for(&root.path().join("node"), &w));
    node.seal(now()).unwrap().unwrap();
    let server = serve(node.clone()).await;
    let client = server.client();

    let err = w.round(&client).await.unwrap_err();
    assert!(err.to_string().contains("--node-key"), "{err}");
    assert_eq!(w.node_vkey(), None, "a refused round pinned the key");
    let other = log::node_vkey("test.example/registry", &key(9).verifying_key());
    w.trust_on_first_use();
    assert_eq!(w.round(&client).await.unwrap().unwrap().0, 1);
    assert_eq!(w.node_vkey(), Some(node.vkey().as_str()));
    // Once pinned, another key is refused, even with first use allowed.
    assert!(w.pin_node(&other).is_err());
    w.pin_node(&node.vkey()).unwrap();
    assert!(w.pin_node("not a key").is_err());
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_witness_command_needs_a_node_key_or_trust_on_first_use() {
    let root = tempdir("witness-cli");
    let wdir = root.path().join("w");
    let w = witness(&wdir);
    let node = Arc::new(node_for(&root.path().join("node"), &w));
    drop(w);
    node.seal(now()).unwrap().unwrap();
    let server = serve(node.clone()).await;
    let url = server.url().to_owned();
    let wdir_s = wdir.to_str().unwrap().to_owned();
    let vkey = node.vkey();
    let other = log::node_vkey("test.example/registry", &key(9).verifying_key());
    let (none, right, wrong, again) = tokio::task::spawn_blocking(move || {
        let base = ["witness", "--dir", &wdir_s, "--registry", &url, "--once"];
        let with = |extra: &[&str]| run(&[&base[..], extra].concat());
        (
            with(&[]),
            with(&["--node-key", &vkey]),
            with(&["--node-key", &other]),
            with(&[]),
        )
    })
    .await
    .unwrap();
    assert!(!none.status.success());
    assert!(text(&none).contains("--node-key"), "{}", text(&none));
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert!(right.status.success(), "{}", text(&right));
    assert!(
        again.status.success(),
        "the pinned key is kept: {}",
        text(&again)
    );
    let signed = node
        .policy()
        .verify(node.block(1).unwrap().unwrap().as_bytes())
        .unwrap();
    assert_eq!(signed.cosigned_by, vec!["w".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verify_command_needs_a_node_key_or_trust_on_first_use() {
    let root = tempdir("verify-cli");
    let w = witness(&root.path().join("w"));
    let node = Arc::new(node_for(&root.path().join("node"), &w));
    node.seal(now()).unwrap().unwrap();
    let server = serve(node.clone()).await;
    let url = server.url().to_owned();
    let vkey = node.vkey();
    let other = log::node_vkey("test.example/registry", &key(9).verifying_key());
    let dir = |name: &str| root.path().join(name).to_str().unwrap().to_owned();
    let (pinned, first_use, unpinned, wrong) = (
        dir("pinned"),
        dir("first-use"),
        dir("unpinned"),
        dir("wrong"),
    );
    let outs = {
        let (pinned, first_use, unpinned, wrong) = (
            pinned.clone(),
            first_use.clone(),
            unpinned.clone(),
            wrong.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let verify = |d: &str, extra: &[&str]| {
                run(&[&["verify", "--dir", d, "--registry", &url][..], extra].concat())
            };
            (
                verify(&unpinned, &[]),
                verify(&wrong, &["--node-key", &other]),
                verify(&pinned, &["--node-key", &vkey]),
                verify(&first_use, &["--trust-on-first-use"]),
                // Once configured, the saved key is used.
                verify(&pinned, &[]),
                verify(&wrong, &["--node-key", &vkey]),
            )
        })
        .await
        .unwrap()
    };
    let (none, wrong_key, right, tofu, again, retried) = outs;
    assert!(!none.status.success(), "{}", text(&none));
    assert!(text(&none).contains("--node-key"), "{}", text(&none));
    assert!(
        text(&none).contains("--trust-on-first-use"),
        "{}",
        text(&none)
    );
    assert!(
        !Path::new(&unpinned).join("trust.json").exists(),
        "a refused verify trusted a key"
    );
    assert!(!wrong_key.status.success(), "{}", text(&wrong_key));
    assert!(right.status.success(), "{}", text(&right));
    assert!(tofu.status.success(), "{}", text(&tofu));
    assert!(text(&tofu).contains("first use"), "{}", text(&tofu));
    assert!(again.status.success(), "{}", text(&again));
    // A first sync that failed under a wrong key kept nothing of it.
    assert!(retried.status.success(), "{}", text(&retried));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(Path::new(&wrong).join("trust.json")).unwrap())
            .unwrap();
    assert_eq!(saved["node_vkey"], node.vkey());
}

#[test]
fn init_refuses_a_weak_quorum_unless_forced() {
    let root = tempdir("quorum-cli");
    let w: Vec<String> = (1..=4u8)
        .map(|i| log::witness_vkey(&format!("w{i}"), &key(20 + i).verifying_key()))
        .collect();
    let init = |name: &str, extra: &[&str]| {
        let dir = root.path().join(name);
        let mut args = vec!["init", "--dir", dir.to_str().unwrap()];
        for v in &w {
            args.extend(["--witness", v.as_str()]);
        }
        args.extend(extra);
        let out = run(&args);
        (out, dir.join("config.json").exists())
    };
    for (name, need) in [("none", None), ("one", Some("1")), ("half", Some("2"))] {
        let extra: Vec<&str> = need.map(|n| vec!["--need", n]).unwrap_or_default();
        let (out, made) = init(name, &extra);
        assert!(!out.status.success(), "{name}: {}", text(&out));
        assert!(text(&out).contains("weak quorum"), "{name}: {}", text(&out));
        assert!(text(&out).contains("--force-weak-quorum"), "{}", text(&out));
        assert!(!made, "{name}: a refused init made a node");
    }
    let (out, made) = init("forced", &["--need", "2", "--force-weak-quorum"]);
    assert!(out.status.success() && made, "{}", text(&out));
    let (out, made) = init("majority", &["--need", "3"]);
    assert!(out.status.success() && made, "{}", text(&out));
    // No witnesses: the node's key alone, no quorum to split.
    let dir = root.path().join("alone");
    let out = run(&["init", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}

//! Heartbeat blocks: on a quiet chain the node seals a block with no new
//! entries once the last block is old enough; witnesses check and cosign
//! it, replicas sync it (their age drops), `vouch-registry verify` accepts
//! it, and block times still never go back.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use vouch_core::log;
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, Trust};
use vouch_registry::testkit::LoopbackNode;

use crate::common::*;

/// A node in `dir` with block 1 sealed at `t` over one new entry.
fn node_sealed_at(dir: &std::path::Path, t: i64) -> Node {
    let authority = init_node(dir, vec![], 0);
    let node = Node::open(dir).unwrap();
    node.submit(
        accredit(&authority, 1, &key(2), &["transcript"]).as_bytes(),
        t,
    )
    .unwrap();
    node.seal(t).unwrap().unwrap();
    node
}

#[test]
fn a_heartbeat_is_sealed_after_the_interval_and_not_before() {
    let dir = tempdir("heartbeat");
    let t = now();
    let node = node_sealed_at(dir.path(), t);
    let last = node.head();
    assert_eq!(last.height, 1);

    // Nothing new to seal, and the last block is younger than 60 s.
    assert!(node.seal(t + 59).unwrap().is_none());
    assert!(node.heartbeat(t + 59, 60).unwrap().is_none());
    assert_eq!(node.head(), last);

    // 60 s on: a heartbeat, the same tree at a new time, linked.
    let note = node.heartbeat(t + 60, 60).unwrap().unwrap();
    let beat = node.head();
    assert_eq!(beat.height, 2);
    assert_eq!((beat.size, beat.root), (last.size, last.root));
    assert_eq!(beat.time, t + 60);
    assert_eq!(beat.prev, last.hash());
    assert_eq!(node.checkpoint(), note);
    assert_eq!(node.block(2).unwrap().unwrap(), note);
    // Signed by the node like any block.
    let signed = node.policy().with_need(0).verify(note.as_bytes()).unwrap();
    assert_eq!(signed.block, beat);

    // The next one counts from the heartbeat, not from the last entries.
    assert!(node.heartbeat(t + 119, 60).unwrap().is_none());
    // A clock behind the last block never seals a block dated earlier.
    assert!(node.heartbeat(t - 1_000, 60).unwrap().is_none());
    assert!(node.heartbeat(t + 60, 0).unwrap().is_some());
    assert_eq!(node.head().time, t + 60, "time went back");
    assert_eq!(node.head().height, 3);

    // Reopened, the node accepts its own heartbeats.
    drop(node);
    let node = Node::open(dir.path()).unwrap();
    assert_eq!(node.head().height, 3);
    assert_eq!(node.size(), last.size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_syncs_a_heartbeat_and_its_age_drops() {
    let root = tempdir("heartbeat-replica");
    let node_dir = root.path().join("node");
    let t = now();
    let node = Arc::new(node_sealed_at(&node_dir, t));
    let server = serve(node.clone()).await;
    let client = server.client();
    let trust = trust_alone(&node);
    let mut replica = Replica::open(&root.path().join("replica"), trust.policy().unwrap()).unwrap();
    let synced = replica.sync_at(&client, t).await.unwrap();
    assert_eq!(synced.height, 1);
    let later = t + 300;
    assert_eq!(replica.view().unwrap().age(later), 300);

    node.heartbeat(later, 60).unwrap().unwrap();
    let synced = replica.sync_at(&client, later).await.unwrap();
    assert_eq!((synced.height, synced.from, synced.to), (2, 2, 2));
    assert_eq!(replica.view().unwrap().age(later), 0);
    // The replica's store, audited as `vouch-registry verify` does.
    let audit = vouch_registry::replica::audit(replica.store(), &trust.policy().unwrap()).unwrap();
    assert_eq!((audit.blocks, audit.entries), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_cosign_a_heartbeat_and_a_k_of_n_replica_takes_it() {
    let root = tempdir("heartbeat-witness");
    let mut net = LoopbackNode::start(root.path(), &["w1", "w2"], 2)
        .await
        .unwrap();
    let t = now();
    net.node
        .submit(
            accredit(&net.authority, 1, &key(2), &["transcript"]).as_bytes(),
            t,
        )
        .unwrap();
    net.node.seal(t).unwrap().unwrap();
    let client = net.client();
    for w in &mut net.witnesses {
        let (height, _) = w.round_at(&client, t).await.unwrap().unwrap();
        assert_eq!(height, 1);
    }
    let trust = Trust {
        node_vkey: net.node.vkey(),
        witnesses: net.witnesses.iter().map(|w| w.vkey()).collect(),
        need: 2,
    };
    let mut replica = Replica::open(&root.path().join("replica"), trust.policy().unwrap()).unwrap();
    assert_eq!(replica.sync_at(&client, t).await.unwrap().height, 1);

    // A quiet minute: a heartbeat, which each witness checks and cosigns.
    let later = t + 60;
    net.node.heartbeat(later, 60).unwrap().unwrap();
    // Not cosigned yet: a replica needing both witnesses stays at block 1.
    assert_eq!(replica.sync_at(&client, later).await.unwrap().height, 1);
    let mut by = Vec::new();
    for w in &mut net.witnesses {
        let (height, cosigned) = w.round_at(&client, later).await.unwrap().unwrap();
        assert_eq!(height, 2);
        by = cosigned;
    }
    by.sort();
    assert_eq!(by, ["w1", "w2"]);
    let synced = replica.sync_at(&client, later).await.unwrap();
    assert_eq!(synced.height, 2);
    assert_eq!(synced.cosigned_by.len(), 2);
    assert_eq!(replica.view().unwrap().age(later), 0);
    // Nothing new: the witnesses have nothing to cosign.
    for w in &mut net.witnesses {
        assert!(w.round_at(&client, later).await.unwrap().is_none());
    }
}

/// The real binary seals heartbeats on a quiet chain (`--heartbeat 1`),
/// and `vouch-registry verify` accepts the chain they make.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_seals_heartbeats_and_verify_accepts_them() {
    let root = tempdir("heartbeat-bin");
    let dir = root.path().join("node");
    run_on_dir("init", &dir);
    let url_file = root.path().join("node.url");
    let mut child = Command::new(BIN)
        .args(["serve", "--dir"])
        .arg(&dir)
        .args(["--listen", "127.0.0.1:0", "--block-interval", "1"])
        .args(["--heartbeat", "1", "--addr-file"])
        .arg(&url_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut url = None;
    for _ in 0..600 {
        if let Ok(u) = std::fs::read_to_string(&url_file) {
            url = Some(u);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = vouch_registry::client::NodeClient::new(&url.unwrap()).unwrap();
    // Genesis is block 0; with no entries, heartbeats follow it.
    let (origin, _, node_key) = log::parse_vkey(&client.info().await.unwrap().node_vkey).unwrap();
    let policy = log::TrustPolicy::new((origin, node_key), Vec::new(), 0, false).unwrap();
    let mut head = None;
    for _ in 0..600 {
        let note = client.checkpoint().await.unwrap();
        let block = policy.verify(note.as_bytes()).unwrap().block;
        if block.height >= 2 {
            head = Some(block);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let head = head.expect("no heartbeat within a minute");
    assert_eq!(head.size, 1, "a heartbeat added entries");
    child.kill().unwrap();
    child.wait().unwrap();
    let stdout = run_on_dir("verify", &dir);
    assert!(stdout.starts_with("OK: 1 entries,"), "{stdout}");
}

//! A node that rewrites its history (same key, different entries after
//! entry 5): replicas and witnesses that saw the first history refuse the
//! second and say where the two diverge.

use std::path::Path;
use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::chain::{Action, Entry};
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, ReplicaError, Trust};
use vouch_registry::witness::{Witness, WitnessError};

use crate::common::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

fn open(dir: &Path) -> Node {
    Node::open(dir).unwrap()
}

fn other_anchor(issuer: &ed25519_dalek::SigningKey, seq: u64) -> Entry {
    Entry::sign(
        issuer,
        seq,
        now(),
        Action::Anchor {
            list: uni_list(),
            root: "f".repeat(64),
            count: 1,
            first: 999,
            last: 999,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rewritten_log_is_refused_where_it_diverges() {
    let root = tempdir("fork");
    let mut witness = Witness::open(
        &root.path().join("w"),
        Some("w"),
        &mut StdRng::seed_from_u64(3),
    )
    .unwrap();
    let a_dir = root.path().join("a");
    let b_dir = root.path().join("b");
    let authority = init_node(&a_dir, vec![witness.vkey()], 1);
    let uni = key(2);
    {
        let node = open(&a_dir);
        node.submit(
            accredit(&authority, 1, &uni, &["transcript"]).as_bytes(),
            now(),
        )
        .unwrap();
        for n in 0..3 {
            node.submit(anchor(&uni, n, n).as_bytes(), now()).unwrap();
        }
        node.seal(now()).unwrap();
        assert_eq!(node.size(), 5);
    }
    copy_dir(&a_dir, &b_dir);
    let a = Arc::new(open(&a_dir));
    let b = Arc::new(open(&b_dir));
    for n in 3..5 {
        a.submit(anchor(&uni, n, n).as_bytes(), now()).unwrap();
        b.submit(other_anchor(&uni, n).as_bytes(), now()).unwrap();
    }
    a.seal(now()).unwrap();
    b.seal(now()).unwrap();
    assert_eq!(
        a.vkey(),
        b.vkey(),
        "both histories are signed by the same node key"
    );
    witness.pin_node(&a.vkey()).unwrap();
    let a_server = serve(a.clone()).await;
    let a_client = a_server.client();
    let b_server = serve(b.clone()).await;
    let b_client = b_server.client();

    // The witness follows history A and cosigns it.
    witness.round(&a_client).await.unwrap().unwrap();
    let trust = Trust {
        node_vkey: a.vkey(),
        witnesses: vec![witness.vkey()],
        need: 1,
    };
    // This replica trusts the node key alone, so only its own checks stand
    // between it and a rewritten history (0 of 1 witnesses: a weak quorum,
    // forced on purpose).
    let node_only = Trust {
        need: 0,
        ..trust.clone()
    };
    let mut replica = Replica::open(
        &root.path().join("replica"),
        node_only.policy_with(true).unwrap(),
    )
    .unwrap();
    assert_eq!(replica.sync(&a_client).await.unwrap().to, 7);

    // History B at the same height: a different block.
    let err = witness.round(&b_client).await.unwrap_err();
    assert!(
        matches!(
            &err,
            WitnessError::Refused(ReplicaError::Fork { index: Some(5), .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("REFUSING TO COSIGN"), "{err}");

    // History B grows: its tree is not an extension of A's.
    b.submit(other_anchor(&uni, 5).as_bytes(), now()).unwrap();
    b.seal(now()).unwrap();
    let err = witness.round(&b_client).await.unwrap_err();
    assert!(
        matches!(
            &err,
            WitnessError::Refused(ReplicaError::Fork { index: Some(5), .. })
        ),
        "{err}"
    );
    let err = replica.sync(&b_client).await.unwrap_err();
    assert!(err.to_string().contains("diverge at entry 5"), "{err}");
    assert_eq!(
        replica.head().unwrap().block.size,
        7,
        "the refused sync changed nothing"
    );
    // B's blocks carry no cosignature from the witness, so a replica that
    // needs it never accepts them.
    let mut fresh = Replica::open(&root.path().join("fresh"), trust.policy().unwrap()).unwrap();
    let err = fresh.sync(&b_client).await.unwrap_err();
    assert!(matches!(err, ReplicaError::Checkpoint(_)), "{err}");
    // History A still syncs.
    a.submit(anchor(&uni, 5, 5).as_bytes(), now()).unwrap();
    a.seal(now()).unwrap();
    witness.round(&a_client).await.unwrap().unwrap();
    assert_eq!(replica.sync(&a_client).await.unwrap().to, 8);
}

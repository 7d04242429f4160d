//! A replica that crashes at any write of a sync reopens consistent and
//! syncs on: its state, head and block notes land in one atomic write.

use std::sync::Arc;

use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, Trust};

use crate::common::*;

/// A served node with block 1 (accredit + 3 anchors) and block 2 (3 more
/// anchors and a status list revoking index 13).
async fn node_with_two_blocks(dir: &std::path::Path) -> (Arc<Node>, TestServer) {
    let authority = init_node(dir, vec![], 0);
    let node = Arc::new(Node::open(dir).unwrap());
    let uni = key(2);
    node.submit(
        accredit(&authority, 1, &uni, &["transcript"]).as_bytes(),
        now(),
    )
    .unwrap();
    for n in 0..3 {
        node.submit(anchor(&uni, n, n).as_bytes(), now()).unwrap();
    }
    node.seal(now()).unwrap().unwrap();
    let server = serve(node.clone()).await;
    (node, server)
}

fn extend(node: &Node) {
    let uni = key(2);
    for n in 3..6 {
        node.submit(anchor(&uni, n, n).as_bytes(), now()).unwrap();
    }
    node.submit(status(&uni, 6, 1, &uni_list(), &[13]).as_bytes(), now())
        .unwrap();
    node.seal(now()).unwrap().unwrap();
}

fn trust(node: &Node) -> Trust {
    trust_alone(node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_write_of_a_sync_leaves_a_replica_that_syncs_on() {
    let root = tempdir("replica-crash");
    let (node, server) = node_with_two_blocks(&root.path().join("node")).await;
    let client = server.client();
    let policy = trust(&node).policy().unwrap();
    // Replicas at block 1, one per crash point.
    let mut dirs = Vec::new();
    for n in 0..6u64 {
        let dir = root.path().join(format!("replica-{n}"));
        let mut replica = Replica::open(&dir, policy.clone()).unwrap();
        assert_eq!(replica.sync(&client).await.unwrap().to, 5);
        dirs.push(dir);
    }
    extend(&node);
    let mut crashed = 0;
    for (n, dir) in dirs.iter().enumerate() {
        {
            let mut replica = Replica::open(dir, policy.clone()).unwrap();
            // The process "dies" after n writes of this sync.
            replica.store().crash_after_writes(n as u64);
            if replica.sync(&client).await.is_err() {
                crashed += 1;
            }
        }
        let mut replica = Replica::open(dir, policy.clone())
            .unwrap_or_else(|e| panic!("crash after {n} writes: the replica does not open: {e}"));
        let head = replica.head().unwrap().block.clone();
        assert!(
            (head.height, head.size) == (1, 5) || (head.height, head.size) == (2, 9),
            "crash after {n} writes: head {head:?}"
        );
        assert_eq!(replica.state().size, head.size, "crash after {n} writes");
        assert_eq!(replica.sync(&client).await.unwrap().to, 9);
        assert_eq!(
            replica
                .status(&did(&key(2)), &uni_list(), 13, now())
                .unwrap()
                .value,
            Some(1)
        );
        vouch_registry::replica::audit(replica.store(), &policy).unwrap();
    }
    assert!(crashed >= 2, "only {crashed} crash points were hit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_state_is_ahead_of_its_head_recovers() {
    // What a crash between the two separate writes of older versions left:
    // the state snapshot (and entries) of the new head, the old head note.
    let root = tempdir("replica-half");
    let (node, server) = node_with_two_blocks(&root.path().join("node")).await;
    let client = server.client();
    let policy = trust(&node).policy().unwrap();
    let dir = root.path().join("replica");
    let old_head = {
        let mut replica = Replica::open(&dir, policy.clone()).unwrap();
        replica.sync(&client).await.unwrap();
        replica.head().unwrap().note.clone()
    };
    extend(&node);
    {
        let mut replica = Replica::open(&dir, policy.clone()).unwrap();
        replica.sync(&client).await.unwrap();
        assert_eq!(replica.state().size, 9);
        replica
            .store()
            .set_meta("head", old_head.as_bytes())
            .unwrap();
        replica.store().flush().unwrap();
    }
    let mut replica = Replica::open(&dir, policy.clone()).unwrap();
    assert_eq!(replica.head().unwrap().block.size, 5);
    assert_eq!(replica.state().size, 5);
    assert_eq!(
        replica
            .status(&did(&key(2)), &uni_list(), 13, now())
            .unwrap()
            .value,
        None
    );
    assert_eq!(replica.sync(&client).await.unwrap().to, 9);
    assert_eq!(
        replica
            .status(&did(&key(2)), &uni_list(), 13, now())
            .unwrap()
            .value,
        Some(1)
    );
}

//! The tile layout (256 entries per record) through a node and a replica: a
//! block that ends mid-tile, a sync that dies after folding a tile (undone
//! on reopen and redone by the next sync), a node reopened after being
//! dropped without a clean shutdown.

use std::sync::Arc;

use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{audit, Replica};

use crate::common::*;

/// Submits anchors `from..to` by `key(2)` in one group commit and seals.
fn anchors(node: &Node, from: u64, to: u64) {
    let uni = key(2);
    let entries: Vec<_> = (from..to).map(|n| anchor(&uni, n, n)).collect();
    let bytes: Vec<&[u8]> = entries.iter().map(|e| e.as_bytes()).collect();
    node.submit_batch(&bytes, now()).unwrap();
    node.seal(now()).unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_dies_after_folding_a_tile_is_undone_and_redone() {
    let root = tempdir("replica-tiles");
    let node_dir = root.path().join("node");
    let authority = init_node(&node_dir, vec![], 0);
    let uni = key(2);
    {
        let node = Node::open(&node_dir).unwrap();
        node.submit(
            accredit(&authority, 1, &uni, &["transcript"]).as_bytes(),
            now(),
        )
        .unwrap();
        // Block 1 ends mid-tile: 1 tile of 256 and 44 single records.
        anchors(&node, 0, 298);
        // Dropped without a final flush or seal: reopened below.
    }
    let node = Arc::new(Node::open(&node_dir).unwrap());
    assert_eq!(node.store().size().unwrap(), 300);
    let server = serve(node.clone()).await;
    let client = server.client();
    let policy = trust_alone(&node).policy().unwrap();
    let dir = root.path().join("replica");
    {
        let mut replica = Replica::open(&dir, policy.clone()).unwrap();
        assert_eq!(replica.sync(&client).await.unwrap().to, 300);
    }
    // Block 2: tile 1 fills (256..512), then a partial tile of 188.
    anchors(&node, 298, 698);
    for crash_after in 0..3u64 {
        {
            let mut replica = Replica::open(&dir, policy.clone()).unwrap();
            // The first write of the sync is the append that folds tile 1.
            replica.store().crash_after_writes(crash_after);
            if crash_after < 2 {
                assert!(replica.sync(&client).await.is_err());
            } else {
                // Past the fold, the sync fails at its head write.
                let _ = replica.sync(&client).await;
            }
        }
        let replica = Replica::open(&dir, policy.clone()).unwrap();
        let head = replica.head().unwrap().block.clone();
        assert!(
            head.size == 300 || (crash_after >= 2 && head.size == 700),
            "crash after {crash_after} writes: head {head:?}"
        );
        assert_eq!(replica.store().size().unwrap(), head.size);
        assert_eq!(replica.state().size, head.size);
        audit(replica.store(), &policy).unwrap();
        if head.size == 700 {
            break;
        }
    }
    let mut replica = Replica::open(&dir, policy.clone()).unwrap();
    let report = replica.sync(&client).await.unwrap();
    assert_eq!(report.to, 700);
    let theirs = node.store().entries(0, 700).unwrap();
    let ours = replica.store().entries(0, 700).unwrap();
    assert_eq!(ours.len(), 700);
    assert!(ours.iter().zip(&theirs).all(|(a, b)| a == b));
    assert_eq!(
        replica.store().root(700).unwrap(),
        node.store().root(700).unwrap()
    );
    let report = audit(replica.store(), &policy).unwrap();
    assert_eq!((report.entries, report.blocks), (700, 3));
    assert!(
        replica
            .accredited(&did(&uni), "transcript", now())
            .unwrap()
            .value
    );
    drop(replica);
    // Reopened, the replica holds the same head and syncs on.
    let mut replica = Replica::open(&dir, policy.clone()).unwrap();
    assert_eq!(replica.head().unwrap().block.size, 700);
    anchors(&node, 698, 700);
    assert_eq!(replica.sync(&client).await.unwrap().to, 702);
    audit(replica.store(), &policy).unwrap();
}

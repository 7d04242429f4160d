//! The tile layout (256 entries per tile) through a node and a replica: a
//! block that ends mid-tile, a sync that dies after folding a tile (undone
//! on reopen and redone by the next sync), a node reopened after being
//! dropped without a clean shutdown; the tiles file: a sync that dies
//! between writing tiles and committing them, a damaged tile byte, a file
//! cut short.

use std::sync::Arc;

use vouch_core::log::TrustPolicy;
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{audit, Replica};
use vouch_registry::store::TILES_FILE;

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

/// A node in `root/node` of 300 entries (one full tile, 44 single
/// records) in block 1.
fn node_of_300(root: &std::path::Path) -> Arc<Node> {
    let node_dir = root.join("node");
    let authority = init_node(&node_dir, vec![], 0);
    let node = Arc::new(Node::open(&node_dir).unwrap());
    node.submit(
        accredit(&authority, 1, &key(2), &["transcript"]).as_bytes(),
        now(),
    )
    .unwrap();
    anchors(&node, 0, 298);
    node
}

/// [`node_of_300`] served, and a replica in `root/replica` synced from it
/// to its 300 entries and closed: the node, its server, the trust policy
/// and the replica's directory.
async fn replica_of_300(
    root: &std::path::Path,
) -> (Arc<Node>, TestServer, TrustPolicy, std::path::PathBuf) {
    let node = node_of_300(root);
    let server = serve(node.clone()).await;
    let policy = trust_alone(&node).policy().unwrap();
    let dir = root.join("replica");
    let mut replica = Replica::open(&dir, policy.clone()).unwrap();
    assert_eq!(replica.sync(&server.client()).await.unwrap().to, 300);
    (node, server, policy, dir)
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_dies_between_writing_tiles_and_committing_them_is_cut_off() {
    let root = tempdir("replica-tiles-file");
    let (node, server, policy, dir) = replica_of_300(root.path()).await;
    let client = server.client();
    let tiles = dir.join(TILES_FILE);
    let one_tile = file_len(&tiles);
    assert!(one_tile > 0);
    // Block 2 fills tile 1. The sync's first write puts it in the tiles
    // file, the second syncs it, the third would commit it.
    anchors(&node, 298, 698);
    for crash_after in [1u64, 2] {
        {
            let mut replica = Replica::open(&dir, policy.clone()).unwrap();
            replica.store().crash_after_writes(crash_after);
            assert!(replica.sync(&client).await.is_err());
        }
        assert!(
            file_len(&tiles) > one_tile,
            "crash after {crash_after} writes: tile 1 was not written"
        );
        let replica = Replica::open(&dir, policy.clone()).unwrap();
        // The bytes no commit names are cut off; the replica is as before.
        assert_eq!(file_len(&tiles), one_tile, "crash after {crash_after}");
        assert_eq!(replica.head().unwrap().block.size, 300);
        assert_eq!(replica.store().size().unwrap(), 300);
        assert_eq!(replica.state().size, 300);
        assert_eq!(
            replica.store().entries(0, 300).unwrap(),
            node.store().entries(0, 300).unwrap()
        );
        audit(replica.store(), &policy).unwrap();
    }
    let mut replica = Replica::open(&dir, policy.clone()).unwrap();
    assert_eq!(replica.sync(&client).await.unwrap().to, 700);
    assert!(file_len(&tiles) > one_tile);
    assert_eq!(
        replica.store().root(700).unwrap(),
        node.store().root(700).unwrap()
    );
    audit(replica.store(), &policy).unwrap();
}

#[test]
fn a_damaged_tile_byte_is_refused_with_the_tile_named() {
    let root = tempdir("tiles-damaged");
    let node_dir = root.path().join("node");
    let tiles = node_dir.join("db").join(TILES_FILE);
    node_of_300(root.path()).store().flush().unwrap();
    // A byte of the last entry of tile 0 (the end of the file).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&tiles)
        .unwrap();
    let at = file_len(&tiles) - 3;
    let mut b = [0u8];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut b, at).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[b[0] ^ 0x20], at).unwrap();
    drop(file);
    // The node opens (its head's root reads only tree hashes, intact),
    // and refuses the entries of tile 0, not the others.
    let node = Node::open(&node_dir).unwrap();
    let err = node.entries(0, 300).unwrap_err().to_string();
    assert!(
        err.contains("corrupt store: tile 0 (entries 0..256)")
            && err.contains(TILES_FILE)
            && err.contains("checksum"),
        "{err}"
    );
    assert!(node.entries(255, 256).is_err());
    assert_eq!(node.entries(256, 300).unwrap().len(), 44);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiles_file_shorter_than_committed_is_refused_at_open() {
    let root = tempdir("tiles-short");
    let (_node, _server, policy, dir) = replica_of_300(root.path()).await;
    let tiles = dir.join(TILES_FILE);
    let len = file_len(&tiles);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&tiles)
        .unwrap()
        .set_len(len - 100)
        .unwrap();
    let err = Replica::open(&dir, policy.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&format!("holds {} bytes", len - 100))
            && err.contains(&format!("need {len}"))
            && err.contains("tile 0 (entries 0 on) is cut off"),
        "{err}"
    );
}

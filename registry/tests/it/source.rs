//! `ChainSource`: a replica syncs from the in-process `Node` exactly as from
//! its HTTP API, a witness cosigns in-process, and a replica's shared view
//! stays whole for a reader while a sync moves it on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use vouch_core::log::Hash;
use vouch_core::view::Status;
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, ReplicaError, Trust};
use vouch_registry::testkit::LoopbackNode;
use vouch_registry::trust::{self, FirstSync, NodePin};
use vouch_registry::wire::NodeInfo;
use vouch_registry::{ChainSource, SourceError};

use crate::common::*;

/// A node with block 1: an accredited issuer, three anchors, and a status
/// list where nothing is revoked yet.
fn node_with_block(dir: &std::path::Path) -> Arc<Node> {
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
    node.submit(status(&uni, 3, 1, &uni_list(), &[]).as_bytes(), now())
        .unwrap();
    node.seal(now()).unwrap().unwrap();
    node
}

/// Block 2 revokes index 13.
fn revoke_13(node: &Node) {
    node.submit(status(&key(2), 4, 2, &uni_list(), &[13]).as_bytes(), now())
        .unwrap();
    node.seal(now()).unwrap().unwrap();
}

fn trust(node: &Node) -> Trust {
    trust_alone(node)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_syncs_from_an_in_process_node_as_from_its_api() {
    let root = tempdir("source-node");
    let node = node_with_block(&root.path().join("node"));
    let policy = trust(&node).policy().unwrap();

    // No socket: the node itself is the source.
    let mut direct = Replica::open(&root.path().join("direct"), policy.clone()).unwrap();
    let report = direct.sync(&*node).await.unwrap();
    assert_eq!((report.from, report.to, report.height), (0, 6, 1));
    // Over HTTP, to the same head and state.
    let server = serve(node.clone()).await;
    let mut remote = Replica::open(&root.path().join("remote"), policy.clone()).unwrap();
    remote.sync(&server.client()).await.unwrap();
    assert_eq!(direct.head().unwrap().note, remote.head().unwrap().note);
    assert_eq!(direct.state(), remote.state());

    // On from block 1, through an `Arc<Node>` this time.
    revoke_13(&node);
    let report = direct.sync(&node).await.unwrap();
    assert_eq!((report.from, report.to, report.height), (6, 7, 2));
    assert_eq!(
        direct
            .status(&did(&key(2)), &uni_list(), 13, now())
            .unwrap()
            .value,
        Some(1)
    );
    vouch_registry::replica::audit(direct.store(), &policy).unwrap();

    // Another node (the same test key) that is behind is refused, and
    // nothing changes.
    let other = node_with_block(&root.path().join("other"));
    let err = direct.sync(&*other).await.unwrap_err();
    assert!(matches!(err, ReplicaError::Rollback { .. }), "{err}");
    assert_eq!(direct.head().unwrap().block.size, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn witnesses_cosign_in_process_and_on_loopback() {
    let root = tempdir("source-witness");
    let mut net = LoopbackNode::start(root.path(), &["w1", "w2"], 2)
        .await
        .unwrap();
    let client = net.client();
    client
        .sign_and_submit(
            &net.authority,
            vouch_core::chain::Action::Accredit {
                issuer: did(&key(2)),
                name: "Test University".into(),
                kinds: vec!["transcript".into()],
            },
        )
        .await
        .unwrap();
    client.seal().await.unwrap();
    // One witness reads and cosigns the node directly, the other over HTTP.
    let node = net.node.clone();
    let (h1, by1) = net.witnesses[0].round(&*node).await.unwrap().unwrap();
    assert_eq!((h1, by1), (1, vec!["w1".to_string()]));
    let (h2, by2) = net.witnesses[1].round(&client).await.unwrap().unwrap();
    assert_eq!((h2, by2), (1, vec!["w1".to_string(), "w2".to_string()]));

    // A first `verify --registry` of a new directory, through the library.
    let dir = root.path().join("replica");
    let first = FirstSync {
        pin: NodePin::Key(node.vkey()),
        witnesses: net.witnesses.iter().map(|w| w.vkey()).collect(),
        need: 2,
        force_weak_quorum: false,
    };
    let check = trust::sync_dir(&dir, &client, first.clone()).await.unwrap();
    let synced = check.synced.unwrap();
    assert_eq!((synced.to, synced.height), (2, 1));
    assert_eq!(check.audit.cosigned_blocks, 1);
    assert!(dir.join(trust::TRUST_FILE).exists());
    // Offline, the same directory audits the same.
    assert_eq!(trust::audit_dir(&dir).unwrap().audit, check.audit);

    // A first sync that fails leaves no trust.json behind.
    let bad = root.path().join("bad");
    let wrong = FirstSync {
        pin: NodePin::Key(net.witnesses[0].vkey()),
        ..first
    };
    assert!(trust::sync_dir(&bad, &client, wrong).await.is_err());
    assert!(!bad.join(trust::TRUST_FILE).exists());
    net.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_keeps_a_whole_view_while_a_sync_moves_on() {
    let root = tempdir("source-shared");
    let node = node_with_block(&root.path().join("node"));
    let mut replica =
        Replica::open(&root.path().join("replica"), trust(&node).policy().unwrap()).unwrap();
    let shared = replica.shared_view().unwrap();
    assert!(shared.current().is_none(), "nothing synced yet");
    replica.sync(&*node).await.unwrap();
    let old = shared.current().unwrap();
    assert_eq!(old.height(), 1);
    let issuer = did(&key(2));
    let list = uni_list();

    // A reader on another thread checks every snapshot it takes: at block 1
    // index 13 is valid, at block 2 revoked; never anything in between.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = std::thread::spawn({
        let shared = shared.clone();
        let stop = stop.clone();
        let (issuer, list) = (issuer.clone(), list.clone());
        move || {
            let mut seen = [0u32; 2];
            while !stop.load(Ordering::SeqCst) {
                let view = shared.current().unwrap();
                let status = view.status(&issuer, &list, 13, now()).unwrap();
                match (view.height(), view.block().size) {
                    (1, 6) => {
                        assert_eq!(status, Status::Valid);
                        seen[0] += 1;
                    }
                    (2, 7) => {
                        assert_eq!(status, Status::Revoked);
                        seen[1] += 1;
                    }
                    other => panic!("a view of block {other:?}"),
                }
            }
            seen
        }
    });
    revoke_13(&node);
    // The sync runs as a task of its own, as in a verifier service.
    let syncing = tokio::spawn({
        let node = node.clone();
        async move {
            let report = replica.sync(&node).await;
            (replica, report)
        }
    });
    let (mut replica, report) = syncing.await.unwrap();
    assert_eq!(report.unwrap().height, 2);
    let new = shared.current().unwrap();
    assert_eq!(new.height(), 2);
    assert_eq!(
        new.status(&issuer, &list, 13, now()).unwrap(),
        Status::Revoked
    );
    // Give the reader time to see the new view too, then stop it.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    stop.store(true, Ordering::SeqCst);
    let seen = reader.join().unwrap();
    assert!(seen[1] > 0, "the reader never saw block 2: {seen:?}");

    // The snapshot taken before the sync is unchanged.
    assert_eq!(old.height(), 1);
    assert_eq!(old.block().size, 6);
    assert_eq!(
        old.status(&issuer, &list, 13, now()).unwrap(),
        Status::Valid
    );
    // A failed sync does not replace the shared view.
    let other = node_with_block(&root.path().join("other"));
    assert!(replica.sync(&*other).await.is_err());
    assert_eq!(shared.current().unwrap().height(), 2);
    // A second handle shares the same slot.
    assert!(Arc::ptr_eq(
        &replica.shared_view().unwrap().current().unwrap(),
        &new
    ));
}

/// The node as a source that serves at most two entries per call (so a
/// sync takes several ranges, checked in a pipeline), with entry `at`
/// replaced by `bytes` if `replace` is set, and, if `stall` is set, never
/// answering an entries call after the first: a node that hangs mid-sync.
struct TwoAtATime {
    node: Arc<Node>,
    replace: Option<(u64, Vec<u8>)>,
    stall: bool,
    /// Downloads of ranges from this entry on fail.
    fail_from: Option<u64>,
    /// Every entry served as a line of 1 MiB that is no entry (a hostile
    /// node, which signs its checkpoints), counted in `served`.
    junk: bool,
    served: std::sync::atomic::AtomicU64,
    calls: std::sync::atomic::AtomicU64,
}

impl TwoAtATime {
    fn new(node: &Arc<Node>) -> Self {
        Self {
            node: node.clone(),
            replace: None,
            stall: false,
            fail_from: None,
            junk: false,
            served: Default::default(),
            calls: Default::default(),
        }
    }
}

impl ChainSource for TwoAtATime {
    async fn info(&self) -> Result<NodeInfo, SourceError> {
        self.node.info().await
    }

    async fn checkpoint(&self) -> Result<String, SourceError> {
        ChainSource::checkpoint(&*self.node).await
    }

    async fn block(&self, height: u64) -> Result<String, SourceError> {
        ChainSource::block(&*self.node, height).await
    }

    async fn blocks(&self, start: u64, end: u64) -> Result<Vec<String>, SourceError> {
        self.node.blocks(start, end).await
    }

    async fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, SourceError> {
        if self.stall && self.calls.fetch_add(1, Ordering::SeqCst) > 0 {
            std::future::pending::<()>().await;
        }
        if self.fail_from.is_some_and(|from| start >= from) {
            return Err(SourceError::Store(
                vouch_registry::store::StoreError::Crashed,
            ));
        }
        if self.junk {
            let n = end.min(start + 2) - start;
            self.served.fetch_add(n << 20, Ordering::SeqCst);
            return Ok((0..n).map(|_| vec![b'{'; 1 << 20]).collect());
        }
        let mut lines = ChainSource::entries(&*self.node, start, end.min(start + 2)).await?;
        if let Some((at, bytes)) = &self.replace {
            if let Some(line) = at
                .checked_sub(start)
                .and_then(|i| lines.get_mut(usize::try_from(i).ok()?))
            {
                line.clone_from(bytes);
            }
        }
        Ok(lines)
    }

    async fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, SourceError> {
        ChainSource::consistency(&*self.node, old, new).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_dropped_half_way_is_repaired_by_the_next() {
    let root = tempdir("source-dropped");
    let node = node_with_block(&root.path().join("node"));
    let mut replica =
        Replica::open(&root.path().join("replica"), trust(&node).policy().unwrap()).unwrap();
    let stalling = TwoAtATime {
        stall: true,
        ..TwoAtATime::new(&node)
    };
    // The first two entries are being checked while the next call hangs;
    // the caller gives up and drops the sync.
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        replica.sync(&stalling),
    )
    .await;
    assert!(gave_up.is_err(), "the stalled sync finished");
    assert!(replica.head().is_none());
    assert!(matches!(replica.view(), Err(ReplicaError::Interrupted)));
    assert!(matches!(
        replica.accredited(&did(&key(2)), "transcript", now()),
        Err(ReplicaError::Interrupted)
    ));
    // The next sync puts the staged entries back first, then syncs whole.
    let report = replica.sync(&*node).await.unwrap();
    assert_eq!((report.from, report.to), (0, 6));
    assert!(
        replica
            .accredited(&did(&key(2)), "transcript", now())
            .unwrap()
            .value
    );
    assert_eq!(replica.view().unwrap().height(), 1);
    vouch_registry::replica::audit(replica.store(), &trust(&node).policy().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_entry_in_a_later_range_fails_the_whole_pipelined_sync() {
    use vouch_registry::replica::EntryRefused;

    let root = tempdir("source-pipeline");
    let node = node_with_block(&root.path().join("node"));
    let policy = trust(&node).policy().unwrap();
    let mut replica = Replica::open(&root.path().join("replica"), policy.clone()).unwrap();
    // Entries 0..6 in ranges of two: entry 4 (an anchor) with the
    // signature of entry 3 fails its signature check while entries 2..4
    // are applied and staged beside it.
    let lines = ChainSource::entries(&*node, 0, 6).await.unwrap();
    let sig = |line: &[u8]| {
        let text = std::str::from_utf8(line).unwrap().to_owned();
        let at = text.find(",\"sig\":").unwrap();
        (text[..at].to_owned(), text[at..].to_owned())
    };
    let forged = format!("{}{}", sig(&lines[4]).0, sig(&lines[3]).1);
    let bad_signature = TwoAtATime {
        replace: Some((4, forged.into_bytes())),
        ..TwoAtATime::new(&node)
    };
    let err = replica.sync(&bad_signature).await.unwrap_err();
    assert!(
        matches!(
            err,
            ReplicaError::BadEntry {
                index: 4,
                source: EntryRefused::Entry(_)
            }
        ),
        "{err}"
    );
    assert!(replica.head().is_none());
    assert_eq!(replica.store().size().unwrap(), 0);
    // Entry 3 replaced by a well-signed anchor that repeats sequence
    // number 0 breaks a rule when applied, while entries 4..6 are checked.
    let repeated = TwoAtATime {
        replace: Some((3, anchor(&key(2), 0, 7).as_bytes().to_vec())),
        ..TwoAtATime::new(&node)
    };
    let err = replica.sync(&repeated).await.unwrap_err();
    assert!(
        matches!(
            err,
            ReplicaError::BadEntry {
                index: 3,
                source: EntryRefused::Rule(_)
            }
        ),
        "{err}"
    );
    assert!(replica.head().is_none());
    assert_eq!(replica.store().size().unwrap(), 0);
    assert_eq!(replica.state(), &vouch_core::chain::ChainState::new());
    // Entries from 4 on fail to download: what was received is still
    // checked, and the rule entry 3 breaks is the refusal reported.
    let cut_short = TwoAtATime {
        replace: Some((3, anchor(&key(2), 0, 7).as_bytes().to_vec())),
        fail_from: Some(4),
        ..TwoAtATime::new(&node)
    };
    let err = replica.sync(&cut_short).await.unwrap_err();
    assert!(
        matches!(
            err,
            ReplicaError::BadEntry {
                index: 3,
                source: EntryRefused::Rule(_)
            }
        ),
        "{err}"
    );
    // Without the broken rule, the failed download is.
    let cut_short = TwoAtATime {
        fail_from: Some(4),
        ..TwoAtATime::new(&node)
    };
    let err = replica.sync(&cut_short).await.unwrap_err();
    assert!(matches!(err, ReplicaError::Source(_)), "{err}");
    assert!(replica.head().is_none());
    assert_eq!(replica.store().size().unwrap(), 0);
    // The node itself, in the same ranges: the whole log, checked.
    let honest = TwoAtATime::new(&node);
    let report = replica.sync(&honest).await.unwrap();
    assert_eq!((report.from, report.to, report.height), (0, 6, 1));
    vouch_registry::replica::audit(replica.store(), &policy).unwrap();
}

/// A node serving lines of up to an entry's most bytes (two a call) cannot make a
/// replica hold hundreds of them before it checks any: downloads wait
/// while 64 MiB of lines wait, and chunks are cut at 16 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_huge_lines_are_checked_before_many_more_are_downloaded() {
    let root = tempdir("source-huge-lines");
    let dir = root.path().join("node");
    let authority = init_node(&dir, vec![], 0);
    let node = Arc::new(Node::open(&dir).unwrap());
    node.submit(
        accredit(&authority, 1, &key(2), &["transcript"]).as_bytes(),
        now(),
    )
    .unwrap();
    let uni = key(2);
    let entries: Vec<_> = (0..400).map(|n| anchor(&uni, n, n)).collect();
    let bytes: Vec<&[u8]> = entries.iter().map(|e| e.as_bytes()).collect();
    node.submit_batch(&bytes, now()).unwrap();
    node.seal(now()).unwrap().unwrap();
    let policy = trust(&node).policy().unwrap();
    let mut replica = Replica::open(&root.path().join("replica"), policy).unwrap();
    let hostile = TwoAtATime {
        junk: true,
        ..TwoAtATime::new(&node)
    };
    let err = replica.sync(&hostile).await.unwrap_err();
    assert!(matches!(err, ReplicaError::BadEntry { .. }), "{err}");
    let served = hostile.served.load(Ordering::SeqCst) >> 20;
    assert!(
        served <= 128,
        "{served} MiB downloaded before the first line was refused"
    );
    assert!(replica.head().is_none(), "nothing applied");
}

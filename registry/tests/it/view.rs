//! `Replica::view()` feeds `vouch_core::verify::verify`: a credential
//! checked against a replica synced from a node on loopback.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::anchor::{self, AnchorProof};
use vouch_core::chain::{Action, Entry};
use vouch_core::jws::PublicKey;
use vouch_core::log::{prove_record, record_hash, Block, MemoryHashes};
use vouch_core::path::ClaimPath;
use vouch_core::sample;
use vouch_core::status_list::StatusRef;
use vouch_core::template::Templates;
use vouch_core::vc::{self, CredentialRequest, IssuerKey};
use vouch_core::verify::{verify, Policy, Presentation, Request};
use vouch_core::view::Status;
use vouch_core::{CheckName, Outcome};
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, ReplicaError};
use vouch_registry::store::AnchorCover;

use crate::common::{
    accredit, anchor, did, init_node, key, serve, status, tempdir, trust_alone, uni_list,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_view_verifies_credentials_and_their_status() {
    let root = tempdir("view");
    let node_dir = root.path().join("node");
    let authority = init_node(&node_dir, vec![], 0);
    let node = Arc::new(Node::open(&node_dir).unwrap());
    let uni = key(2);
    let clock = now();
    node.submit(
        accredit(&authority, 1, &uni, &["transcript"]).as_bytes(),
        clock,
    )
    .unwrap();
    node.submit(status(&uni, 0, 1, &uni_list(), &[5]).as_bytes(), clock)
        .unwrap();
    node.seal(clock).unwrap().unwrap();

    let trust = trust_alone(&node);
    let mut replica = Replica::open(&root.path().join("replica"), trust.policy().unwrap()).unwrap();
    assert!(matches!(replica.view(), Err(ReplicaError::NotSynced)));
    let server = serve(node.clone()).await;
    let client = server.client();
    replica.sync_at(&client, clock).await.unwrap();
    let view = replica.view().unwrap();
    assert_eq!(view.block(), &replica.head().unwrap().block);

    let holder = key(9);
    let request = Request {
        aud: "https://hr.example".into(),
        nonce: Some("n-1".into()),
        claims: vec![ClaimPath::parse("/student_name").unwrap()],
    };
    let policy = Policy::new(trust.policy().unwrap(), Templates::builtin().unwrap());
    let present = |idx: u64| {
        let req = CredentialRequest {
            vct: sample::TRANSCRIPT_VCT.into(),
            iat: clock,
            exp: None,
            holder: PublicKey::Ed25519(holder.verifying_key()),
            status: Some(StatusRef {
                idx,
                uri: uni_list(),
            }),
            claims: sample::transcript_claims(1),
            concealment: sample::transcript_concealment(),
        };
        vc::issue(
            req,
            &IssuerKey::new(uni.clone()),
            &mut StdRng::seed_from_u64(idx),
        )
        .unwrap()
        .present(&[ClaimPath::parse("/student_name").unwrap()])
        .unwrap()
        .bind(&holder, &request.aud, "n-1", clock)
        .serialize()
    };

    let good = verify(&present(6), &request, &view, &policy, clock).unwrap();
    assert!(good.is_valid(), "{:#?}", good.verdict.checks);
    assert_eq!(
        good.issuer.as_ref().unwrap().name.as_deref(),
        Some("Test University")
    );
    assert_eq!(good.claim("student_name").unwrap().label, "Student name");
    assert_eq!(good.as_of.height, replica.head().unwrap().block.height);

    let revoked = verify(&present(5), &request, &view, &policy, clock).unwrap();
    assert_eq!(revoked.status, Some(Status::Revoked));
    assert!(matches!(
        revoked.check(CheckName::Status),
        Some(Outcome::Fail(why)) if why.starts_with("revoked")
    ));
    assert_eq!(did(&uni), revoked.issuer.unwrap().did);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_view_holds_each_anchor_with_the_block_that_sealed_it() {
    let root = tempdir("view-anchors");
    let node_dir = root.path().join("node");
    let authority = init_node(&node_dir, vec![], 0);
    let node = Arc::new(Node::open(&node_dir).unwrap());
    let uni = key(2);
    let clock = now();
    node.submit(
        accredit(&authority, 1, &uni, &["transcript"]).as_bytes(),
        clock,
    )
    .unwrap();
    node.seal(clock).unwrap().unwrap();

    // Two credentials, anchored as one batch and sealed in the next block.
    let holder = key(9);
    let request = Request {
        aud: "https://hr.example".into(),
        nonce: Some("n-1".into()),
        claims: vec![ClaimPath::parse("/student_name").unwrap()],
    };
    let present = |idx: u64| {
        let req = CredentialRequest {
            vct: sample::TRANSCRIPT_VCT.into(),
            iat: clock,
            exp: None,
            holder: PublicKey::Ed25519(holder.verifying_key()),
            status: Some(StatusRef {
                idx,
                uri: uni_list(),
            }),
            claims: sample::transcript_claims(1),
            concealment: sample::transcript_concealment(),
        };
        vc::issue(
            req,
            &IssuerKey::new(uni.clone()),
            &mut StdRng::seed_from_u64(idx),
        )
        .unwrap()
        .present(&[ClaimPath::parse("/student_name").unwrap()])
        .unwrap()
        .bind(&holder, &request.aud, "n-1", clock)
        .serialize()
    };
    let creds = [present(6), present(7)];
    let mut tree = MemoryHashes::new();
    for c in &creds {
        tree.append(record_hash(anchor::leaf(c).as_bytes()))
            .unwrap();
    }
    let entry = Entry::sign(
        &uni,
        0,
        clock,
        Action::Anchor {
            list: uni_list(),
            root: hex::encode(tree.root().unwrap().0),
            count: 2,
            first: 6,
            last: 7,
        },
    );
    let anchor_index = node.submit(entry.as_bytes(), clock).unwrap().index;
    node.submit(status(&uni, 1, 1, &uni_list(), &[]).as_bytes(), clock)
        .unwrap();
    let sealed =
        Block::from_note_unverified(node.seal(clock + 1).unwrap().unwrap().as_bytes()).unwrap();
    // A later block, sealing a later entry.
    node.submit(status(&uni, 2, 2, &uni_list(), &[5]).as_bytes(), clock)
        .unwrap();
    node.seal(clock + 2).unwrap().unwrap();

    let trust = trust_alone(&node);
    let replica_dir = root.path().join("replica");
    let mut replica = Replica::open(&replica_dir, trust.policy().unwrap()).unwrap();
    let server = serve(node.clone()).await;
    let client = server.client();
    replica.sync_at(&client, clock + 10).await.unwrap();
    let view = replica.view().unwrap();
    assert_eq!(view.anchors().len(), 1);
    let record = view.anchor(anchor_index).unwrap().clone();
    assert_eq!(
        (record.sealed_height, record.sealed_time, record.count),
        (sealed.height, sealed.time, 2)
    );
    assert!(record.sealed_height < view.height());

    let policy = Policy::new(trust.policy().unwrap(), Templates::builtin().unwrap());
    let proof = AnchorProof::new(anchor_index, 1, 2, prove_record(2, 1, &tree).unwrap()).unwrap();
    let v = verify(
        Presentation::with_anchor(&creds[1], &proof),
        &request,
        &view,
        &policy,
        clock + 10,
    )
    .unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);
    assert_eq!(v.check(CheckName::Anchor), Some(&Outcome::Pass));
    assert_eq!(v.issued_at, Some(sealed.time));
    // The proof does not fit the batch's other credential.
    let v = verify(
        Presentation::with_anchor(&creds[0], &proof),
        &request,
        &view,
        &policy,
        clock + 10,
    )
    .unwrap();
    assert!(matches!(v.check(CheckName::Anchor), Some(Outcome::Fail(_))));

    // Reopened, the replica still knows the anchor and its block.
    drop(replica);
    let replica = Replica::open(&replica_dir, trust.policy().unwrap()).unwrap();
    assert_eq!(replica.view().unwrap().anchor(anchor_index), Some(&record));
    // A replica whose anchor records are missing (made before there were
    // any: no records, an index tree of the older layout) rebuilds them
    // from its entries and blocks when it opens, and drops the old tree.
    let store = replica.store();
    let size = store.size().unwrap();
    store
        .replace_anchor_chunks(&[], AnchorCover { size, count: 0 })
        .unwrap();
    store.remove_meta("anchors").unwrap();
    store
        .open_tree("anchors")
        .unwrap()
        .insert(anchor_index.to_be_bytes(), &0u64.to_be_bytes())
        .unwrap();
    store
        .set_meta("anchors-scanned", &size.to_be_bytes())
        .unwrap();
    store.flush().unwrap();
    drop(replica);
    let replica = Replica::open(&replica_dir, trust.policy().unwrap()).unwrap();
    assert_eq!(
        replica.view().unwrap().anchors(),
        std::slice::from_ref(&record)
    );
    assert_eq!(
        replica.store().anchor_cover().unwrap(),
        Some(AnchorCover { size, count: 1 })
    );
    assert!(replica.store().meta("anchors-scanned").unwrap().is_none());
    assert!(replica.store().anchor_chunks().unwrap().len() == 1);

    // Damaged anchor records never give a wrong view: each is rebuilt from
    // the entries when the replica opens.
    let good = replica.store().anchor_chunks().unwrap();
    let (key0, bytes0) = (good[0].0, good[0].1.to_vec());
    let mut flipped = bytes0.clone();
    flipped[10] ^= 0x01;
    let beyond = {
        // Well formed, but the record of an entry beyond the head.
        let mut a = vouch_core::view::Anchors::default();
        let mut r = record.clone();
        r.index = size + 5;
        a.push_record(&r).unwrap();
        a.encoded_from(0)
    };
    let cover = |size, count| AnchorCover { size, count };
    type Chunks = Vec<(u64, Vec<u8>)>;
    let damages: Vec<(Chunks, AnchorCover)> = vec![
        (vec![(key0, b"not a chunk".to_vec())], cover(size, 1)),
        (vec![(key0, flipped)], cover(size, 1)),
        (
            vec![(key0, bytes0[..bytes0.len() - 1].to_vec())],
            cover(size, 1),
        ),
        (vec![(key0 + 1, bytes0.clone())], cover(size, 1)),
        (
            vec![(key0, bytes0.clone()), (key0 + 1, bytes0.clone())],
            cover(size, 2),
        ),
        (vec![], cover(size, 1)),
        (vec![(key0, bytes0.clone())], cover(size, 2)),
        (vec![(key0, bytes0.clone())], cover(size - 1, 1)),
        (beyond, cover(size, 1)),
    ];
    drop(replica);
    for (n, (chunks, covered)) in damages.into_iter().enumerate() {
        {
            let replica = Replica::open(&replica_dir, trust.policy().unwrap()).unwrap();
            replica
                .store()
                .replace_anchor_chunks(&chunks, covered)
                .unwrap();
        }
        let replica = Replica::open(&replica_dir, trust.policy().unwrap()).unwrap();
        assert_eq!(
            replica.view().unwrap().anchors(),
            std::slice::from_ref(&record),
            "damage {n}"
        );
        assert_eq!(replica.store().anchor_chunks().unwrap(), good, "damage {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_write_of_a_sync_leaves_the_anchors_of_the_head() {
    let root = tempdir("view-anchor-crash");
    let node_dir = root.path().join("node");
    let authority = init_node(&node_dir, vec![], 0);
    let node = Arc::new(Node::open(&node_dir).unwrap());
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
    let client = server.client();
    let policy = trust_alone(&node).policy().unwrap();
    let mut dirs = Vec::new();
    for n in 0..6u64 {
        let dir = root.path().join(format!("replica-{n}"));
        Replica::open(&dir, policy.clone())
            .unwrap()
            .sync(&client)
            .await
            .unwrap();
        dirs.push(dir);
    }
    for n in 3..6 {
        node.submit(anchor(&uni, n, n).as_bytes(), now()).unwrap();
    }
    node.seal(now()).unwrap().unwrap();

    // Each anchor with the block that first sealed it: the first three by
    // block 1, the next three by block 2.
    let check = |replica: &Replica| {
        let view = replica.view().unwrap();
        let size = view.block().size;
        let indexes: Vec<u64> = view.anchors().iter().map(|a| a.index).collect();
        let expected: Vec<u64> = (2..8).filter(|&i| i < size).collect();
        assert_eq!(indexes, expected, "head of {size} entries");
        for a in view.anchors() {
            assert_eq!(a.sealed_height, if a.index < 5 { 1 } else { 2 }, "{a:?}");
        }
    };
    for (n, dir) in dirs.iter().enumerate() {
        {
            let mut replica = Replica::open(dir, policy.clone()).unwrap();
            replica.store().crash_after_writes(n as u64);
            let _ = replica.sync(&client).await;
        }
        let mut replica = Replica::open(dir, policy.clone()).unwrap();
        check(&replica);
        replica.sync(&client).await.unwrap();
        check(&replica);
        assert_eq!(replica.view().unwrap().anchors().len(), 6);
        drop(replica);
        check(&Replica::open(dir, policy.clone()).unwrap());
    }
}

//! A node, two witnesses and replicas on loopback: entries accepted, blocks
//! cosigned, replicas syncing under a 2-of-2-witness policy, a tampered
//! entry in transit refused, short entry ranges carried on from, status
//! reads refused with the reason.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::routing::{any, get};
use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::log::{self, TrustPolicy};
use vouch_registry::client::NodeClient;
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, ReplicaError};
use vouch_registry::witness::Witness;

use crate::common::*;

fn trust(node: &Node, witnesses: &[&Witness], need: usize) -> vouch_registry::replica::Trust {
    vouch_registry::replica::Trust {
        node_vkey: node.vkey(),
        witnesses: witnesses.iter().map(|w| w.vkey()).collect(),
        need,
    }
}

fn policy(node: &Node, witnesses: &[&Witness], need: usize) -> TrustPolicy {
    trust(node, witnesses, need).policy().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_two_witnesses_and_replicas() {
    let root = tempdir("net");
    let mut w1 = Witness::open(
        &root.path().join("w1"),
        Some("w1"),
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    let mut w2 = Witness::open(
        &root.path().join("w2"),
        Some("w2"),
        &mut StdRng::seed_from_u64(2),
    )
    .unwrap();
    let node_dir = root.path().join("node");
    let authority = init_node(&node_dir, vec![w1.vkey(), w2.vkey()], 2);
    let node = Arc::new(Node::open(&node_dir).unwrap());
    let server = serve(node.clone()).await;
    let url = server.url().to_owned();
    let client = NodeClient::new(&url).unwrap();
    w1.pin_node(&node.vkey()).unwrap();
    w2.pin_node(&node.vkey()).unwrap();

    // Entries: accredit, anchors, a status list revoking index 13.
    let uni = key(2);
    let mut leaves = Vec::new();
    leaves.push(
        client
            .submit(accredit(&authority, 1, &uni, &["transcript"]).as_bytes())
            .await
            .unwrap(),
    );
    for n in 0..20 {
        leaves.push(client.submit(anchor(&uni, n, n).as_bytes()).await.unwrap());
    }
    leaves.push(
        client
            .submit(status(&uni, 20, 1, &uni_list(), &[13]).as_bytes())
            .await
            .unwrap(),
    );
    assert_eq!(leaves.last().unwrap().index, 22);
    client.seal().await.unwrap();

    // A replica needing both witnesses cannot move past genesis yet.
    let strict = policy(&node, &[&w1, &w2], 2);
    let mut replica = Replica::open(&root.path().join("replica"), strict.clone()).unwrap();
    let err = replica.sync(&client).await.unwrap_err();
    assert!(matches!(err, ReplicaError::Checkpoint(_)), "{err}");
    assert!(replica.head().is_none());

    // Each witness replays the log and cosigns the new block.
    let (h1, by1) = w1.round(&client).await.unwrap().unwrap();
    assert_eq!((h1, by1), (1, vec!["w1".to_string()]));
    let (h2, by2) = w2.round(&client).await.unwrap().unwrap();
    assert_eq!((h2, by2), (1, vec!["w1".to_string(), "w2".to_string()]));
    assert_eq!(
        w1.round(&client).await.unwrap(),
        None,
        "nothing new to cosign"
    );

    let report = replica.sync(&client).await.unwrap();
    assert_eq!((report.from, report.to, report.height), (0, 23, 1));
    assert_eq!(report.cosigned_by, vec!["w1".to_string(), "w2".to_string()]);
    let head = replica.head().unwrap().block.clone();
    let a = replica.accredited(&did(&uni), "transcript", now()).unwrap();
    assert!(a.value);
    assert_eq!((a.height, a.size, a.time), (1, 23, head.time));
    assert!(
        !replica
            .accredited(&did(&uni), "employment", now())
            .unwrap()
            .value
    );
    assert_eq!(
        replica
            .status(&did(&uni), &uni_list(), 13, now())
            .unwrap()
            .value,
        Some(1)
    );
    assert_eq!(
        replica
            .status(&did(&uni), &uni_list(), 12, now())
            .unwrap()
            .value,
        Some(0)
    );

    // Inclusion proofs from the node check against the cosigned block.
    for r in &leaves {
        let proof = client.inclusion(r.index, head.size).await.unwrap();
        let leaf = vouch_core::log::Hash(hex::decode(&r.leaf_hash).unwrap().try_into().unwrap());
        log::verify_inclusion(&proof, head.size, head.root, r.index, leaf).unwrap();
    }

    // More entries; only w1 cosigns: the strict replica stays at block 1, a
    // replica needing one witness moves on.
    client
        .submit(anchor(&uni, 21, 21).as_bytes())
        .await
        .unwrap();
    client.seal().await.unwrap();
    w1.round(&client).await.unwrap().unwrap();
    let again = replica.sync(&client).await.unwrap();
    assert_eq!((again.to, again.height), (23, 1));
    // 1 of 2 is a weak quorum: refused unless forced.
    let weak = trust(&node, &[&w1, &w2], 1);
    assert!(weak.policy().is_err());
    let mut lenient = Replica::open(
        &root.path().join("lenient"),
        weak.policy_with(true).unwrap(),
    )
    .unwrap();
    let r = lenient.sync(&client).await.unwrap();
    assert_eq!(
        (r.to, r.height, r.cosigned_by),
        (24, 2, vec!["w1".to_string()])
    );
    w2.round(&client).await.unwrap().unwrap();
    assert_eq!(replica.sync(&client).await.unwrap().to, 24);

    // The replica survives a restart with its state.
    drop(replica);
    let replica = Replica::open(&root.path().join("replica"), strict).unwrap();
    assert_eq!(replica.head().unwrap().block.size, 24);
    assert_eq!(
        replica
            .status(&did(&uni), &uni_list(), 13, now())
            .unwrap()
            .value,
        Some(1)
    );
    vouch_registry::replica::audit(replica.store(), &policy(&node, &[&w1, &w2], 2)).unwrap();
}

#[derive(Clone)]
struct Proxy {
    upstream: String,
    http: reqwest::Client,
}

/// Forwards to the node, flipping one byte of the 3rd entry of every entry
/// range it relays.
async fn tamper(State(p): State<Proxy>, req: Request) -> (axum::http::StatusCode, Bytes) {
    let uri = req.uri().to_string();
    let method = req.method().clone();
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .unwrap();
    let resp = p
        .http
        .request(method, format!("{}{uri}", p.upstream))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = axum::http::StatusCode::from_u16(resp.status().as_u16()).unwrap();
    let mut bytes = resp.bytes().await.unwrap().to_vec();
    if uri.starts_with("/v1/entries?") {
        let lines: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, &b)| b == b'\n')
            .map(|(i, _)| i)
            .collect();
        if lines.len() > 3 {
            // Inside the 3rd entry: "count":2 becomes "count":3.
            let line = &mut bytes[lines[1] + 1..lines[2]];
            let at = line.windows(9).position(|w| w == b"\"count\":2").unwrap();
            line[at + 8] = b'3';
        }
    }
    (status, Bytes::from(bytes))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_entry_in_transit_is_refused() {
    let root = tempdir("tamper");
    let node_dir = root.path().join("node");
    let authority = init_node(&node_dir, vec![], 0);
    let node = Arc::new(Node::open(&node_dir).unwrap());
    let server = serve(node.clone()).await;
    let url = server.url().to_owned();
    let client = NodeClient::new(&url).unwrap();
    let uni = key(2);
    client
        .submit(accredit(&authority, 1, &uni, &["transcript"]).as_bytes())
        .await
        .unwrap();
    for n in 0..5 {
        client.submit(anchor(&uni, n, n).as_bytes()).await.unwrap();
    }
    client.seal().await.unwrap();

    let proxy = Proxy {
        upstream: url.clone(),
        http: reqwest::Client::new(),
    };
    let app = axum::Router::new().fallback(any(tamper)).with_state(proxy);
    let proxy_server = serve_router(app, vouch_registry::ServeLimits::default()).await;
    let proxy_url = proxy_server.url().to_owned();

    let trust = trust_alone(&node);
    let dir = root.path().join("replica");
    let mut replica = Replica::open(&dir, trust.policy().unwrap()).unwrap();
    let err = replica
        .sync(&NodeClient::new(&proxy_url).unwrap())
        .await
        .unwrap_err();
    match &err {
        ReplicaError::BadEntry { index, source } => {
            assert_eq!(*index, 2);
            let reason = source.to_string();
            assert!(reason.contains("signature"), "{reason}");
        }
        other => panic!("expected a refused entry, got {other}"),
    }
    assert!(
        replica.head().is_none(),
        "a failed sync changed the replica"
    );
    assert_eq!(replica.store().size().unwrap(), 0);
    // The same replica syncs from the node itself.
    assert_eq!(replica.sync(&client).await.unwrap().to, 7);
}

/// A node that serves short entry ranges: at most 3 entries a reply, and
/// nothing at all on every other request (or on every request, `empty`), so
/// the client's own completion of a short range stops early.
#[derive(Clone)]
struct ShortRanges {
    node: Arc<Node>,
    calls: Arc<AtomicU64>,
    empty: bool,
}

async fn short_entries(
    State(s): State<ShortRanges>,
    Query(q): Query<HashMap<String, u64>>,
) -> Vec<u8> {
    let call = s.calls.fetch_add(1, Ordering::SeqCst);
    if s.empty || call % 2 == 1 {
        return Vec::new();
    }
    let (start, end) = (q["start"], q["end"]);
    let mut body = Vec::new();
    for e in s.node.entries(start, end.min(start + 3)).unwrap() {
        body.extend_from_slice(&e);
        body.push(b'\n');
    }
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_carries_on_after_a_short_entry_range() {
    let root = tempdir("short-ranges");
    let node_dir = root.path().join("node");
    let authority = init_node(&node_dir, vec![], 0);
    let node = Arc::new(Node::open(&node_dir).unwrap());
    let uni = key(2);
    node.submit(
        accredit(&authority, 1, &uni, &["transcript"]).as_bytes(),
        now(),
    )
    .unwrap();
    for n in 0..20 {
        node.submit(anchor(&uni, n, n).as_bytes(), now()).unwrap();
    }
    node.seal(now()).unwrap().unwrap();
    let real = vouch_registry::api::app(node.clone()).unwrap();
    let short = |empty: bool| {
        let calls = Arc::new(AtomicU64::new(0));
        let state = ShortRanges {
            node: node.clone(),
            calls: calls.clone(),
            empty,
        };
        let router = axum::Router::new()
            .route("/v1/entries", get(short_entries))
            .with_state(state)
            .fallback_service(real.clone());
        (router, calls)
    };
    let trust = trust_alone(&node);

    // A node that serves nothing at all is refused, and nothing changes.
    let (router, _) = short(true);
    let server = serve_router(router, vouch_registry::ServeLimits::default()).await;
    let url = server.url().to_owned();
    let mut replica = Replica::open(&root.path().join("replica"), trust.policy().unwrap()).unwrap();
    let err = replica
        .sync(&NodeClient::new(&url).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("got 0"), "{err}");
    assert!(replica.head().is_none());
    assert_eq!(replica.store().size().unwrap(), 0);

    // Three entries at a time: the replica asks again from where it got to.
    let (router, calls) = short(false);
    let server = serve_router(router, vouch_registry::ServeLimits::default()).await;
    let url = server.url().to_owned();
    let report = replica.sync(&NodeClient::new(&url).unwrap()).await.unwrap();
    assert_eq!(report.to, node.size());
    assert!(
        calls.load(Ordering::SeqCst) >= 2 * (node.size() / 3),
        "the ranges were not short"
    );
    assert_eq!(replica.state(), &node.with_state(Clone::clone));
    vouch_registry::replica::audit(replica.store(), &trust.policy().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_status_reads_say_why() {
    use vouch_core::chain::{Action, Entry, RuleError};
    use vouch_core::status_list::{StatusList, StatusListClaims};
    use vouch_core::DidKey;

    let root = tempdir("status-read");
    let node_dir = root.path().join("node");
    let authority = init_node(&node_dir, vec![], 0);
    let node = Arc::new(Node::open(&node_dir).unwrap());
    let (uni, rival) = (key(2), key(3));
    let clock = now();
    for (seq, issuer) in [(1, &uni), (2, &rival)] {
        node.submit(
            accredit(&authority, seq, issuer, &["transcript"]).as_bytes(),
            clock,
        )
        .unwrap();
    }
    // A token of `uni`'s list that expires 100 s from now.
    let mut list = StatusList::new(1, 64).unwrap();
    list.set(5, 1).unwrap();
    let token = StatusListClaims {
        sub: uni_list(),
        iss: Some(did(&uni)),
        iat: clock,
        exp: Some(clock + 100),
        ttl: None,
        list,
    }
    .sign(
        &DidKey::from_public_key(&uni.verifying_key()).verification_method(),
        &uni,
    );
    let entry = Entry::sign(
        &uni,
        0,
        clock,
        Action::Status {
            list: uni_list(),
            sequence: 1,
            token: token.as_str().to_owned(),
        },
    );
    node.submit(entry.as_bytes(), clock).unwrap();
    node.seal(clock).unwrap().unwrap();
    let server = serve(node.clone()).await;
    let client = server.client();
    let trust = trust_alone(&node);
    let mut replica = Replica::open(&root.path().join("replica"), trust.policy().unwrap()).unwrap();
    replica.sync_at(&client, clock).await.unwrap();
    assert_eq!(
        replica
            .status(&did(&uni), &uni_list(), 5, clock)
            .unwrap()
            .value,
        Some(1)
    );
    let refused = |iss: &ed25519_dalek::SigningKey, idx: u64, at: i64| match replica
        .status(&did(iss), &uni_list(), idx, at)
        .unwrap_err()
    {
        ReplicaError::StatusRead {
            list,
            idx: i,
            source,
        } => {
            assert_eq!((list.as_str(), i), (uni_list().as_str(), idx));
            source
        }
        other => panic!("expected a refused status read, got {other}"),
    };
    // Another accredited issuer's credential cannot be read from uni's list.
    assert!(matches!(
        refused(&rival, 5, clock),
        RuleError::ListIssuer { .. }
    ));
    // Past its exp, the token says nothing.
    assert!(matches!(
        refused(&uni, 5, clock + 100),
        RuleError::TokenExpired { .. }
    ));
    // An index beyond the list.
    assert!(matches!(refused(&uni, 64, clock), RuleError::Token(_)));
}

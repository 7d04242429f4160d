//! The node's clock-skew check cannot be bypassed by overflow: entry times
//! near `i64::MIN` or `i64::MAX` are refused through the API like any other
//! time far from the node's clock. A replica refuses a block dated further
//! ahead of its own clock than the skew allows.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use vouch_core::chain::{Action, Entry};
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, ReplicaError, BLOCK_CLOCK_SKEW};

use crate::common::*;

#[tokio::test]
async fn entry_times_that_overflow_the_skew_check_are_refused() {
    let dir = tempdir("clock");
    let authority = init_node(dir.path(), vec![], 0);
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let app = vouch_registry::api::app(node.clone()).unwrap();
    let clock = now();
    // now - 2^63: `time - now` is i64::MIN, whose `abs()` overflows.
    let wraps = clock.wrapping_add(i64::MIN);
    for time in [
        i64::MIN,
        wraps,
        i64::MIN + 1,
        i64::MAX,
        clock - 601,
        clock + 601,
    ] {
        let entry = Entry::sign(
            &authority,
            1,
            time,
            Action::Accredit {
                issuer: did(&key(2)),
                name: "Test University".into(),
                kinds: vec!["transcript".into()],
            },
        );
        let req = Request::post("/v1/entries")
            .body(Body::from(entry.as_bytes().to_vec()))
            .unwrap();
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(status, StatusCode::BAD_REQUEST, "time {time}: {body}");
        assert_eq!(body["error"], "clock", "time {time}: {body}");
        assert_eq!(node.size(), 1, "time {time}: a refused entry was stored");
    }
    // Within the skew, the same entry is accepted.
    let entry = accredit(&authority, 1, &key(2), &["transcript"]);
    node.submit(entry.as_bytes(), clock).unwrap();
    assert_eq!(node.size(), 2);
}

fn refused_block(err: &ReplicaError) -> (u64, String) {
    match err {
        ReplicaError::BadBlock { height, reason } => (*height, reason.to_string()),
        other => panic!("expected a refused block, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_refuses_a_block_from_the_future_and_applies_nothing() {
    let root = tempdir("replica-future");
    let node_dir = root.path().join("node");
    let authority = init_node(&node_dir, vec![], 0);
    let node = Arc::new(Node::open(&node_dir).unwrap());
    let clock = now();
    node.submit(
        accredit(&authority, 1, &key(2), &["transcript"]).as_bytes(),
        clock,
    )
    .unwrap();
    node.seal(clock).unwrap().unwrap();
    let server = serve(node.clone()).await;
    let client = server.client();
    let trust = trust_alone(&node);
    let open = |name: &str| Replica::open(&root.path().join(name), trust.policy().unwrap());
    let mut replica = open("replica").unwrap();
    let size = replica.sync_at(&client, clock).await.unwrap().to;

    // Block 2 is dated 660 s ahead of the replica's clock.
    node.submit(anchor(&key(2), 0, 0).as_bytes(), clock)
        .unwrap();
    node.seal(clock + BLOCK_CLOCK_SKEW + 60).unwrap().unwrap();
    let err = replica.sync_at(&client, clock).await.unwrap_err();
    let (height, reason) = refused_block(&err);
    assert_eq!(height, 2, "{err}");
    assert!(reason.contains("ahead"), "{err}");
    assert_eq!(replica.head().unwrap().block.height, 1, "the head moved");
    assert_eq!(replica.store().size().unwrap(), size, "entries were stored");
    assert_eq!(replica.state().size, size, "entries were applied");
    // A replica that has never synced takes nothing either.
    let mut fresh = open("fresh").unwrap();
    let err = fresh.sync_at(&client, clock).await.unwrap_err();
    assert_eq!(refused_block(&err).0, 2, "{err}");
    assert!(fresh.head().is_none());
    assert_eq!(fresh.store().size().unwrap(), 0);
    // Within the skew of the replica's clock, the block is taken.
    let synced = replica.sync_at(&client, clock + 60).await.unwrap();
    assert_eq!((synced.height, synced.to), (2, size + 1));
}

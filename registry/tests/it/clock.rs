//! The node's clock-skew check cannot be bypassed by overflow: entry times
//! near `i64::MIN` or `i64::MAX` are refused through the API like any other
//! time far from the node's clock.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use vouch_core::chain::{Action, Entry};
use vouch_registry::node::Node;
use vouch_registry::now;

use crate::common::*;

#[tokio::test]
async fn entry_times_that_overflow_the_skew_check_are_refused() {
    let dir = TempDir::new("clock");
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

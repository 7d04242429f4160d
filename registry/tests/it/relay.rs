//! The relay through the HTTP API (oneshot): its own store and quota, the
//! per-client rate limit, and read-once items served exactly once.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use vouch_registry::api;
use vouch_registry::node::Node;
use vouch_registry::relay::{Relay, RelayLimits, ITEM_OVERHEAD};

use crate::common::*;

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, body)
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body).unwrap_or_default()
}

/// A relay upload as if from `from`.
fn put_from(from: &str, path: &str, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::put(path).body(Body::from(body)).unwrap();
    let addr: SocketAddr = format!("{from}:40000").parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

/// A node with its API over a relay with `limits`.
fn setup(name: &str, limits: RelayLimits) -> (TempDir, Arc<Node>, Arc<Relay>, axum::Router) {
    let dir = tempdir(name);
    init_node(dir.path(), vec![], 0);
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let relay = Arc::new(Relay::open(&dir.path().join("relay"), limits).unwrap());
    let app = api::app_with(node.clone(), relay.clone());
    (dir, node, relay, app)
}

#[tokio::test]
async fn a_full_relay_refuses_uploads_and_the_chain_still_takes_entries() {
    let item = 1000;
    let (dir, node, relay, app) = setup(
        "relay-quota",
        RelayLimits {
            max_total_bytes: 4 * (ITEM_OVERHEAD + 9 + item),
            ..RelayLimits::default()
        },
    );
    let authority = vouch_registry::keys::read(&dir.path().join("authority.key")).unwrap();
    let mut ids = Vec::new();
    for n in 0..4 {
        let (s, body) = call(
            &app,
            put_from(&format!("10.0.0.{n}"), "/v1/relay?ttl=600", vec![7; 1000]),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{}", json(&body));
        ids.push(json(&body)["id"].as_str().unwrap().to_owned());
    }
    let (s, body) = call(&app, put_from("10.0.0.9", "/v1/relay", vec![7; 1000])).await;
    let body = json(&body);
    assert_eq!(s, StatusCode::INSUFFICIENT_STORAGE, "{body}");
    assert_eq!(body["error"], "relay_full", "{body}");
    assert_eq!(relay.len(), 4, "a refused upload was stored");

    // The relay's bytes are in its own Db, none in the chain's.
    assert!(dir.path().join("relay").is_dir());
    assert!(node.store().open_tree("relay").unwrap().is_empty());

    // The chain is unaffected: an entry is still accepted and stored.
    let before = node.size();
    let entry = accredit(&authority, 1, &key(2), &["diploma"]);
    let resp = app
        .clone()
        .oneshot(
            Request::post("/v1/entries")
                .body(Body::from(entry.as_bytes().to_vec()))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(node.size(), before + 1);

    // Taking a read-once item frees its share of the quota.
    let req = Request::get(format!("/v1/relay/{}", ids[0]))
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, req).await.0, StatusCode::OK);
    let (s, _) = call(&app, put_from("10.0.0.9", "/v1/relay", vec![7; 1000])).await;
    assert_eq!(s, StatusCode::CREATED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_fetches_of_a_read_once_item_serve_it_exactly_once() {
    let (_dir, _node, _relay, app) = setup(
        "relay-once",
        RelayLimits {
            puts_per_window: 1000,
            ..RelayLimits::default()
        },
    );
    let mut ids = Vec::new();
    for n in 0..150u8 {
        let (s, body) = call(
            &app,
            put_from("10.0.0.1", "/v1/relay?once=true", vec![n; 64]),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
        ids.push(json(&body)["id"].as_str().unwrap().to_owned());
    }
    let mut tasks = Vec::new();
    for id in &ids {
        for _ in 0..8 {
            let app = app.clone();
            let path = format!("/v1/relay/{id}");
            tasks.push(tokio::spawn(async move {
                let req = Request::get(path).body(Body::empty()).unwrap();
                (id_of(&req), call(&app, req).await)
            }));
        }
    }
    let mut served = std::collections::HashMap::<String, usize>::new();
    for t in tasks {
        let (id, (status, body)) = t.await.unwrap();
        match status {
            StatusCode::OK => *served.entry(id).or_default() += 1,
            StatusCode::NOT_FOUND => assert_eq!(json(&body)["error"], "not_found"),
            s => panic!("unexpected {s}"),
        }
    }
    for id in &ids {
        assert_eq!(
            served.get(id),
            Some(&1),
            "item {id} served {:?} times",
            served.get(id)
        );
    }
}

fn id_of(req: &Request<Body>) -> String {
    req.uri().path().rsplit('/').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_relay_limits_uploads_per_client_and_clients_per_window() {
    let (_dir, _node, relay, app) = setup(
        "relay-rate",
        RelayLimits {
            puts_per_window: 3,
            max_clients: 3,
            ..RelayLimits::default()
        },
    );
    for _ in 0..3 {
        assert_eq!(
            call(&app, put_from("192.0.2.1", "/v1/relay", b"x".to_vec()))
                .await
                .0,
            StatusCode::CREATED
        );
    }
    let (s, body) = call(&app, put_from("192.0.2.1", "/v1/relay", b"x".to_vec())).await;
    let body = json(&body);
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(relay.len(), 3);

    // Another IPv6 address in the same /64 is the same client.
    for _ in 0..3 {
        call(&app, put_from("[2001:db8::1]", "/v1/relay", b"x".to_vec())).await;
    }
    assert_eq!(
        call(&app, put_from("[2001:db8::2]", "/v1/relay", b"x".to_vec()))
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another client is still served, up to the number of clients tracked.
    assert_eq!(
        call(&app, put_from("192.0.2.2", "/v1/relay", b"x".to_vec()))
            .await
            .0,
        StatusCode::CREATED
    );
    let (s, body) = call(&app, put_from("192.0.2.3", "/v1/relay", b"x".to_vec())).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(json(&body)["error"], "busy");
}

#[tokio::test]
async fn relay_refusals_are_json() {
    let (_dir, _node, relay, app) = setup("relay-json", RelayLimits::default());
    for (req, status, code) in [
        (
            put_from("10.1.1.1", "/v1/relay", Vec::new()),
            StatusCode::BAD_REQUEST,
            "empty",
        ),
        (
            put_from("10.1.1.1", "/v1/relay?ttl=86401", b"x".to_vec()),
            StatusCode::BAD_REQUEST,
            "bad_ttl",
        ),
        (
            put_from("10.1.1.1", "/v1/relay?ttl=-1", b"x".to_vec()),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            put_from("10.1.1.1", "/v1/relay", vec![0; api::MAX_RELAY_BYTES + 1]),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
        (
            Request::get("/v1/relay/nothex")
                .body(Body::empty())
                .unwrap(),
            StatusCode::BAD_REQUEST,
            "bad_id",
        ),
        (
            Request::delete("/v1/relay").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ] {
        let what = format!("{} {}", req.method(), req.uri());
        let (s, body) = call(&app, req).await;
        let body = json(&body);
        assert_eq!(
            (s, body["error"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}"
        );
    }
    assert!(relay.is_empty());
}

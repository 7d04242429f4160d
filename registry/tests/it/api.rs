//! The API driven without a socket: every refusal is a 4xx with a JSON body
//! and stores nothing; writes are rate limited per client; the state's JSON
//! follows the chain.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use vouch_core::chain::{Action, Entry};
use vouch_registry::api;
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::relay::{Relay, RelayLimits};

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

async fn post(
    app: &axum::Router,
    path: &str,
    body: impl Into<Body>,
) -> (StatusCode, serde_json::Value) {
    let req = Request::post(path).body(body.into()).unwrap();
    let (status, body) = call(app, req).await;
    (status, serde_json::from_slice(&body).unwrap_or_default())
}

async fn get(app: &axum::Router, path: &str) -> (StatusCode, Vec<u8>) {
    call(app, Request::get(path).body(Body::empty()).unwrap()).await
}

/// Submits and expects a refusal with `code`; the log must not grow.
async fn refused(
    app: &axum::Router,
    node: &Node,
    bytes: Vec<u8>,
    status: StatusCode,
    code: &str,
) -> String {
    let before = node.size();
    let (s, body) = post(app, "/v1/entries", bytes).await;
    assert_eq!(s, status, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(node.size(), before, "a refused entry was stored");
    body["detail"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn bad_entries_are_refused_and_nothing_is_stored() {
    let dir = tempdir("api");
    let authority = init_node(dir.path(), vec![], 0);
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let app = api::app(node.clone()).unwrap();
    let uni = key(2);
    let other = key(3);

    // Malformed and non-canonical input.
    refused(
        &app,
        &node,
        b"not json".to_vec(),
        StatusCode::BAD_REQUEST,
        "bad_entry",
    )
    .await;
    refused(
        &app,
        &node,
        b"{}".to_vec(),
        StatusCode::BAD_REQUEST,
        "bad_entry",
    )
    .await;
    let good = accredit(&authority, 1, &uni, &["transcript"]);
    let spaced = String::from_utf8(good.as_bytes().to_vec())
        .unwrap()
        .replacen(":", ": ", 1);
    let d = refused(
        &app,
        &node,
        spaced.into_bytes(),
        StatusCode::BAD_REQUEST,
        "bad_entry",
    )
    .await;
    assert!(d.contains("canonical"), "{d}");

    // Signed by the wrong key: the author field names the authority, the
    // signature is another key's.
    let forged = Entry::sign(&uni, 1, now(), good.action().clone());
    let text = String::from_utf8(forged.as_bytes().to_vec())
        .unwrap()
        .replace(&did(&uni), &did(&authority));
    let d = refused(
        &app,
        &node,
        text.into_bytes(),
        StatusCode::BAD_REQUEST,
        "bad_entry",
    )
    .await;
    assert!(d.contains("signature"), "{d}");

    // Unaccredited issuer anchors; non-authority accredits.
    refused(
        &app,
        &node,
        anchor(&uni, 0, 0).as_bytes().to_vec(),
        StatusCode::CONFLICT,
        "rule",
    )
    .await;
    refused(
        &app,
        &node,
        accredit(&uni, 0, &uni, &["transcript"]).as_bytes().to_vec(),
        StatusCode::CONFLICT,
        "rule",
    )
    .await;

    // Clock far off.
    let late = Entry::sign(&authority, 1, now() - 3600, good.action().clone());
    refused(
        &app,
        &node,
        late.as_bytes().to_vec(),
        StatusCode::BAD_REQUEST,
        "clock",
    )
    .await;

    // Accepted, then replayed.
    let (s, body) = post(&app, "/v1/entries", good.as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["index"], 1);
    let d = refused(
        &app,
        &node,
        good.as_bytes().to_vec(),
        StatusCode::CONFLICT,
        "rule",
    )
    .await;
    assert!(d.contains("sequence"), "{d}");

    // uni's list; another issuer may not publish it.
    let (s, _) = post(&app, "/v1/entries", anchor(&uni, 0, 0).as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = post(
        &app,
        "/v1/entries",
        status(&uni, 1, 5, &uni_list(), &[3]).as_bytes().to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = post(
        &app,
        "/v1/entries",
        accredit(&authority, 2, &other, &["employment"])
            .as_bytes()
            .to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let d = refused(
        &app,
        &node,
        status(&other, 0, 6, &uni_list(), &[4]).as_bytes().to_vec(),
        StatusCode::CONFLICT,
        "rule",
    )
    .await;
    assert!(d.contains("belongs to"), "{d}");
    // A shrinking status sequence.
    let d = refused(
        &app,
        &node,
        status(&uni, 2, 4, &uni_list(), &[4]).as_bytes().to_vec(),
        StatusCode::CONFLICT,
        "rule",
    )
    .await;
    assert!(d.contains("sequence 4 does not follow 5"), "{d}");

    // Withdrawn issuers can no longer write.
    let withdraw = Entry::sign(
        &authority,
        3,
        now(),
        Action::Withdraw {
            issuer: did(&uni),
            reason: "test".into(),
        },
    );
    let (s, _) = post(&app, "/v1/entries", withdraw.as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::CREATED);
    let d = refused(
        &app,
        &node,
        anchor(&uni, 2, 1).as_bytes().to_vec(),
        StatusCode::CONFLICT,
        "rule",
    )
    .await;
    assert!(d.contains("withdrawn"), "{d}");

    // Too large a body.
    let huge = vec![b'x'; vouch_core::chain::MAX_ENTRY_BYTES + 10];
    let (s, _) = post(&app, "/v1/entries", huge).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(node.size(), 6);

    // The published status list token is served at its stable URL.
    let (s, body) = get(&app, &format!("/v1/status/{}~1", did(&uni))).await;
    assert_eq!(s, StatusCode::OK);
    let token = String::from_utf8(body).unwrap();
    let claims = vouch_core::status_list::StatusListClaims::verify(
        &token,
        &vouch_core::jws::PublicKey::Ed25519(uni.verifying_key()),
    )
    .unwrap();
    assert_eq!(claims.list.get(3), Ok(1));
    assert_eq!(get(&app, "/v1/status/nope").await.0, StatusCode::NOT_FOUND);
    // Looked up by exact id: a longer path ending in uni's id, or the same
    // name under another issuer's DID, is not uni's list.
    let longer = format!("/v1/status/x{}~1", did(&uni));
    assert_eq!(get(&app, &longer).await.0, StatusCode::NOT_FOUND);
    let foreign = format!("/v1/status/{}~1", did(&other));
    assert_eq!(get(&app, &foreign).await.0, StatusCode::NOT_FOUND);

    // Bad ranges and proofs.
    assert_eq!(
        get(&app, "/v1/entries?start=5&end=1").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/v1/entries?start=0&end=20000").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/v1/entries?start=x&end=1").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/v1/proof/inclusion?index=9&size=6").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/v1/proof/consistency?old=4&new=99").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/v1/entries/by-hash/zz").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(get(&app, "/v1/blocks/99").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        get(&app, "/v1/blocks?start=0&end=5000").await.0,
        StatusCode::BAD_REQUEST
    );
    let (s, notes) = get(&app, "/v1/blocks?start=0&end=10").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Vec<String>>(&notes).unwrap().len(),
        1
    );
    let (s, body) = post(&app, "/v1/blocks/0/cosignature", "garbage").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    let (s, lines) = get(&app, "/v1/entries?start=0&end=100").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(lines.iter().filter(|&&b| b == b'\n').count(), 6);
}

#[tokio::test]
async fn relay_keeps_a_blob_once_or_until_expiry() {
    let dir = tempdir("relay");
    init_node(dir.path(), vec![], 0);
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let app = api::app(node).unwrap();
    let put = |path: &str, body: Vec<u8>| Request::put(path).body(Body::from(body)).unwrap();

    let (s, body) = call(&app, put("/v1/relay?ttl=60", b"sealed box".to_vec())).await;
    assert_eq!(s, StatusCode::CREATED);
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (s, blob) = get(&app, &format!("/v1/relay/{id}")).await;
    assert_eq!((s, blob.as_slice()), (StatusCode::OK, &b"sealed box"[..]));
    assert_eq!(
        get(&app, &format!("/v1/relay/{id}")).await.0,
        StatusCode::NOT_FOUND
    );

    let (s, body) = call(&app, put("/v1/relay?ttl=60&once=false", b"again".to_vec())).await;
    assert_eq!(s, StatusCode::CREATED);
    let id = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        get(&app, &format!("/v1/relay/{id}")).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&app, &format!("/v1/relay/{id}")).await.0,
        StatusCode::OK
    );

    assert_eq!(
        call(&app, put("/v1/relay", Vec::new())).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&app, put("/v1/relay?ttl=0", b"x".to_vec())).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&app, put("/v1/relay", vec![0; api::MAX_RELAY_BYTES + 1]))
            .await
            .0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(
        get(&app, "/v1/relay/nothex").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, &format!("/v1/relay/{}", "0".repeat(32))).await.0,
        StatusCode::NOT_FOUND
    );
}

/// A write (POST) as if from `ip`.
fn post_from(ip: &str, path: &str, body: Vec<u8>) -> Request<Body> {
    let mut req = Request::post(path).body(Body::from(body)).unwrap();
    let addr = SocketAddr::from((ip.parse::<IpAddr>().unwrap(), 40000));
    req.extensions_mut().insert(ConnectInfo(addr));
    req
}

#[tokio::test]
async fn writes_are_rate_limited_per_client() {
    let dir = tempdir("write-rate");
    let authority = init_node(dir.path(), vec![], 0);
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let relay = Arc::new(Relay::open(&dir.path().join("relay"), RelayLimits::default()).unwrap());
    let app = api::app_with_limits(
        node.clone(),
        relay,
        api::WriteLimits {
            per_window: 3,
            window: Duration::from_secs(3600),
            max_clients: 2,
        },
    );
    let uni = key(2);
    let send = |ip: &'static str, path: &'static str, body: Vec<u8>| {
        let app = app.clone();
        async move {
            let (status, body) = call(&app, post_from(ip, path, body)).await;
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            )
        }
    };
    // Client A's three writes: an entry, a seal, an entry.
    let accredit = accredit(&authority, 1, &uni, &["transcript"]);
    let (s, body) = send("10.0.0.1", "/v1/entries", accredit.as_bytes().to_vec()).await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = send("10.0.0.1", "/v1/seal", Vec::new()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = send(
        "10.0.0.1",
        "/v1/entries",
        anchor(&uni, 0, 0).as_bytes().to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    // A fourth entry and a seal from A are refused, and change nothing.
    let (size, height) = (node.size(), node.head().height);
    let (s, body) = send(
        "10.0.0.1",
        "/v1/entries",
        anchor(&uni, 1, 1).as_bytes().to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "rate_limited", "{body}");
    let (s, body) = send("10.0.0.1", "/v1/seal", Vec::new()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Cosignature posts count too: refused before their lines are checked.
    let note = node.checkpoint().into_bytes();
    let (s, body) = send("10.0.0.1", "/v1/blocks/1/cosignature", note).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!((node.size(), node.head().height), (size, height));
    // Another client still writes; a third is one client too many.
    let (s, body) = send(
        "10.0.0.2",
        "/v1/entries",
        anchor(&uni, 1, 1).as_bytes().to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let (s, body) = send("10.0.0.3", "/v1/seal", Vec::new()).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "busy", "{body}");
    assert_eq!(node.size(), size + 1);
    // Reads are not counted.
    let (s, _) = get(&app, "/v1/checkpoint").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn the_state_json_follows_the_chain_size() {
    let dir = tempdir("state-json");
    let authority = init_node(dir.path(), vec![], 0);
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let app = api::app(node.clone()).unwrap();
    let state = |app: axum::Router| async move {
        let (s, body) = get(&app, "/v1/state").await;
        assert_eq!(s, StatusCode::OK);
        body
    };
    let first = state(app.clone()).await;
    assert_eq!(first, state(app.clone()).await);
    let parsed: serde_json::Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(parsed["size"], 1);
    assert!(parsed["issuers"].as_object().unwrap().is_empty());
    let (s, body) = post(
        &app,
        "/v1/entries",
        accredit(&authority, 1, &key(2), &["transcript"])
            .as_bytes()
            .to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let parsed: serde_json::Value = serde_json::from_slice(&state(app.clone()).await).unwrap();
    assert_eq!(parsed["size"], 2);
    assert!(parsed["issuers"][did(&key(2))].is_object(), "{parsed}");
    assert_eq!(
        parsed,
        node.with_state(|st| serde_json::to_value(st).unwrap())
    );
}

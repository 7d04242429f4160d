//! The API driven without a socket: every refusal is a 4xx with a JSON body
//! and stores nothing.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use vouch_core::chain::{Action, Entry};
use vouch_registry::api;
use vouch_registry::node::Node;
use vouch_registry::now;

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
    let dir = TempDir::new("api");
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
    let dir = TempDir::new("relay");
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

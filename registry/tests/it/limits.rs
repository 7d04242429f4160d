//! Hostile peers: a client trickling its headers, more connections than the
//! cap, a fake node sending oversized replies, ranges too large in bytes,
//! and malformed paths and queries.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::Router;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tower::ServiceExt as _;
use vouch_core::chain::{Action, Entry};
use vouch_registry::client::{ClientError, NodeClient, MAX_NOTE_REPLY};
use vouch_registry::node::Node;
use vouch_registry::{api, now, ServeLimits};

use crate::common::*;

fn addr_of(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Sends a whole request on a fresh connection and reads the reply to the
/// end (the request asks the server to close).
async fn request(url: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr_of(url)).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_disconnected() {
    let dir = tempdir("loris");
    init_node(dir.path(), vec![], 0);
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let limits = ServeLimits {
        header_read_timeout: Duration::from_millis(300),
        ..ServeLimits::default()
    };
    let server = serve_router(api::app(node).unwrap(), limits).await;
    let url = server.url().to_owned();

    let stream = TcpStream::connect(addr_of(&url)).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    wr.write_all(b"GET /v1/in").await.unwrap();
    let mut reader = tokio::spawn(async move {
        let mut buf = Vec::new();
        // Ends at EOF (or a reset): either way the server closed it.
        let _ = rd.read_to_end(&mut buf).await;
        buf
    });
    // Trickle one byte at a time until the server hangs up. The outer bound
    // only stops the test from hanging on a server that never does.
    let closed = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            tokio::select! {
                r = &mut reader => return r.unwrap(),
                () = tokio::time::sleep(Duration::from_millis(50)) => {
                    if wr.write_all(b"f").await.is_err() {
                        return (&mut reader).await.unwrap();
                    }
                }
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept a connection trickling its headers open"
    );

    // The server still serves whole requests.
    assert!(request(&url, "/v1/info").await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed() {
    let dir = tempdir("idle");
    init_node(dir.path(), vec![], 0);
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let limits = ServeLimits {
        header_read_timeout: Duration::from_millis(300),
        ..ServeLimits::default()
    };
    let server = serve_router(api::app(node).unwrap(), limits).await;
    let url = server.url().to_owned();
    let mut s = TcpStream::connect(addr_of(&url)).await.unwrap();
    s.write_all(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    // One reply, then the connection stays idle until the server closes
    // it. The outer bound only stops the test hanging.
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out).await;
        out
    })
    .await;
    let out = read.expect("an idle kept-alive connection stayed open");
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
}

/// A router whose `/hold` requests wait until released, counting how many
/// are in their handler at once.
#[derive(Clone)]
struct Hold {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    entered: Arc<tokio::sync::Notify>,
    release: Arc<tokio::sync::Semaphore>,
}

impl Hold {
    fn new() -> Self {
        Self {
            now: Arc::default(),
            most: Arc::default(),
            entered: Arc::default(),
            release: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }

    fn router(&self) -> Router {
        let h = self.clone();
        Router::new().route(
            "/hold",
            get(move || {
                let h = h.clone();
                async move {
                    let n = h.now.fetch_add(1, Ordering::SeqCst) + 1;
                    h.most.fetch_max(n, Ordering::SeqCst);
                    h.entered.notify_one();
                    h.release.acquire().await.unwrap().forget();
                    h.now.fetch_sub(1, Ordering::SeqCst);
                    "done"
                }
            }),
        )
    }
}

#[tokio::test]
async fn connections_beyond_the_cap_are_not_served_concurrently() {
    let hold = Hold::new();
    let limits = ServeLimits {
        max_connections: 1,
        ..ServeLimits::default()
    };
    let server = serve_router(hold.router(), limits).await;
    let url = server.url().to_owned();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { request(&url, "/hold").await })
        })
        .collect();
    hold.entered.notified().await;
    // Give the other two every chance to get in; with the cap they cannot.
    let second = tokio::time::timeout(Duration::from_millis(500), hold.entered.notified()).await;
    assert!(
        second.is_err(),
        "a second connection was served concurrently"
    );
    hold.release.add_permits(3);
    for c in clients {
        let reply = c.await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    assert_eq!(hold.most.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_is_closed_when_it_reaches_its_age_limit() {
    let hold = Hold::new();
    let limits = ServeLimits {
        max_connection_age: Duration::from_millis(300),
        ..ServeLimits::default()
    };
    let server = serve_router(hold.router(), limits).await;
    let url = server.url().to_owned();
    // The handler never finishes; only the age limit ends the connection.
    let reply = tokio::time::timeout(Duration::from_secs(60), request(&url, "/hold")).await;
    assert_eq!(reply.expect("the connection outlived its age limit"), "");
}

#[tokio::test]
async fn shutdown_lets_a_request_in_flight_finish() {
    let hold = Hold::new();
    let mut server = serve_router(hold.router(), ServeLimits::default()).await;
    let url = server.url().to_owned();
    let client = tokio::spawn({
        let url = url.clone();
        async move { request(&url, "/hold").await }
    });
    hold.entered.notified().await;
    server.shutdown();
    hold.release.add_permits(1);
    assert!(client.await.unwrap().starts_with("HTTP/1.1 200"));
    server.stop().await.unwrap();
    assert!(TcpStream::connect(addr_of(&url)).await.is_err());
}

/// A body that streams `chunks` chunks of 1 MiB (no length declared),
/// stopping when the client hangs up.
fn endless(chunks: usize) -> Body {
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes>::new(2);
    tokio::spawn(async move {
        let chunk = Bytes::from(vec![b'a'; 1 << 20]);
        for _ in 0..chunks {
            if tx.send_data(chunk.clone()).await.is_err() {
                return;
            }
        }
    });
    Body::new(body)
}

#[tokio::test]
async fn the_client_refuses_oversized_replies_without_reading_them() {
    let fake = Router::new()
        // 400 MiB streamed, no length declared.
        .route("/v1/checkpoint", get(|| async { endless(400) }))
        // A declared length over the cap.
        .route(
            "/v1/blocks/{h}",
            get(|| async { vec![b'a'; MAX_NOTE_REPLY + 1] }),
        )
        .route("/v1/info", get(|| async { endless(400) }))
        .route("/v1/entries", get(|| async { endless(400) }))
        // An error whose body never ends.
        .route(
            "/v1/state",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, endless(400)) }),
        );
    let server = serve_router(fake, ServeLimits::default()).await;
    let url = server.url().to_owned();
    let client = NodeClient::new(&url).unwrap();

    match client.checkpoint().await {
        Err(ClientError::TooLarge {
            limit,
            declared: None,
            ..
        }) => assert_eq!(limit, MAX_NOTE_REPLY),
        other => panic!("expected TooLarge, got {other:?}"),
    }
    match client.block(1).await {
        Err(e @ ClientError::TooLarge { .. }) => {
            assert!(e.to_string().contains("larger than the"), "{e}");
            assert!(
                matches!(e, ClientError::TooLarge { declared: Some(n), .. } if n == MAX_NOTE_REPLY as u64 + 1)
            );
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(matches!(
        client.info().await,
        Err(ClientError::TooLarge { .. })
    ));
    assert!(matches!(
        client.entries(0, 10).await,
        Err(ClientError::TooLarge { .. })
    ));
    match client.state().await {
        Err(ClientError::Api {
            status: 500,
            detail,
            ..
        }) => assert!(detail.len() <= 200),
        other => panic!("expected Api, got {other:?}"),
    }
}

#[tokio::test]
async fn entry_ranges_are_capped_in_bytes_and_the_client_asks_again() {
    let dir = tempdir("range-bytes");
    let authority = init_node(dir.path(), vec![], 0);
    let node = Arc::new(Node::open(dir.path()).unwrap());
    // 20 entries of ~900 KB each: 18 MB, more than one range may carry.
    let name = "n".repeat(900 << 10);
    for seq in 1..=20u8 {
        let e = Entry::sign(
            &authority,
            u64::from(seq),
            now(),
            Action::Accredit {
                issuer: did(&key(seq)),
                name: name.clone(),
                kinds: vec!["diploma".into()],
            },
        );
        node.submit(e.as_bytes(), now()).unwrap();
    }
    assert_eq!(node.size(), 21);
    let app = api::app(node.clone()).unwrap();
    let resp = app
        .oneshot(
            Request::get("/v1/entries?start=0&end=21")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(body.len() <= api::MAX_RANGE_BYTES, "{} bytes", body.len());
    let lines = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!((1..21).contains(&lines), "{lines} entries in one reply");

    // The client completes the range over several requests.
    let server = serve_router(
        api::app_with(node.clone(), relay_for(&dir)),
        ServeLimits::default(),
    )
    .await;
    let got = server.client().entries(0, 21).await.unwrap();
    assert_eq!(got.len(), 21);
    assert_eq!(got[20], node.entries(20, 21).unwrap()[0].to_vec());
}

/// A second relay store for a node whose default one is already open.
fn relay_for(dir: &TempDir) -> Arc<vouch_registry::relay::Relay> {
    Arc::new(
        vouch_registry::relay::Relay::open(
            &dir.path().join("relay-2"),
            vouch_registry::relay::RelayLimits::default(),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn malformed_paths_and_queries_get_json_4xx() {
    let dir = tempdir("hostile");
    init_node(dir.path(), vec![], 0);
    let node = Arc::new(Node::open(dir.path()).unwrap());
    let app = api::app(node.clone()).unwrap();
    let long_did = format!("did:key:z{}", "a".repeat(api::MAX_DID_CHARS));
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (
            get_req("/v1/entries?start=abc&end=1"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            get_req("/v1/entries?start=5"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            get_req("/v1/entries?start=5&end=1"),
            StatusCode::BAD_REQUEST,
            "bad_range",
        ),
        (
            get_req("/v1/entries?start=0&end=18446744073709551615"),
            StatusCode::BAD_REQUEST,
            "bad_range",
        ),
        (
            get_req("/v1/blocks?start=0&end=18446744073709551616"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            get_req("/v1/blocks/-1"),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (get_req("/v1/blocks/99"), StatusCode::NOT_FOUND, "not_found"),
        (
            get_req("/v1/entries/by-hash/zz"),
            StatusCode::BAD_REQUEST,
            "bad_hash",
        ),
        (
            get_req("/v1/proof/inclusion?index=5&size=1"),
            StatusCode::BAD_REQUEST,
            "bad_range",
        ),
        (
            get_req("/v1/proof/consistency?old=18446744073709551615&new=1"),
            StatusCode::BAD_REQUEST,
            "bad_range",
        ),
        (
            get_req(&format!("/v1/authors/{long_did}")),
            StatusCode::BAD_REQUEST,
            "bad_did",
        ),
        (
            get_req("/v1/authors/not-a-did"),
            StatusCode::BAD_REQUEST,
            "bad_did",
        ),
        (get_req("/v1/nothing"), StatusCode::NOT_FOUND, "not_found"),
        (
            Request::delete("/v1/entries").body(Body::empty()).unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
        (
            Request::post("/v1/entries")
                .body(Body::from(vec![
                    b' ';
                    vouch_core::chain::MAX_ENTRY_BYTES + 1
                ]))
                .unwrap(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
    ];
    for (req, status, code) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let resp = app.clone().oneshot(req).await.unwrap();
        let s = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{what}: not JSON: {}", String::from_utf8_lossy(&body)));
        assert_eq!(
            (s, body["error"].as_str()),
            (status, Some(code)),
            "{what}: {body}"
        );
    }
    assert_eq!(node.size(), 1);
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

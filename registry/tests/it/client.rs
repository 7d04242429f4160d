//! The HTTP client against a real node on loopback (relay, status tokens,
//! signed submissions) and against fake nodes whose replies break the API.

use std::sync::Arc;

use axum::routing::get;
use vouch_core::chain::Action;
use vouch_registry::client::ClientError;
use vouch_registry::node::Node;
use vouch_registry::replica::{Replica, ReplicaError};
use vouch_registry::{now, ServeLimits, SourceError};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_submits_signed_uses_the_relay_and_reads_tokens() {
    let root = tempdir("client");
    let authority = init_node(root.path(), vec![], 0);
    let node = Arc::new(Node::open(root.path()).unwrap());
    let server = serve(node.clone()).await;
    let client = server.client();
    let uni = key(2);
    let accredit = Action::Accredit {
        issuer: did(&uni),
        name: "Test University".into(),
        kinds: vec!["transcript".into()],
    };
    let receipt = client.sign_and_submit(&authority, accredit).await.unwrap();
    assert_eq!(receipt.index, 1);
    client
        .submit(status(&uni, 0, 1, &uni_list(), &[3]).as_bytes())
        .await
        .unwrap();
    assert_eq!(client.info().await.unwrap(), node.info());

    // The token is served under the list's id, exactly.
    let id = uni_list().rsplit('/').next().unwrap().to_owned();
    let token = client.status_token(&id).await.unwrap();
    assert!(token.starts_with("ey"), "{token}");
    match client.status_token(&format!("{id}x")).await {
        Err(ClientError::Api { status: 404, .. }) => {}
        other => panic!("expected a 404, got {other:?}"),
    }

    // A read-once relay item is served once.
    let stored = client.relay_put(b"sealed bytes", 60, true).await.unwrap();
    assert_eq!(stored.id.len(), 32);
    assert!(stored.expires > now());
    assert_eq!(client.relay_get(&stored.id).await.unwrap(), b"sealed bytes");
    match client.relay_get(&stored.id).await {
        Err(ClientError::Api { status: 404, .. }) => {}
        other => panic!("expected a 404, got {other:?}"),
    }
    match client.relay_put(&[], 60, true).await {
        Err(ClientError::Api {
            status: 400, code, ..
        }) => assert_eq!(code, "empty"),
        other => panic!("expected a 400, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_that_break_the_api_are_refused_with_the_url() {
    let root = tempdir("client-broken");
    init_node(root.path(), vec![], 0);
    let node = Node::open(root.path()).unwrap();
    let note = node.checkpoint();
    let fake = axum::Router::new()
        .route("/v1/info", get(|| async { r#"{"origin":"o"}"# }))
        .route(
            "/v1/authors/{did}",
            get(|| async { r#"{"author":"a","next_seq":-1}"# }),
        )
        .route(
            "/v1/proof/consistency",
            get(|| async { r#"{"proof":["AQID"]}"# }),
        )
        .route("/v1/checkpoint", get(move || async move { note }))
        .route("/v1/blocks/{h}", get(|| async { vec![0xff_u8, 0xfe] }))
        .route(
            "/v1/entries",
            get(|| async { "{}\n{}\n{}\n{}\n".to_owned() }),
        );
    let server = serve_router(fake, ServeLimits::default()).await;
    let client = server.client();
    for err in [
        client.info().await.unwrap_err(),
        client.next_seq("did:key:z6Mk").await.unwrap_err(),
        client.consistency(1, 2).await.unwrap_err(),
    ] {
        assert!(
            matches!(err, ClientError::Json { ref url, .. } if url.starts_with(server.url())),
            "{err}"
        );
    }
    assert!(matches!(
        client.block(1).await.unwrap_err(),
        ClientError::NotText { .. }
    ));
    match client.entries(0, 2).await.unwrap_err() {
        ClientError::TooMany { asked, got, .. } => assert_eq!((asked, got), (2, 4)),
        other => panic!("expected too many entries, got {other}"),
    }

    // A replica reading that node refuses it, and names the entry range.
    let trust = trust_alone(&node);
    let mut replica = Replica::open(&root.path().join("replica"), trust.policy().unwrap()).unwrap();
    match replica.sync(&client).await.unwrap_err() {
        ReplicaError::Source(SourceError::Client(ClientError::TooMany { .. })) => {}
        other => panic!("expected too many entries, got {other}"),
    }
    assert!(replica.head().is_none());
}

/// `https://` registries and relays are reached over TLS (the system's
/// OpenSSL through reqwest's `native-tls`), not refused as an unknown
/// scheme: the listener's first byte from the client is a TLS handshake
/// record (0x16). It answers nothing, so the call fails as an HTTP error.
#[tokio::test]
async fn an_https_url_is_spoken_to_in_tls() {
    use std::io::Read as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let first_byte = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).unwrap();
        byte[0]
    });
    let client =
        vouch_registry::client::NodeClient::new(&format!("https://127.0.0.1:{port}")).unwrap();
    let err = client.info().await.unwrap_err();
    assert!(matches!(err, ClientError::Http { .. }), "{err}");
    assert_eq!(
        first_byte.join().unwrap(),
        0x16,
        "not a TLS handshake record"
    );
}

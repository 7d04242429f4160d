//! The registry relay (`PUT /v1/relay`, `GET /v1/relay/{id}`) through the
//! real axum router. The relay stores opaque bytes: it has no parser of the
//! blob. What it does parse from outside is the query (`ttl`, `once`), the
//! body's size and the id in the path; this drives those.
//!
//! Input: `query \n id \n blob`. The query and the blob go to one upload; the
//! id (`-`: the id the upload returned) to one fetch.
//!
//! Also the relay link a QR code holds (`relay_link::RelayLink::parse`):
//! [`relay_link`].

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use vouch_registry::api;
use vouch_registry::node::{Node, NodeConfig};
use vouch_registry::relay::RelayLimits;
use vouch_registry::relay_link::{self, RelayError, RelayHosts, RelayLink};

async fn call(app: &Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = app
        .clone()
        .oneshot(request)
        .await
        .expect("the router is infallible");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a response body is readable")
        .to_bytes()
        .to_vec();
    (status, body)
}

/// One upload and fetch against `app`. The relay never answers 5xx; an
/// upload is 201, 400 or 413; a stored blob comes back byte for byte, and
/// once only unless `once=false`; a fetch is 200, 400 or 404.
pub async fn relay_case(app: &Router, data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let id = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let blob = parts.next().unwrap_or_default().to_vec();

    let mut uploaded = None;
    if let Ok(put) = Request::put(format!("/v1/relay?{query}")).body(Body::from(blob.clone())) {
        let (status, body) = call(app, put).await;
        assert!(
            matches!(
                status,
                StatusCode::CREATED | StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE
            ),
            "relay upload answered {status}"
        );
        if status == StatusCode::CREATED {
            assert!(!blob.is_empty(), "an empty blob was stored");
            let answer: serde_json::Value =
                serde_json::from_slice(&body).expect("the upload answers JSON");
            let stored = answer["id"].as_str().expect("the upload names an id");
            uploaded = Some(stored.to_owned());
            let get = |id: &str| {
                Request::get(format!("/v1/relay/{id}"))
                    .body(Body::empty())
                    .expect("a hex id is a valid path")
            };
            let (status, back) = call(app, get(stored)).await;
            assert_eq!(status, StatusCode::OK, "a stored blob is not fetched");
            assert_eq!(back, blob, "the relay changed the blob");
            let (again, _) = call(app, get(stored)).await;
            // Only where the query is plain: `%6Fnce=false` also means
            // once=false, and a `#` ends the query.
            let plain = query
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=&_-.".contains(&b));
            if !plain {
            } else if !query.contains("once") {
                assert_eq!(
                    again,
                    StatusCode::NOT_FOUND,
                    "a once blob was fetched twice"
                );
            } else if query
                .split('&')
                .filter(|kv| kv.contains("once"))
                .eq(["once=false"])
            {
                assert_eq!(again, StatusCode::OK, "a once=false blob was not kept");
            }
        }
    }
    let id = if id == "-" {
        uploaded.unwrap_or_default()
    } else {
        id
    };
    if let Ok(get) = Request::get(format!("/v1/relay/{id}")).body(Body::empty()) {
        let (status, _) = call(app, get).await;
        assert!(
            matches!(
                status,
                StatusCode::OK | StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
            ),
            "relay fetch of {id:?} answered {status}"
        );
    }
}

struct Relay {
    runtime: tokio::runtime::Runtime,
    app: Router,
    relay: std::sync::Arc<vouch_registry::relay::Relay>,
}

/// A node made once per process in a fresh temporary directory.
fn relay_node() -> &'static Relay {
    static RELAY: OnceLock<Relay> = OnceLock::new();
    RELAY.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vouch-fuzz-relay-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let config = NodeConfig {
            origin: "fuzz.example/registry".into(),
            witnesses: Vec::new(),
            need: 0,
        };
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
        Node::init(&dir, config, vouch_registry::now(), &mut rng)
            .expect("a fresh node initialises");
        let node = std::sync::Arc::new(Node::open(&dir).expect("a fresh node opens"));
        // The relay in its own store, as `serve` runs it, without the
        // per-client upload limit: every input comes from one client, and a
        // 429 after the 60th would hide the parsing under test.
        let limits = RelayLimits {
            puts_per_window: u32::MAX,
            ..RelayLimits::default()
        };
        let relay = std::sync::Arc::new(
            vouch_registry::relay::Relay::open(&dir.join("relay"), limits)
                .expect("a fresh relay opens"),
        );
        let app = api::app_with(node, relay.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds");
        Relay {
            runtime,
            app,
            relay,
        }
    })
}

/// The fuzz entry: [`relay_case`] against a node kept for the whole run; the
/// relay is emptied after each input (every item counts as expired at the
/// end of time) so its quota and memory stay bounded.
pub fn relay(data: &[u8]) {
    let node = relay_node();
    node.runtime.block_on(relay_case(&node.app, data));
    let _ = node.relay.sweep(i64::MAX);
}

/// A relay link as a wallet's QR code carries it
/// (`RelayLink::parse`, `https://…/p/<id>#<key>`): a parsed link has a
/// 32-hex-digit lowercase id and fetches from `<base>/v1/relay/<id>`; the
/// link `relay_link::link` writes for that base and id parses back to the
/// same fetch URL (or, when the URL's normal form made it longer than
/// `MAX_LINK_CHARS`, is refused as too long); the host allow-list built
/// from that base lets it through.
pub fn relay_link(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(link) = RelayLink::parse(text) else {
        return;
    };
    let id = link.id();
    assert_eq!(id.len(), 32, "relay id {id:?}");
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "relay id {id:?} is not lowercase hex"
    );
    let fetch = link.fetch_url();
    let tail = format!("/v1/relay/{id}");
    let base = fetch
        .strip_suffix(&tail)
        .unwrap_or_else(|| panic!("fetch URL {fetch:?} does not end in {tail:?}"));
    let again = relay_link::link(base, id, &[7; 32]);
    // The limit is on the text given; the URL parser's normal form (control
    // characters percent-encoded, three bytes each) can be longer, and a
    // link written from it is then refused as too long, never misread.
    if again.len() > relay_link::MAX_LINK_CHARS {
        assert!(
            matches!(RelayLink::parse(&again), Err(RelayError::Link(_))),
            "an over-long link was not refused as such"
        );
        return;
    }
    let back = RelayLink::parse(&again)
        .unwrap_or_else(|e| panic!("the link {again:?} written for {text:?} does not parse: {e}"));
    assert_eq!(back.id(), id, "relay link round trip changed the id");
    assert_eq!(
        back.fetch_url(),
        fetch,
        "relay link round trip changed the fetch URL"
    );
    assert!(RelayHosts::any().check(&link).is_ok());
    assert!(
        RelayHosts::only([base]).check(&link).is_ok(),
        "a link is refused by the allow-list of its own base {base:?}"
    );
    let _ = RelayHosts::only([text]).check(&link);
}

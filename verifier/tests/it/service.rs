//! The HTTP service through its router (`tower::ServiceExt::oneshot`), and
//! the real binary serving on loopback.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use vouch_core::envelope;
use vouch_verifier::service::{self, AppState};

use crate::common::{broken_signature, Fixture};

async fn call(app: &axum::Router, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

fn post(path: &str, content_type: &str, body: impl Into<Body>) -> Request<Body> {
    Request::post(path)
        .header("content-type", content_type)
        .body(body.into())
        .unwrap()
}

async fn new_request(app: &axum::Router) -> serde_json::Value {
    let (status, r) = call(app, post("/api/requests", "application/json", "")).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_verdicts_errors_and_hostile_bodies() {
    verdicts_errors_and_hostile_bodies(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_verdicts_errors_and_hostile_bodies_through_the_pool() {
    verdicts_errors_and_hostile_bodies(true).await;
}

/// The service over a fresh verifier, its checks through a `CheckPool`
/// (as `serve` does by default) or on blocking threads.
async fn state(f: &Fixture, name: &str, pooled: bool, synced: bool) -> AppState {
    let v = f.verifier(name).await;
    let view = synced.then(|| v.view().unwrap());
    let (checker, _replica) = v.into_parts();
    if pooled {
        AppState::pooled(checker, view, service::PoolConfig::default()).unwrap()
    } else {
        AppState::new(checker, view)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_the_first_sync_verifications_answer_not_synced() {
    let f = Fixture::new("unsynced").await;
    for pooled in [false, true] {
        let app = service::app(state(&f, &format!("hr-{pooled}"), pooled, false).await);
        let r = new_request(&app).await;
        let nonce = r["nonce"].as_str().unwrap();
        let text = f.present(0, r["aud"].as_str().unwrap(), nonce);
        let (status, e) = call(
            &app,
            post(&format!("/api/verify?nonce={nonce}"), "text/plain", text),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "pooled {pooled}: {e}"
        );
        assert_eq!(e["error"], "not_synced", "pooled {pooled}: {e}");
    }
}

async fn verdicts_errors_and_hostile_bodies(pooled: bool) {
    let f = Fixture::new(if pooled { "service-pooled" } else { "service" }).await;
    let app = service::app(state(&f, "hr", pooled, true).await);

    // Health and the static documents.
    let (status, h) = call(
        &app,
        Request::get("/api/health").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(h["replica"]["height"].as_u64().unwrap() > 0, "{h}");
    let (status, doc) = call(
        &app,
        Request::get("/api/openapi.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let page = app
        .clone()
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    // A request, answered in JSON: valid; the same again: replayed.
    let r = new_request(&app).await;
    assert!(r["request"].as_str().unwrap().starts_with("VCHR1:"));
    assert!(r["qr_png"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    let nonce = r["nonce"].as_str().unwrap();
    let text = f.present(0, r["aud"].as_str().unwrap(), nonce);
    let body = serde_json::json!({ "input": text, "nonce": nonce }).to_string();
    let (status, c) = call(&app, post("/api/verify", "application/json", body.clone())).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["headline"], "valid", "{c}");
    let (status, c) = call(&app, post("/api/verify", "application/json", body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["headline"], "not-valid");
    assert!(c["reason"].as_str().unwrap().contains("replayed"), "{c}");

    // Hostile inputs, each a clear 4xx.
    let bomb = {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&[0, 0, 0, 13]);
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&[0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60, 8, 0, 0, 0, 0]);
        png
    };
    let cases: Vec<(Request<Body>, StatusCode)> = vec![
        (
            post("/api/verify", "text/plain", "garbage"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            post("/api/verify", "text/plain", "VCH1:ABCDEF"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            post("/api/verify", "application/json", "{\"input\":"),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("/api/verify", "text/plain", "https://evil.example/login"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            post(
                "/api/verify",
                "application/octet-stream",
                vec![0u8; 50 << 20],
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            post("/api/scan", "image/png", bomb.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            post("/api/scan", "text/plain", "VCH1:ABC"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            post("/api/scan", "image/png", b"\x89PNG\r\n\x1a\nnope".to_vec()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            post("/api/verify?bogus=1", "text/plain", "VCH1:A"),
            StatusCode::BAD_REQUEST,
        ),
        (
            post("/api/requests", "application/json", "{\"claims\":[\"//\"]}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Request::get("/api/nothing").body(Body::empty()).unwrap(),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (req, want) in cases {
        let what = req.uri().to_string();
        let (status, e) = call(&app, req).await;
        assert_eq!(status, want, "{what}: {e}");
        assert!(
            e["error"].is_string() && e["detail"].is_string(),
            "{what}: {e}"
        );
    }

    // Still serving: a camera frame (PNG) holding the VCH1: code.
    let r = new_request(&app).await;
    let nonce = r["nonce"].as_str().unwrap();
    let qr = envelope::encode(&f.present(0, r["aud"].as_str().unwrap(), nonce)).unwrap();
    let png = vouch_core::qr::png(
        &vouch_core::qr::qr_code(&qr, vouch_core::qr::EcLevel::M).unwrap(),
        3,
        4,
    )
    .unwrap();
    let (status, c) = call(
        &app,
        post(&format!("/api/scan?nonce={nonce}"), "image/png", png),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["headline"], "valid", "{c}");
    assert_eq!(c["source"], "qr-envelope");
    // A frame without a code: no_code, so the page sends the next frame.
    let mut frame = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut frame, 64, 64);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[255; 64 * 64]).unwrap();
        writer.finish().unwrap();
    }
    let (status, e) = call(&app, post("/api/scan", "image/png", frame)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"], "no_code");
    // The revoked credential, as text with the nonce in the query.
    let r = new_request(&app).await;
    let nonce = r["nonce"].as_str().unwrap();
    let text = f.present(1, r["aud"].as_str().unwrap(), nonce);
    let (status, c) = call(
        &app,
        post(&format!("/api/verify?nonce={nonce}"), "text/plain", text),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(c["headline"], "revoked", "{c}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_syncs_and_stops_on_sigterm() {
    let f = Fixture::new("serve").await;
    let v = f.verifier("hr").await;
    let dir = v.dir().to_owned();
    drop(v);
    // Port 0: the address comes back in --addr-file; the log goes to a
    // file, which must hold no colour codes.
    let addr_file = f.root.path().join("verifier.url");
    let log = f.root.path().join("verifier.log");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vouch-verifier"))
        .args([
            "serve",
            "--dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--addr-file")
        .arg(&addr_file)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut base = String::new();
    for _ in 0..200 {
        if let Ok(url) = std::fs::read_to_string(&addr_file) {
            base = url;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(base.starts_with("http://127.0.0.1:"), "{base:?}");
    assert!(!base.ends_with(":0"), "{base}");
    let http = reqwest::Client::new();
    let mut health = serde_json::Value::Null;
    for _ in 0..100 {
        if let Ok(r) = http.get(format!("{base}/api/health")).send().await {
            health = r.json().await.unwrap();
            if health["last_sync"]["ok"] == true {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(health["last_sync"]["ok"], true, "{health}");
    let r: serde_json::Value = http
        .post(format!("{base}/api/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let nonce = r["nonce"].as_str().unwrap();
    let text = f.present(0, r["aud"].as_str().unwrap(), nonce);
    let c: serde_json::Value = http
        .post(format!("{base}/api/verify"))
        .json(&serde_json::json!({ "input": text, "nonce": nonce }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["headline"], "valid", "{c}");
    // SIGTERM: a clean stop, exit 0.
    let pid = child.id().unwrap().to_string();
    let killed = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains(&format!("verifier on {base}")), "{log}");
    assert!(!log.contains('\x1b'), "colour codes in a log file: {log:?}");
}

/// An expired credential through the API (its validity ended when it was
/// issued; the policy tolerates no clock skew): a `not-valid` verdict with
/// the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_credential_is_not_valid() {
    let f = Fixture::new("service-expired").await;
    let policy = vouch_verifier::PolicyFile {
        leeway: 0,
        ..Default::default()
    };
    let v = f.verifier_with("hr", Some(policy)).await;
    let view = v.view().unwrap();
    let (checker, _replica) = v.into_parts();
    let app = service::app(AppState::new(checker, Some(view)));
    let r = new_request(&app).await;
    let text = f.present_credential(
        &f.expired,
        0,
        r["aud"].as_str().unwrap(),
        r["nonce"].as_str().unwrap(),
    );
    let (status, c) = call(&app, post("/api/verify", "text/plain", text)).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["headline"], "not-valid", "{c}");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .starts_with("validity period: expired at"),
        "{c}"
    );
}

/// Five bodies for `/api/verify`, each answering a fresh request of
/// `app`'s: valid, the issuer's signature broken, valid, the KB-JWT's
/// signature broken, valid.
async fn mixed_bodies(f: &Fixture, app: &axum::Router) -> Vec<String> {
    let mut bodies = Vec::new();
    for i in 0..5 {
        let r = new_request(app).await;
        let nonce = r["nonce"].as_str().unwrap();
        let text = f.present(0, r["aud"].as_str().unwrap(), nonce);
        let kb = text.split('~').count() - 1;
        let text = match i {
            1 => broken_signature(&text, 0),
            3 => broken_signature(&text, kb),
            _ => text,
        };
        bodies.push(serde_json::json!({ "input": text, "nonce": nonce }).to_string());
    }
    bodies
}

/// Posts every body to `/api/verify` at once.
async fn verify_all(app: &axum::Router, bodies: &[String]) -> Vec<(StatusCode, serde_json::Value)> {
    let calls: Vec<_> = bodies
        .iter()
        .map(|b| {
            let (app, b) = (app.clone(), b.clone());
            tokio::spawn(
                async move { call(&app, post("/api/verify", "application/json", b)).await },
            )
        })
        .collect();
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_mixing_tampered_presentations_with_valid_ones_gives_each_its_own_verdict() {
    use std::time::Duration;
    use vouch_verifier::{BatchConfig, BatchStats};

    let f = Fixture::new("batch").await;
    let v = f.verifier("hr").await;
    let view = v.view().unwrap();
    let (mut checker, _replica) = v.into_parts();
    // Batches of exactly five: the first to come waits for the other four.
    checker.set_batching(Some(BatchConfig {
        max: 5,
        window: Duration::from_secs(60),
        adaptive: false,
    }));
    let state = AppState::new(checker, Some(view));
    let app = service::app(state.clone());
    let batches = || state.checker().batcher().unwrap().stats();

    let bodies = mixed_bodies(&f, &app).await;
    let results = verify_all(&app, &bodies).await;
    // One batch of five, which did not hold: each was then checked alone.
    assert_eq!(
        batches(),
        BatchStats {
            batches: 1,
            presentations: 5,
            failed: 1,
            alone: 0
        }
    );
    for (i, (status, c)) in results.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "{i}: {c}");
        match i {
            1 => {
                assert_eq!(c["headline"], "not-valid", "{c}");
                assert!(
                    c["reason"]
                        .as_str()
                        .unwrap()
                        .starts_with("issuer signature"),
                    "{c}"
                );
            }
            3 => {
                assert_eq!(c["headline"], "not-valid", "{c}");
                assert!(
                    c["reason"].as_str().unwrap().starts_with("holder binding"),
                    "{c}"
                );
            }
            _ => assert_eq!(c["headline"], "valid", "{i}: {c}"),
        }
    }
    // Five valid ones: the batch holds, and each is valid.
    let mut bodies = Vec::new();
    for _ in 0..5 {
        let r = new_request(&app).await;
        let nonce = r["nonce"].as_str().unwrap();
        let text = f.present(0, r["aud"].as_str().unwrap(), nonce);
        bodies.push(serde_json::json!({ "input": text, "nonce": nonce }).to_string());
    }
    for (status, c) in verify_all(&app, &bodies).await {
        assert_eq!(status, StatusCode::OK);
        assert_eq!(c["headline"], "valid", "{c}");
    }
    let stats = batches();
    assert_eq!(
        (stats.batches, stats.presentations, stats.failed),
        (2, 10, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn through_the_pool_each_request_gets_its_own_verdict_and_a_full_queue_answers_busy() {
    use vouch_verifier::service::PoolConfig;

    let f = Fixture::new("pooled").await;
    let v = f.verifier("hr").await;
    let view = v.view().unwrap();
    let (checker, _replica) = v.into_parts();
    let state = AppState::pooled(
        checker,
        Some(view),
        PoolConfig {
            workers: Some(2),
            max: 64,
            max_queued: 64,
        },
    )
    .unwrap();
    let app = service::app(state.clone());
    let bodies = mixed_bodies(&f, &app).await;
    for (i, (status, c)) in verify_all(&app, &bodies).await.iter().enumerate() {
        assert_eq!(*status, StatusCode::OK, "{i}: {c}");
        let reason = c["reason"].as_str().unwrap_or_default();
        match i {
            1 => assert!(reason.starts_with("issuer signature"), "{c}"),
            3 => assert!(reason.starts_with("holder binding"), "{c}"),
            _ => assert_eq!(c["headline"], "valid", "{i}: {c}"),
        }
    }
    assert_eq!(state.pool().unwrap().stats().presentations, 5);

    // One worker, one at a time, one waiting: of twenty at once, some
    // answer 503 busy (and change nothing), the others their verdict.
    let f2 = Fixture::new("pooled-busy").await;
    let v = f2.verifier("hr").await;
    let view = v.view().unwrap();
    let (checker, _replica) = v.into_parts();
    let config = PoolConfig {
        workers: Some(1),
        max: 1,
        max_queued: 1,
    };
    let app = service::app(AppState::pooled(checker, Some(view), config).unwrap());
    let mut bodies = Vec::new();
    for _ in 0..20 {
        let r = new_request(&app).await;
        let nonce = r["nonce"].as_str().unwrap();
        let text = f2.present(0, r["aud"].as_str().unwrap(), nonce);
        bodies.push(serde_json::json!({ "input": text, "nonce": nonce }).to_string());
    }
    let results = verify_all(&app, &bodies).await;
    let mut busy = Vec::new();
    for (i, (status, c)) in results.iter().enumerate() {
        match *status {
            StatusCode::OK => assert_eq!(c["headline"], "valid", "{c}"),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(c["error"], "busy", "{c}");
                busy.push(i);
            }
            other => panic!("{other}: {c}"),
        }
    }
    assert!(!busy.is_empty(), "none answered busy");
    // A refused one changed nothing: sent again, it is checked and valid.
    let again = verify_all(&app, &[bodies[busy[0]].clone()]).await;
    assert_eq!(again[0].0, StatusCode::OK, "{}", again[0].1);
    assert_eq!(again[0].1["headline"], "valid", "{}", again[0].1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_pool_refuses_a_relay_link_before_fetching_it() {
    use vouch_verifier::service::PoolConfig;

    let f = Fixture::new("pooled-relay").await;
    let v = f.verifier("hr").await;
    let view = v.view().unwrap();
    let (checker, _replica) = v.into_parts();
    let config = PoolConfig {
        workers: Some(1),
        max: 1,
        max_queued: 1,
    };
    let state = AppState::pooled(checker, Some(view), config).unwrap();
    let app = service::app(state.clone());
    let r = new_request(&app).await;
    let nonce = r["nonce"].as_str().unwrap();
    let link =
        crate::common::upload(&f.url, &f.present(0, r["aud"].as_str().unwrap(), nonce)).await;
    let body = serde_json::json!({ "input": link, "nonce": nonce }).to_string();
    // The only place in the queue held: busy, and the relay item (served
    // once) is not fetched.
    let slot = state.pool().unwrap().reserve().unwrap();
    let (status, c) = call(&app, post("/api/verify", "application/json", body.clone())).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{c}");
    assert_eq!(c["error"], "busy", "{c}");
    // Given back: the same link is fetched and checked.
    drop(slot);
    let (status, c) = call(&app, post("/api/verify", "application/json", body)).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["headline"], "valid", "{c}");
}

//! Verifications per second through the library (`Checker::check` against
//! a replica's view, a transcript presentation of three courses), and QR
//! decoding of a presentation's PNG (the server side of `/api/scan`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/it/common.rs"]
#[allow(dead_code)]
mod common;
#[path = "../tests/support/university.rs"]
mod university;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use vouch_core::envelope;
use vouch_verifier::{Ask, Input, PolicyFile, Verifier};

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = rt.block_on(common::Fixture::new("bench"));
    let dir = {
        let v = rt.block_on(f.verifier("hr"));
        v.dir().to_owned()
    };
    // Without nonces, so one presentation can be checked again and again.
    let policy = PolicyFile {
        require_nonce: false,
        ..PolicyFile::default()
    };
    let v = Verifier::open(&dir, Some(policy)).unwrap();
    let view = v.view().unwrap();
    let text = envelope::encode(&f.present(0, common::AUD, "")).unwrap();
    let presented = rt
        .block_on(Input::from_text(&text).unwrap().resolve())
        .unwrap();
    let ask = Ask::default();
    assert!(v
        .checker()
        .check(&view, &presented, &ask, vouch_verifier::now())
        .unwrap()
        .is_valid());

    let mut g = c.benchmark_group("verifier");
    g.throughput(Throughput::Elements(1));
    g.bench_function("check_vch1_presentation", |b| {
        b.iter(|| {
            v.checker()
                .check(&view, &presented, &ask, vouch_verifier::now())
                .unwrap()
        });
    });
    let code = vouch_core::qr::qr_code(&text, vouch_core::qr::EcLevel::M).unwrap();
    let png = vouch_core::qr::png(&code, 3, 4).unwrap();
    g.bench_function("decode_qr_png", |b| {
        b.iter(|| vouch_verifier::qr::decode(&png).unwrap());
    });

    // Over HTTP on loopback: the real router behind the registry's server
    // loop, 16 requests in flight from a client in this process.
    let (checker, _replica) = v.into_parts();
    let state = vouch_verifier::service::AppState::new(checker, Some(view));
    let url = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(vouch_registry::serve_router(
            listener,
            vouch_verifier::service::app(state),
            vouch_registry::ServeLimits::default(),
            std::future::pending(),
        ));
        format!("http://{addr}/api/verify")
    });
    let http = reqwest::Client::new();
    let body = serde_json::json!({ "input": text }).to_string();
    g.bench_function("http_verify_16_in_flight", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
                let start = std::time::Instant::now();
                let workers: Vec<_> = (0..16)
                    .map(|_| {
                        let (http, url, body, next) =
                            (http.clone(), url.clone(), body.clone(), next.clone());
                        tokio::spawn(async move {
                            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < iters {
                                let r = http
                                    .post(&url)
                                    .header("content-type", "application/json")
                                    .body(body.clone())
                                    .send()
                                    .await
                                    .unwrap();
                                assert!(r.status().is_success());
                                r.bytes().await.unwrap();
                            }
                        })
                    })
                    .collect();
                for w in workers {
                    w.await.unwrap();
                }
                start.elapsed()
            })
        });
    });
    // One camera frame posted to /api/scan, to its verdict (one at a time;
    // criterion's median is the p50).
    let scan_url = url.replace("/api/verify", "/api/scan");
    g.bench_function("http_scan_frame_to_verdict", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r = http
                    .post(&scan_url)
                    .header("content-type", "image/png")
                    .body(png.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap()
            })
        });
    });
    g.finish();
}

criterion_group!(benches_group, benches);
criterion_main!(benches_group);

//! Verifications per second through the library (`Checker::check` against
//! a replica's view, a transcript presentation of three courses), and QR
//! decoding of a presentation's PNG (the server side of `/api/scan`).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../tests/it/common.rs"]
#[allow(dead_code)]
mod common;

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
    let code = envelope::qr_code(&text, qrcode::EcLevel::M).unwrap();
    let png = envelope::png(&code, 3, 4).unwrap();
    g.bench_function("decode_qr_png", |b| {
        b.iter(|| vouch_verifier::qr::decode(&png).unwrap());
    });
    g.finish();
}

criterion_group!(benches_group, benches);
criterion_main!(benches_group);

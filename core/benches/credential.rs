//! Credential engine throughput: issue a 12-course transcript, present 3 of
//! its 18 claims with a KB-JWT, verify that presentation; raw ed25519-dalek
//! sign and verify over the same bytes for comparison. Prints each rate as a
//! fraction of raw (issuance three ways: `vc::issue`, `vc::issue_compact`,
//! and `vc::issue_claims` from borrowed claims as the batch issuer does),
//! and the QR envelope's size and version.
//!
//! `cargo bench -p vouch-core --bench credential`

#![allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use ed25519_dalek::{Signer as _, SigningKey};
use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::vc::{self, CredentialRequest};
use vouch_core::{envelope, qr, sample, ClaimPath, SdJwt};

const NOW: i64 = sample::BENCH_NOW;
const AUD: &str = sample::BENCH_AUD;
const NONCE: &str = sample::BENCH_NONCE;

fn fixture() -> sample::BenchFixture {
    sample::bench_fixture(&mut StdRng::seed_from_u64(1))
}

fn present(credential: &SdJwt, disclose: &[ClaimPath], holder: &SigningKey) -> String {
    credential
        .present(disclose)
        .expect("present")
        .bind(holder, AUD, NONCE, NOW)
        .serialize()
}

fn benches(c: &mut Criterion) {
    let f = fixture();
    let message = f.credential.jwt().signing_input().to_vec();
    let signature = f.issuer.signing_key().sign(&message);
    let key = f.issuer.signing_key().verifying_key();

    let mut g = c.benchmark_group("credential");
    g.throughput(Throughput::Elements(1));
    g.bench_function("raw_ed25519_sign", |b| {
        b.iter(|| f.issuer.signing_key().sign(black_box(&message)))
    });
    g.bench_function("raw_ed25519_verify", |b| {
        b.iter(|| key.verify_strict(black_box(&message), &signature))
    });
    let mut rng = StdRng::seed_from_u64(2);
    g.bench_function("issue_transcript_12_courses", |b| {
        // The request (the parsed CSV row) is built outside the timing.
        b.iter_batched(
            || f.request.clone(),
            |request| vc::issue(request, &f.issuer, &mut rng).expect("issue"),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("present_3_claims_with_kb_jwt", |b| {
        b.iter(|| present(black_box(&f.credential), &f.disclose, &f.holder))
    });
    g.bench_function("verify_presentation", |b| {
        b.iter(|| {
            vc::verify_presentation(black_box(&f.presentation), &f.verify_request, NOW)
                .expect("verify")
        })
    });
    let env = envelope::encode(&f.presentation).expect("envelope");
    g.bench_function("envelope_encode", |b| {
        b.iter(|| envelope::encode(black_box(&f.presentation)))
    });
    g.bench_function("envelope_decode", |b| {
        b.iter(|| envelope::decode(black_box(&env)))
    });
    g.finish();
}

/// Rates of `a` and `b` measured in alternating slices of 50 operations over
/// about three seconds.
fn paired(mut a: impl FnMut(), mut b: impl FnMut()) -> (f64, f64) {
    for _ in 0..100 {
        a();
        b();
    }
    let (mut ta, mut tb) = (Duration::ZERO, Duration::ZERO);
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let t = Instant::now();
        for _ in 0..50 {
            a();
        }
        ta += t.elapsed();
        let t = Instant::now();
        for _ in 0..50 {
            b();
        }
        tb += t.elapsed();
        n += 50;
    }
    (n as f64 / ta.as_secs_f64(), n as f64 / tb.as_secs_f64())
}

/// Issuance (`issue` of each request) and raw signing, interleaved; the
/// requests (parsed rows) are built untimed.
fn paired_issue(
    f: &sample::BenchFixture,
    mut issue: impl FnMut(CredentialRequest),
    sk: &SigningKey,
    message: &[u8],
) -> (f64, f64) {
    let (mut ti, mut ts) = (Duration::ZERO, Duration::ZERO);
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        let batch: Vec<CredentialRequest> = (0..50).map(|_| f.request.clone()).collect();
        let t = Instant::now();
        for request in batch {
            issue(request);
        }
        ti += t.elapsed();
        let t = Instant::now();
        for _ in 0..50 {
            black_box(sk.sign(black_box(message)));
        }
        ts += t.elapsed();
        n += 50;
    }
    (n as f64 / ti.as_secs_f64(), n as f64 / ts.as_secs_f64())
}

fn summary() {
    let f = fixture();
    let message = f.credential.jwt().signing_input().to_vec();
    let sk = f.issuer.signing_key().clone();
    let signature = sk.sign(&message);
    let key = sk.verifying_key();
    let mut rng = StdRng::seed_from_u64(3);

    // Each rate is measured interleaved with the raw rate it is compared
    // to, in short alternating slices, so both see the same machine load.
    let (verifies, verify) = paired(
        || {
            let v = vc::verify_presentation(black_box(&f.presentation), &f.verify_request, NOW)
                .expect("verify");
            assert!(v.is_valid());
        },
        || {
            black_box(key.verify_strict(black_box(&message), &signature)).expect("raw verify");
        },
    );
    let (presentations, sign) = paired(
        || {
            black_box(present(&f.credential, &f.disclose, &f.holder));
        },
        || {
            black_box(sk.sign(black_box(&message)));
        },
    );
    let (issue, issue_sign) = paired_issue(
        &f,
        |request| {
            black_box(vc::issue(request, &f.issuer, &mut rng).expect("issue"));
        },
        &sk,
        &message,
    );
    let (compact, compact_sign) = paired_issue(
        &f,
        |request| {
            black_box(vc::issue_compact(request, &f.issuer, &mut rng).expect("issue"));
        },
        &sk,
        &message,
    );
    let (claims, claims_sign) = paired_issue(
        &f,
        |request| {
            black_box(sample::issue_borrowed(&request, &f.issuer, &mut rng));
        },
        &sk,
        &message,
    );

    let env = envelope::encode(&f.presentation).expect("envelope");
    let stats = envelope::stats(&f.presentation).expect("stats");
    let code = qr::qr_code(&env, qr::EcLevel::M).expect("qr");
    let version = qr::version(&code);
    println!();
    println!(
        "== vouch-core summary ({} byte signing input) ==",
        message.len()
    );
    println!("raw ed25519 sign     {sign:>10.0} /s");
    println!("raw ed25519 verify   {verify:>10.0} /s");
    println!(
        "issue (12 courses)   {issue:>10.0} /s  = {:.0}% of raw sign (target >= 60%)",
        100.0 * issue / issue_sign
    );
    println!(
        "issue_compact        {compact:>10.0} /s  = {:.0}% of raw sign (the compact text)",
        100.0 * compact / compact_sign
    );
    println!(
        "issue_claims         {claims:>10.0} /s  = {:.0}% of raw sign (borrowed claims, as the batch issuer)",
        100.0 * claims / claims_sign
    );
    println!(
        "present 3 + KB-JWT   {presentations:>10.0} /s  = {:.0}% of raw sign",
        100.0 * presentations / sign
    );
    println!(
        "verify presentation  {verifies:>10.0} /s  = {:.0}% of raw verify (target >= 45%)",
        100.0 * verifies / verify
    );
    println!(
        "presentation {} chars (3 of 18 claims + KB-JWT) -> envelope {} chars ({} deflated structure + {} raw bytes) -> QR version {version} at EC level M (target <= 25)",
        f.presentation.len(),
        env.len(),
        stats.deflated,
        stats.binary
    );
    // With the anchor proof of leaf 0 in a batch of 1000 credentials: a
    // 10-hash audit path (random-looking hashes, as real ones are).
    let path = (0u8..10)
        .map(|i| vouch_core::log::record_hash(&[i]))
        .collect();
    let proof = vouch_core::AnchorProof::new(42, 0, 1000, path).expect("proof");
    let anchored = envelope::encode_presentation(&vouch_core::presentation::Presentation {
        sd_jwt: f.presentation.clone(),
        anchor_proof: Some(proof),
    })
    .expect("envelope");
    let code = qr::qr_code(&anchored, qr::EcLevel::M).expect("qr");
    println!(
        "with an anchor proof (batch of 1000, 10 hashes) -> envelope {} chars -> QR version {} at EC level M",
        anchored.len(),
        qr::version(&code)
    );
}

criterion_group!(group, benches);

fn main() {
    group();
    Criterion::default().configure_from_args().final_summary();
    // `cargo test --benches` runs each benchmark once as a smoke test; the
    // rate summary is for `cargo bench` only.
    if std::env::args().any(|a| a == "--bench") {
        summary();
    }
}

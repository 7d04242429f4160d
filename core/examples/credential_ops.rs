//! Runs one credential operation N times on the benchmark's fixture (the
//! 12-course transcript of `benches/credential.rs`), for instruction counts
//! under callgrind, where wall-clock benchmarks on a shared machine drift.
//!
//! ```text
//! cargo build --release -p vouch-core --example credential_ops
//! valgrind --tool=callgrind --toggle-collect='credential_ops::measured*' \
//!     --callgrind-out-file=/tmp/cg.issue target/release/examples/credential_ops issue 200
//! ```
//!
//! Only the `measured_*` functions are counted (the setup and the untimed
//! parts of the bench are not), so instructions per operation = the run's
//! `Ir` / N. Operations: `issue` (the request is cloned outside the count,
//! as the bench builds it untimed; the credential is dropped inside),
//! `issue-compact` (the same, to the compact text, as a batch issuer does:
//! `vc::issue_compact`), `issue-claims` (the same from borrowed claims,
//! `vc::issue_claims`, as the batch issuer now does for each CSV row: the
//! claim tree is built from the fixture's strings inside the count, as
//! the issuer builds it from a row's cells; the concealment is borrowed,
//! as the issuer keeps one per row shape),
//! `present` (3 courses + KB-JWT), `verify` (that presentation), `sign`
//! (raw ed25519-dalek over the issuer JWT's signing input), `verify-raw`
//! (raw `verify_strict` of the same), `decode` (`envelope::decode` of that
//! presentation packed as a `VCH1:` envelope, outside the count).

#![allow(clippy::expect_used, missing_docs)]

use std::hint::black_box;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::vc::{self, CredentialRequest, IssuerKey, PresentationRequest};
use vouch_core::{envelope, sample, ClaimPath, SdJwt};

const NOW: i64 = sample::BENCH_NOW;
const AUD: &str = sample::BENCH_AUD;
const NONCE: &str = sample::BENCH_NONCE;

fn main() {
    let mut args = std::env::args().skip(1);
    let op = args.next().unwrap_or_default();
    let n: u64 = args.next().and_then(|n| n.parse().ok()).expect(
        "usage: credential_ops issue|issue-compact|issue-claims|present|verify|sign|verify-raw|decode N",
    );

    let sample::BenchFixture {
        issuer,
        holder,
        request,
        credential,
        disclose,
        presentation,
        verify_request,
    } = sample::bench_fixture(&mut StdRng::seed_from_u64(1));
    let message = credential.jwt().signing_input().to_vec();
    let signature = issuer.signing_key().sign(&message);
    let key = issuer.signing_key().verifying_key();
    let mut rng = StdRng::seed_from_u64(2);

    match op.as_str() {
        "issue" => {
            let requests: Vec<CredentialRequest> = (0..n).map(|_| request.clone()).collect();
            for request in requests {
                measured_issue(request, &issuer, &mut rng);
            }
        }
        "issue-compact" => {
            let requests: Vec<CredentialRequest> = (0..n).map(|_| request.clone()).collect();
            for request in requests {
                measured_issue_compact(request, &issuer, &mut rng);
            }
        }
        "issue-claims" => {
            for _ in 0..n {
                measured_issue_claims(&request, &issuer, &mut rng);
            }
        }
        "present" => {
            for _ in 0..n {
                black_box(measured_present(&credential, &disclose, &holder));
            }
        }
        "verify" => {
            for _ in 0..n {
                assert!(measured_verify(&presentation, &verify_request));
            }
        }
        "sign" => {
            for _ in 0..n {
                measured_sign(issuer.signing_key(), &message);
            }
        }
        "verify-raw" => {
            for _ in 0..n {
                assert!(measured_verify_raw(&key, &message, &signature));
            }
        }
        "decode" => {
            let packed = envelope::encode(&presentation).expect("the presentation packs");
            for _ in 0..n {
                assert_eq!(measured_decode(&packed), presentation);
            }
        }
        other => panic!("unknown operation {other:?}"),
    }
}

#[inline(never)]
fn measured_issue(request: CredentialRequest, issuer: &IssuerKey, rng: &mut StdRng) {
    black_box(vc::issue(request, issuer, rng).expect("issue"));
}

#[inline(never)]
fn measured_issue_compact(request: CredentialRequest, issuer: &IssuerKey, rng: &mut StdRng) {
    black_box(vc::issue_compact(request, issuer, rng).expect("issue"));
}

/// `vc::issue_claims` of the claims borrowed into slices (`sample::issue_borrowed`).
#[inline(never)]
fn measured_issue_claims(request: &CredentialRequest, issuer: &IssuerKey, rng: &mut StdRng) {
    black_box(sample::issue_borrowed(request, issuer, rng));
}

#[inline(never)]
fn measured_present(credential: &SdJwt, disclose: &[ClaimPath], holder: &SigningKey) -> String {
    credential
        .present(disclose)
        .expect("present")
        .bind(holder, AUD, NONCE, NOW)
        .serialize()
}

#[inline(never)]
fn measured_verify(presentation: &str, request: &PresentationRequest) -> bool {
    vc::verify_presentation(black_box(presentation), request, NOW)
        .expect("verify")
        .is_valid()
}

#[inline(never)]
fn measured_decode(packed: &str) -> String {
    envelope::decode(black_box(packed)).expect("decode")
}

#[inline(never)]
fn measured_sign(key: &SigningKey, message: &[u8]) {
    black_box(key.sign(black_box(message)));
}

#[inline(never)]
fn measured_verify_raw(key: &VerifyingKey, message: &[u8], signature: &Signature) -> bool {
    key.verify_strict(black_box(message), signature).is_ok()
}

//! The library through its real entry points: `Input` from every form,
//! `Verifier::check` against a replica of a loopback registry, with nonces
//! from `Verifier::request`.

use vouch_core::envelope;
use vouch_core::presentation_request::PresentationRequest;
use vouch_core::{CheckName, Outcome};
use vouch_verifier::input::Source;
use vouch_verifier::qr::QrError;
use vouch_verifier::relay::{self, RelayError};
use vouch_verifier::{Ask, Headline, Input, InputError, Verifier, VerifierError};

use crate::common::{ask, serve, upload, Fixture, AUD};

/// A fresh request from `v`, as the wallet reads it (through its text).
fn request(v: &Verifier) -> PresentationRequest {
    let r = v.request(Vec::new(), vouch_verifier::now()).unwrap();
    PresentationRequest::parse(&r.to_text()).unwrap()
}

async fn check(v: &Verifier, input: Input, ask: &Ask) -> vouch_verifier::Checked {
    let presented = input.resolve().await.unwrap();
    v.check(&presented, ask, vouch_verifier::now()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_from_every_form() {
    let f = Fixture::new("forms").await;
    let v = f.verifier("hr").await;

    // VCH1: text.
    let r = request(&v);
    let text = envelope::encode(&f.present(0, r.aud(), r.nonce())).unwrap();
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert_eq!(c.headline, Headline::Valid, "{:?}", c.reason);
    assert_eq!(c.source, Source::Envelope);
    let issuer = c.verification.issuer.as_ref().unwrap();
    assert_eq!(issuer.name.as_deref(), Some("University of Example"));
    assert_eq!(c.verification.claim("courses").unwrap().items.len(), 3);
    let report = vouch_verifier::report::render(&c);
    assert!(report.starts_with("VALID\n"), "{report}");
    assert!(report.contains("University of Example"), "{report}");
    assert!(report.contains("Checked against chain block"), "{report}");

    // A raw SD-JWT.
    let r = request(&v);
    let raw = f.present(0, r.aud(), r.nonce());
    let c = check(&v, Input::from_text(&raw).unwrap(), &ask(&r)).await;
    assert_eq!(c.headline, Headline::Valid, "{:?}", c.reason);
    assert_eq!(c.source, Source::SdJwt);

    // A presentation file with the anchor proof.
    let r = request(&v);
    let file = f.root.path().join("presentation.json");
    let json = vouch_core::presentation::Presentation {
        sd_jwt: f.present(0, r.aud(), r.nonce()),
        anchor_proof: Some(f.proofs[0].clone()),
    }
    .to_file_json();
    std::fs::write(&file, json).unwrap();
    let c = check(&v, Input::read_file(&file).unwrap(), &ask(&r)).await;
    assert_eq!(c.headline, Headline::Valid, "{:?}", c.reason);
    assert_eq!(c.source, Source::File);
    assert_eq!(
        c.verification.check(CheckName::Anchor),
        Some(&Outcome::Pass)
    );

    // A PNG QR code drawn by core, read back by rxing.
    let r = request(&v);
    let text = envelope::encode(&f.present(0, r.aud(), r.nonce())).unwrap();
    let code = vouch_core::qr::qr_code(&text, vouch_core::qr::EcLevel::M).unwrap();
    let png = vouch_core::qr::png(&code, 3, 4).unwrap();
    let input = Input::from_bytes(png).unwrap();
    assert!(matches!(input, Input::Image(_)));
    let c = check(&v, input, &ask(&r)).await;
    assert_eq!(c.headline, Headline::Valid, "{:?}", c.reason);
    assert_eq!(c.source, Source::QrEnvelope);

    // A relay link to the registry's relay, fetched once.
    let r = request(&v);
    let link = upload(&f.url, &f.present(0, r.aud(), r.nonce())).await;
    // The verifier follows links to its own registry only (by default).
    let elsewhere = link.replace(&f.url, &f.url.replace("127.0.0.1", "localhost"));
    let refused = Input::from_text(&elsewhere)
        .unwrap()
        .resolve_with(&v.checker().relay_hosts())
        .await;
    assert!(
        matches!(
            refused,
            Err(InputError::Relay(RelayError::HostNotAllowed { .. }))
        ),
        "{refused:?}"
    );
    let presented = Input::from_text(&link)
        .unwrap()
        .resolve_with(&v.checker().relay_hosts())
        .await
        .unwrap();
    let c = v
        .check(&presented, &ask(&r), vouch_verifier::now())
        .unwrap();
    assert_eq!(c.headline, Headline::Valid, "{:?}", c.reason);
    assert_eq!(c.source, Source::Relay);
    // The relay served it once.
    let again = Input::from_text(&link).unwrap().resolve().await;
    assert!(
        matches!(again, Err(InputError::Relay(RelayError::Gone { .. }))),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_expired_unknown_and_wrong_nonces_are_refused() {
    let f = Fixture::new("nonces").await;
    let v = f.verifier("hr").await;
    let now = vouch_verifier::now();

    // Replayed: the second presentation of one request.
    let r = request(&v);
    let text = f.present(0, r.aud(), r.nonce());
    let first = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert_eq!(first.headline, Headline::Valid, "{:?}", first.reason);
    let second = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert_eq!(second.headline, Headline::NotValid);
    let reason = second.reason.unwrap();
    assert!(reason.starts_with("nonce: replayed"), "{reason}");

    // Expired: a request issued long enough ago.
    let ttl = i64::try_from(v.policy_file().request_ttl).unwrap();
    let old = v.request(Vec::new(), now - ttl - 5).unwrap();
    let text = f.present(0, old.aud(), old.nonce());
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&old)).await;
    assert_eq!(c.headline, Headline::NotValid);
    assert!(
        c.reason.as_deref().unwrap().contains("expired"),
        "{:?}",
        c.reason
    );

    // A nonce this verifier never issued.
    let text = f.present(0, AUD, "made-up-nonce-0123456789");
    let unknown = Ask {
        aud: None,
        nonce: Some("made-up-nonce-0123456789".into()),
    };
    let c = check(&v, Input::from_text(&text).unwrap(), &unknown).await;
    assert!(
        c.reason.as_deref().unwrap().contains("not issued"),
        "{:?}",
        c.reason
    );

    // Bound to another nonce: refused, and the request stays open.
    let r = request(&v);
    let text = f.present(0, r.aud(), "another-nonce-0123456789");
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert!(matches!(
        c.verification.check(CheckName::Nonce),
        Some(Outcome::Fail(_))
    ));
    let text = f.present(0, r.aud(), r.nonce());
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert_eq!(c.headline, Headline::Valid, "{:?}", c.reason);

    // Wrong audience.
    let r = request(&v);
    let text = f.present(0, "https://someone-else.example", r.nonce());
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert!(matches!(
        c.verification.check(CheckName::Audience),
        Some(Outcome::Fail(_))
    ));
    // An --aud that is not the request's cannot be checked.
    let mismatch = Ask {
        aud: Some("https://other.example".into()),
        nonce: Some(r.nonce().into()),
    };
    let presented = Input::from_text(&text).unwrap().resolve().await.unwrap();
    assert!(matches!(
        v.check(&presented, &mismatch, now),
        Err(VerifierError::Audience { .. })
    ));
}

/// A verifier that issued the request knows its nonce: with none asked
/// for, the presentation's nonce is found in the book, with the request's
/// claims, and spent once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nonce_book_answers_without_an_asked_nonce() {
    let f = Fixture::new("book").await;
    let v = f.verifier("hr").await;
    let none = Ask::default();

    let r = request(&v);
    let text = f.present(0, r.aud(), r.nonce());
    let c = check(&v, Input::from_text(&text).unwrap(), &none).await;
    assert_eq!(c.headline, Headline::Valid, "{:?}", c.reason);
    assert_eq!(c.verification.check(CheckName::Nonce), Some(&Outcome::Pass));
    let c = check(&v, Input::from_text(&text).unwrap(), &none).await;
    let reason = c.reason.unwrap();
    assert!(reason.starts_with("nonce: replayed"), "{reason}");

    // The request's claims come with its nonce: one asking for the
    // student's name, answered without it, fails that check.
    let name = vouch_core::ClaimPath::parse("/student_name").unwrap();
    let r = v.request(vec![name], vouch_verifier::now()).unwrap();
    let text = f.present(0, r.aud(), r.nonce());
    let c = check(&v, Input::from_text(&text).unwrap(), &none).await;
    assert!(
        matches!(
            c.verification.check(CheckName::RequestedClaims),
            Some(Outcome::Fail(_))
        ),
        "{:?}",
        c.verification.verdict
    );

    // A nonce the book never saw: not issued here.
    let text = f.present(0, AUD, "never-issued-here-0123456789");
    let c = check(&v, Input::from_text(&text).unwrap(), &none).await;
    let reason = c.reason.unwrap();
    assert!(
        reason.contains("never-issued-here-0123456789 was not issued"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_tampered() {
    let f = Fixture::new("revoked").await;
    let v = f.verifier("hr").await;

    let r = request(&v);
    let text = f.present(1, r.aud(), r.nonce());
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert_eq!(c.headline, Headline::Revoked);
    assert!(vouch_verifier::report::render(&c).starts_with("REVOKED\n"));

    // The issuer signature's first character changed.
    let r = request(&v);
    let text = f.present(0, r.aud(), r.nonce());
    let (jwt, rest) = text.split_once('~').unwrap();
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    let flipped = if sig.starts_with('A') { 'B' } else { 'A' };
    let tampered = format!("{head}.{flipped}{}~{rest}", &sig[1..]);
    let presented = Input::from_text(&tampered)
        .unwrap()
        .resolve()
        .await
        .unwrap();
    match v.check(&presented, &ask(&r), vouch_verifier::now()) {
        Ok(c) => assert_ne!(c.headline, Headline::Valid),
        Err(e) => assert!(matches!(e, VerifierError::Verify(_)), "{e}"),
    }
    // The nonce was not spent by the tampered presentation.
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert_eq!(c.headline, Headline::Valid, "{:?}", c.reason);

    // A truncated envelope cannot be checked.
    let r = request(&v);
    let env = envelope::encode(&f.present(0, r.aud(), r.nonce())).unwrap();
    let cut = Input::from_text(&env[..env.len() / 2])
        .unwrap()
        .resolve()
        .await
        .unwrap();
    assert!(matches!(
        v.check(&cut, &ask(&r), vouch_verifier::now()),
        Err(VerifierError::Verify(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_are_refused() {
    // Garbage PNG and an image bomb.
    let garbage = Input::from_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRjunk".to_vec()).unwrap();
    assert!(matches!(
        garbage.resolve().await,
        Err(InputError::Qr(QrError::Png(_)))
    ));
    let mut bomb = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [
        (
            &b"IHDR"[..],
            &[0, 0, 0xEA, 0x60, 0, 0, 0xEA, 0x60, 8, 0, 0, 0, 0][..],
        ),
        (b"IDAT", &[0x78, 0x9c, 0, 0][..]),
        (b"IEND", &[][..]),
    ] {
        bomb.extend_from_slice(&u32::try_from(data.len()).unwrap().to_be_bytes());
        bomb.extend_from_slice(kind);
        bomb.extend_from_slice(data);
        bomb.extend_from_slice(&crc(kind, data).to_be_bytes());
    }
    let err = Input::from_bytes(bomb)
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert!(
        matches!(err, InputError::Qr(QrError::TooLarge { width: 60_000, .. })),
        "{err}"
    );

    // A QR code holding a URL that is not a relay link.
    assert!(matches!(
        Input::from_text("https://evil.example/login"),
        Err(InputError::Relay(RelayError::Link(_)))
    ));

    // A relay that serves an oversized body, and one that has no such item.
    let big = axum::Router::new().route(
        "/v1/relay/{id}",
        axum::routing::get(|| async { vec![b'a'; 1 << 20] }),
    );
    let url = serve(big).await;
    let link = relay::link(&url, "00112233445566778899aabbccddeeff", &[1; 32]);
    let err = Input::from_text(&link)
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert!(
        matches!(err, InputError::Relay(RelayError::TooLarge)),
        "{err}"
    );
    let f = Fixture::new("hostile").await;
    let link = relay::link(&f.url, "00112233445566778899aabbccddeeff", &[1; 32]);
    let err = Input::from_text(&link)
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert!(
        matches!(err, InputError::Relay(RelayError::Gone { .. })),
        "{err}"
    );
    // A relay item under another key, and one holding another link.
    let good = upload(&f.url, "VCH1:ABC").await;
    let (base, _) = good.split_once('#').unwrap();
    let wrong = format!("{base}#{}", vouch_core::b64::encode([2u8; 32]));
    let err = Input::from_text(&wrong)
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert!(
        matches!(err, InputError::Relay(RelayError::Decrypt(_))),
        "{err}"
    );
    let nested = upload(&f.url, &good).await;
    let err = Input::from_text(&nested)
        .unwrap()
        .resolve()
        .await
        .unwrap_err();
    assert!(matches!(err, InputError::Nested(_)), "{err}");

    // Oversized text, and an unsynced verifier.
    assert!(matches!(
        Input::from_bytes(vec![b'V'; 4 << 20]),
        Err(InputError::TooLarge { .. })
    ));
    let dir = f.root.path().join("unsynced");
    Verifier::init(
        &dir,
        &f.url,
        vouch_verifier::NodePin::Key(f.node_vkey.clone()),
        None,
    )
    .await
    .unwrap();
    let v = Verifier::open(&dir, None).unwrap();
    let presented = Input::from_text("VCH1:ABC")
        .unwrap()
        .resolve()
        .await
        .unwrap();
    assert!(matches!(
        v.check(&presented, &Ask::default(), vouch_verifier::now()),
        Err(VerifierError::NotSynced)
    ));
}

fn crc(kind: &[u8], data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in kind.iter().chain(data) {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// Each way a presentation fails gets the right verdict and reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_has_its_verdict_and_reason() {
    let f = Fixture::new("failures").await;
    let now = vouch_verifier::now();
    let fails =
        |c: &vouch_verifier::Checked, name: CheckName, word: &str| match c.verification.check(name)
        {
            Some(Outcome::Fail(why)) => assert!(why.contains(word), "{name:?}: {why}"),
            other => panic!("{name:?}: {other:?}, reason {:?}", c.reason),
        };

    // Suspended.
    let v = f.verifier("hr").await;
    let r = request(&v);
    let text = f.present(2, r.aud(), r.nonce());
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert_eq!(c.headline, Headline::NotValid);
    fails(&c, CheckName::Status, "suspended");

    // A stale replica: the same view, an hour and more later.
    let r = request(&v);
    let text = f.present(0, r.aud(), r.nonce());
    let presented = Input::from_text(&text).unwrap().resolve().await.unwrap();
    let later = now + i64::try_from(v.policy_file().max_replica_age).unwrap() + 120;
    let c = v.check(&presented, &ask(&r), later).unwrap();
    fails(&c, CheckName::Freshness, "stale");

    // An issuer the chain never accredited.
    let stranger = f.stranger_credential(0).await;
    let r = request(&v);
    let text = f.present_credential(&stranger, 0, r.aud(), r.nonce());
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert_eq!(c.headline, Headline::NotValid);
    fails(&c, CheckName::Accreditation, "not an issuer on the chain");
    assert!(c.verification.issuer.as_ref().unwrap().name.is_none());
    drop(v);

    // A kind this verifier does not accept.
    let policy = vouch_verifier::PolicyFile {
        accepted_kinds: vec!["employment".into()],
        ..Default::default()
    };
    let v = f.verifier_with("employers-only", Some(policy)).await;
    let r = request(&v);
    let text = f.present(0, r.aud(), r.nonce());
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    fails(&c, CheckName::Kind, "not accepted");
    drop(v);

    // Too few witness cosignatures: the policy needs one the block lacks.
    let witness = ed25519_dalek::SigningKey::from_bytes(&[77; 32]);
    let policy = vouch_verifier::PolicyFile {
        witnesses: vec![vouch_core::log::witness_vkey(
            "witness.example",
            &witness.verifying_key(),
        )],
        need: 1,
        ..Default::default()
    };
    let dir = f.root.path().join("witnessed");
    Verifier::init(
        &dir,
        &f.url,
        vouch_verifier::NodePin::Key(f.node_vkey.clone()),
        Some(AUD.into()),
    )
    .await
    .unwrap();
    let mut v = Verifier::open(&dir, Some(policy)).unwrap();
    // The replica itself refuses to move to an under-cosigned block.
    assert!(v.sync(None).await.is_err());
    assert!(matches!(v.view(), Err(VerifierError::NotSynced)));
    drop(v);
    // A replica synced without witnesses, checked under a policy that
    // needs one: the cosignature check fails.
    let v = f.verifier("later-witnessed").await;
    let dir = v.dir().to_owned();
    drop(v);
    let policy = vouch_verifier::PolicyFile {
        witnesses: vec![vouch_core::log::witness_vkey(
            "witness.example",
            &witness.verifying_key(),
        )],
        need: 1,
        ..Default::default()
    };
    let v = Verifier::open(&dir, Some(policy)).unwrap();
    let r = request(&v);
    let text = f.present(0, r.aud(), r.nonce());
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    fails(&c, CheckName::Cosignatures, "1 needed");
}

/// The text report: a list the holder disclosed nothing of reads "none
/// disclosed" (never "[]"), and the replica's age is in its largest unit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_says_none_disclosed_and_the_age_in_its_unit() {
    let f = Fixture::new("report").await;
    let v = f.verifier("hr").await;
    let r = request(&v);
    let name = vouch_core::ClaimPath::parse("/student_name").unwrap();
    let text = f.credentials[0]
        .present(&[name])
        .unwrap()
        .bind(&f.holders[0], r.aud(), r.nonce(), vouch_verifier::now())
        .serialize();
    let c = check(&v, Input::from_text(&text).unwrap(), &ask(&r)).await;
    assert_eq!(c.headline, Headline::Valid, "{:?}", c.reason);
    let report = vouch_verifier::report::render(&c);
    assert!(report.contains("  Courses: none disclosed\n"), "{report}");
    assert!(!report.contains("[]"), "{report}");
    assert!(report.contains("  Student name: Student 0\n"), "{report}");
    let age = vouch_verifier::report::age_text(c.verification.as_of.age);
    assert!(
        report.contains(&format!(
            "Checked against chain block {}, {age} old.",
            c.verification.as_of.height
        )),
        "{report}"
    );
    assert!(!report.contains("minute"), "{report}");
}

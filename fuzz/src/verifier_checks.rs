//! Checks of the vouch-verifier parsers of outside input, and of the QR
//! image decoder it serves (`vouch_core::scan`, feature `scan`, which the
//! verifier turns on). Shared by the fuzz targets and the replay test
//! verifier/tests/it/fuzz_cases.rs, which includes this file; so it uses
//! only vouch-verifier's own dependencies.

use std::sync::OnceLock;

use ed25519_dalek::SigningKey;
use vouch_core::scan;
use vouch_verifier::policy::MAX_POLICY_BYTES;
use vouch_verifier::{Input, PolicyFile, Source};

/// Largest image the `qr_image` check decodes, in bytes. The service takes
/// up to `scan::MAX_IMAGE_BYTES` (16 MiB); fuzzing stays far below so that
/// one run covers many inputs. What is fuzzed is everything before the
/// pixels: the signature, the header and its size guard (an image bomb, a
/// small file claiming a huge image, is refused from its header), the PNG
/// and JPEG decoders under their allocation cap, and rxing on what they
/// produce.
pub const MAX_FUZZ_IMAGE_BYTES: usize = 64 << 10;

/// The verifier key of the node the `policy_file` check builds policies
/// for (a fixed key).
fn node_vkey() -> String {
    let key = SigningKey::from_bytes(&[0x11; 32]);
    vouch_core::log::node_vkey("fuzz.example/registry", &key.verifying_key())
}

/// The policy file (`PolicyFile::parse`, TOML, at most `MAX_POLICY_BYTES`
/// as `PolicyFile::read` allows): a parsed policy writes back to TOML that
/// parses to the same policy; turning it into a trust policy and a
/// verification policy for a node never panics, and a quorum that is not
/// a majority is refused unless the file forces it.
pub fn policy_file(data: &[u8]) {
    if data.len() > MAX_POLICY_BYTES {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(policy) = PolicyFile::parse(text, "fuzz.toml") else {
        return;
    };
    assert!(policy.max_replica_age > 0 && policy.max_presentation_age > 0);
    assert!((1..=vouch_verifier::policy::MAX_REQUEST_TTL).contains(&policy.request_ttl));
    assert!((1..=vouch_verifier::policy::MAX_OPEN_REQUESTS).contains(&policy.max_open_requests));
    // Integers over i64::MAX do not parse from TOML, so every parsed policy
    // writes back.
    let again = toml::to_string(&policy).expect("a parsed policy writes back to TOML");
    assert_eq!(
        PolicyFile::parse(&again, "again.toml").as_ref().ok(),
        Some(&policy),
        "policy TOML round trip differs:\n{again}"
    );
    let vkey = node_vkey();
    if let Ok(trust) = policy.trust(&vkey) {
        let n = policy.witnesses.len();
        let distinct = policy
            .witnesses
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len();
        if distinct == n {
            assert!(
                policy.force_weak_quorum || n == 0 || policy.need.saturating_mul(2) > n,
                "a weak quorum ({} of {n}) was accepted",
                policy.need
            );
        }
        assert_eq!(trust.need(), policy.need);
    }
    let _ = policy.policy(&vkey);
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime builds")
    })
}

/// What a verifier is handed as text or bytes (`Input::from_text`,
/// `Input::from_bytes`): a classified input is the trimmed text (an
/// envelope or a raw SD-JWT), a file form or a relay link; bytes that are
/// text classify as that text does. Text inputs resolve to a presentation
/// (nothing is fetched: links are not followed here), with the source they
/// were classified as.
pub fn verifier_input(data: &[u8]) {
    let from_bytes = Input::from_bytes(data.to_vec());
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(input) = Input::from_text(text) else {
        if scan::image_format(data).is_none() {
            assert!(from_bytes.is_err(), "bytes accepted, the same text refused");
        }
        return;
    };
    if scan::image_format(data).is_none() {
        assert_eq!(
            from_bytes.as_ref().map(std::mem::discriminant).ok(),
            Some(std::mem::discriminant(&input)),
            "bytes and text classify differently"
        );
    }
    let trimmed = text.trim();
    let expected = match &input {
        Input::Envelope(t) => {
            assert_eq!(t, trimmed);
            assert!(t.starts_with(vouch_core::envelope::PREFIX));
            Some(Source::Envelope)
        }
        Input::SdJwt(t) => {
            assert_eq!(t, trimmed);
            Some(Source::SdJwt)
        }
        Input::File(file) => {
            assert!(!file.sd_jwt.is_empty());
            Some(Source::File)
        }
        Input::Relay(link) => {
            assert_eq!(link.id().len(), 32);
            None
        }
        Input::Image(_) => panic!("text classified as an image"),
        _ => None,
    };
    let Some(expected) = expected else { return };
    match runtime().block_on(input.resolve()) {
        Ok(presented) => {
            assert_eq!(presented.source, expected, "resolved with another source");
            assert!(!presented.text.is_empty());
        }
        Err(e) => panic!("a text input did not resolve: {e}"),
    }
}

/// A camera frame or uploaded image (`scan::decode`, PNG or JPEG), up to
/// [`MAX_FUZZ_IMAGE_BYTES`]: no panic, and a code's text is within
/// `MAX_QR_TEXT`. What is not PNG or JPEG by its signature is refused as
/// such.
pub fn qr_image(data: &[u8]) {
    if data.len() > MAX_FUZZ_IMAGE_BYTES {
        return;
    }
    match scan::decode(data) {
        Ok(text) => assert!(text.len() <= scan::MAX_QR_TEXT),
        Err(scan::QrError::Format) => assert!(scan::image_format(data).is_none()),
        Err(_) => {}
    }
    if scan::image_format(data).is_some() {
        match Input::from_bytes(data.to_vec()) {
            Ok(Input::Image(_)) => {}
            other => panic!("an image classified as {other:?}"),
        }
    }
}

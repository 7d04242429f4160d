//! Checks of the vouch-core parsers of outside input. Shared by the fuzz
//! targets (fuzz/fuzz_targets) and the replay test core/tests/it/fuzz_cases.rs,
//! which includes this file; so it uses only vouch-core's own dependencies.
//!
//! Every check: no panic on any input; where a serialiser exists, parse ->
//! serialise -> parse gives the same value; and the invariants the code
//! documents (canonical forms, state unchanged on refusal).

use ed25519_dalek::SigningKey;
use vouch_core::anchor::{self, AnchorProof};
use vouch_core::archive::{ArchiveLine, Lines};
use vouch_core::chain::{self, AuthorCache, ChainState, Entry};
use vouch_core::did::{DidKey, DocumentForm};
use vouch_core::envelope;
use vouch_core::jws::{Jws, PublicKey};
use vouch_core::log::{self, Block, TrustPolicy};
use vouch_core::manifest::Manifest;
use vouch_core::presentation::Presentation;
use vouch_core::presentation_request::{self, PresentationRequest as VerifierRequest};
use vouch_core::sd_jwt::{self, KeyBinding, SdJwt, VerifyOptions};
use vouch_core::status_list::{EncodedStatusList, StatusList, StatusListClaims};
use vouch_core::vc::{self, PresentationRequest};

/// The verifier's clock: the seed presentations are valid at this time.
pub const NOW: i64 = 1_780_000_000;
/// Expected KB-JWT audience (the seed presentations are bound to it).
pub const AUD: &str = "https://hr.example.com";
/// Expected KB-JWT nonce.
pub const NONCE: &str = "n-0S6_WzA2Mj";
/// Log origin of the seed checkpoints.
pub const ORIGIN: &str = "fuzz.example/registry";
/// Witness name of the seed checkpoints.
pub const WITNESS: &str = "fuzz.example/witness";

/// The seed issuer's key (also the node key of the seed checkpoints).
pub fn issuer_key() -> SigningKey {
    SigningKey::from_bytes(&[0x11; 32])
}

/// The seed witness's key.
pub fn witness_key() -> SigningKey {
    SigningKey::from_bytes(&[0x33; 32])
}

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `SdJwt::parse` (or the JWS JSON serialisation when the input starts with
/// `{`), serialise round trip, reveal, and `verify_parsed` at [`NOW`] without
/// required key binding: first resolving the issuer from the did:key `kid`,
/// then, if that is refused, with the fixed issuer key so the checks after
/// key resolution run too.
pub fn sd_jwt_compact(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let json = text.starts_with('{');
    let parsed = if json {
        SdJwt::from_json_serialization(text)
    } else {
        SdJwt::parse(text)
    };
    let Ok(sd) = parsed else { return };
    let compact = sd.serialize();
    if !json {
        assert_eq!(compact, text, "SdJwt::serialize is not the parsed text");
    }
    let again = SdJwt::parse(&compact).expect("a serialised SD-JWT parses");
    assert_eq!(again, sd, "SD-JWT parse -> serialize -> parse differs");
    let _ = sd.reveal();
    let mut options = VerifyOptions::new(NOW, KeyBinding::Optional);
    if sd_jwt::verify_parsed(&sd, &options).is_err() {
        options.issuer_key = Some(PublicKey::Ed25519(issuer_key().verifying_key()));
        let _ = sd_jwt::verify_parsed(&sd, &options);
    }
}

/// A presentation as a verifier receives it: `vc::verify_presentation` with
/// a KB-JWT required for [`AUD`] and [`NONCE`], then `vc::verify_with` the
/// fixed issuer key. A verdict that passes must carry a KB-JWT.
pub fn sd_jwt_kb(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let request = PresentationRequest {
        aud: AUD.into(),
        nonce: NONCE.into(),
        max_age: 300,
    };
    let binding = KeyBinding::Required {
        aud: AUD.into(),
        nonce: NONCE.into(),
        max_age: 300,
    };
    let mut options = VerifyOptions::new(NOW, binding);
    options.issuer_key = Some(PublicKey::Ed25519(issuer_key().verifying_key()));
    for verdict in [
        vc::verify_presentation(text, &request, NOW),
        vc::verify_with(text, &options),
    ]
    .into_iter()
    .flatten()
    {
        if verdict.is_valid() {
            let sd = SdJwt::parse(text).expect("a valid presentation parses");
            assert!(sd.kb_jwt().is_some(), "valid without the required KB-JWT");
        }
    }
}

/// `envelope::decode`, and `envelope::decode_sd_jwt` agreeing with it; what
/// decodes stays within `MAX_DECODED` and survives
/// encode -> decode. The other way too: whatever `envelope::encode` accepts
/// decodes back to exactly the input.
pub fn envelope(data: &[u8]) {
    let Some(text) = text(data) else { return };
    // Decoded straight into its SD-JWT: what parsing the decoded text
    // gives, or the same envelope error.
    match (envelope::decode(text), envelope::decode_sd_jwt(text)) {
        (Ok(decoded), Ok(parsed)) => {
            let again = SdJwt::parse(&decoded);
            // `==` leaves the carried sd_hash out: a KB-JWT bound to each
            // (Ed25519 signing is deterministic) compares it too.
            if let (Ok(a), Ok(b)) = (&parsed.sd_jwt, &again) {
                let key = SigningKey::from_bytes(&[7; 32]);
                assert_eq!(
                    a.clone().bind(&key, "a", "n", 0).serialize(),
                    b.clone().bind(&key, "a", "n", 0).serialize(),
                    "the sd_hash decode_sd_jwt carries is not the parts' hash"
                );
            }
            assert_eq!(
                parsed.sd_jwt, again,
                "decode_sd_jwt differs from parsing the decoded text"
            );
        }
        (Err(e), Err(again)) => assert_eq!(e, again, "decode_sd_jwt fails otherwise"),
        (one, other) => panic!("decode {one:?}, decode_sd_jwt {other:?}"),
    }
    if let Ok(presentation) = envelope::decode(text) {
        assert!(presentation.len() <= envelope::MAX_DECODED);
        if let Ok(again) = envelope::encode(&presentation) {
            assert_eq!(
                envelope::decode(&again).as_deref(),
                Ok(presentation.as_str()),
                "envelope decode -> encode -> decode differs"
            );
        }
    }
    if text.len() <= envelope::MAX_DECODED {
        if let Ok(packed) = envelope::encode(text) {
            assert_eq!(
                envelope::decode(&packed).as_deref(),
                Ok(text),
                "envelope encode -> decode differs"
            );
        }
    }
}

/// Chain entries, one per line as the registry serves them
/// (`/v1/entries`): `Entry::parse_with` each line with one shared author
/// cache, as a replica does. A parsed entry is its input bytes and parses
/// again to the same entry; single and batch signature checks agree;
/// re-signing its action gives an entry that parses and verifies. The
/// entries are applied in order to one `ChainState`; a refused entry leaves
/// the state unchanged.
pub fn chain_entry(data: &[u8]) {
    let mut authors = AuthorCache::default();
    let mut state = ChainState::new();
    for line in data.split(|&b| b == b'\n') {
        let Ok(entry) = Entry::parse_with(line, &mut authors) else {
            continue;
        };
        check_entry(&entry, line);
        let before = state.clone();
        if state.apply(&entry).is_err() {
            assert_eq!(state, before, "a refused entry changed the state");
        }
    }
}

fn check_entry(entry: &Entry, line: &[u8]) {
    assert_eq!(entry.as_bytes(), line, "entry bytes are not the input");
    assert_eq!(
        Entry::parse(entry.as_bytes()).as_ref(),
        Ok(entry),
        "entry parse -> bytes -> parse differs"
    );
    let single = entry.verify_signature().is_ok();
    let batch = chain::verify_signatures(std::slice::from_ref(entry)).is_ok();
    assert_eq!(single, batch, "single and batch signature checks disagree");

    let resigned = Entry::sign(
        &issuer_key(),
        entry.seq(),
        entry.time(),
        entry.action().clone(),
    );
    let back = Entry::parse(resigned.as_bytes()).expect("a signed entry parses");
    assert_eq!(back, resigned, "signed entry parse differs");
    back.verify_signature()
        .expect("a freshly signed entry verifies");
}

/// Checkpoints and signed notes (core/src/log.rs): `Block::from_body` is
/// canonical and round-trips, a parsed block signed by the node verifies
/// back to itself; `Block::from_note_unverified`, `TrustPolicy::verify`,
/// `parse_vkey` and `merge_cosignatures` (two notes separated by a NUL) do not
/// panic.
pub fn checkpoint(data: &[u8]) {
    if let Ok(block) = Block::from_body(data) {
        assert_eq!(block.body().as_bytes(), data, "block body is not the input");
        assert_eq!(
            Block::from_body(block.body().as_bytes()).as_ref(),
            Ok(&block),
            "block body round trip differs"
        );
        let key = issuer_key();
        if let Ok(note) = log::sign_block(&block, &key) {
            let policy = TrustPolicy::new(
                (block.origin.clone(), key.verifying_key()),
                Vec::new(),
                0,
                false,
            )
            .expect("a node-only policy is allowed");
            let signed = policy
                .verify(note.as_bytes())
                .expect("a block the node signed verifies");
            assert_eq!(signed.block, block, "signed block differs");
            assert_eq!(
                Block::from_note_unverified(note.as_bytes()).as_ref(),
                Ok(&block),
                "note of a signed block differs"
            );
        }
    }
    let _ = Block::from_note_unverified(data);
    let policy = TrustPolicy::new(
        (ORIGIN.into(), issuer_key().verifying_key()),
        vec![(WITNESS.into(), witness_key().verifying_key())],
        1,
        false,
    )
    .expect("1 of 1 is a majority");
    if let Ok(signed) = policy.verify(data) {
        assert_eq!(signed.block.origin, ORIGIN);
        assert!(signed.cosigned_by.len() >= policy.need());
    }
    let _ = policy.with_need(0).verify(data);
    let Some(text) = text(data) else { return };
    let _ = log::parse_vkey(text);
    if let Some((a, b)) = text.split_once('\0') {
        // Merging keeps the stored note's text and adds only lines that
        // verify under the policy: merging the result again adds nothing.
        if let Ok(Some(merged)) = policy.merge_cosignatures(a, b) {
            assert_eq!(
                policy.merge_cosignatures(&merged, b).ok(),
                Some(None),
                "a second merge of the same lines changed the note"
            );
            let _ = policy.verify(merged.as_bytes());
        }
    }
}

/// A Status List Token: `Jws::parse` then `StatusListClaims::parse_unverified`
/// (which inflates the list, bounded by `MAX_LIST_BYTES`); the claims signed
/// again verify back to the same claims. A bare `{"bits":…,"lst":…}` list
/// decodes, and encode -> decode gives it back.
pub fn status_list(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(jws) = Jws::parse(text) {
        if let Ok(claims) = StatusListClaims::parse_unverified(&jws) {
            let len = claims.list.len();
            for idx in [0, len / 2, len.saturating_sub(1), len, u64::MAX] {
                let got = claims.list.get(idx);
                assert_eq!(got.is_ok(), idx < len, "get({idx}) of a list of {len}");
            }
            let key = issuer_key();
            let signed = claims.sign("did:key:fuzz#0", &key);
            let back =
                StatusListClaims::verify(signed.as_str(), &PublicKey::Ed25519(key.verifying_key()))
                    .expect("a signed status list token verifies");
            assert_eq!(back, claims, "status list token round trip differs");
        }
    }
    if let Ok(encoded) = serde_json::from_str::<EncodedStatusList>(text) {
        if let Ok(list) = StatusList::decode(&encoded) {
            assert_eq!(
                StatusList::decode(&list.encode()).as_ref(),
                Ok(&list),
                "status list encode -> decode differs"
            );
        }
    }
}

/// `DidKey::parse` and `parse_verification_method`: a parsed did:key is its
/// input and is the canonical did:key of its key; its verification method
/// parses back to it; resolving it does not panic.
pub fn did_key(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Ok(did) = DidKey::parse(text) {
        assert_eq!(did.as_str(), text);
        assert_eq!(
            DidKey::from_public_key(did.verifying_key()).as_str(),
            text,
            "did:key is not canonical"
        );
        assert_eq!(
            DidKey::parse_verification_method(&did.verification_method()).as_ref(),
            Ok(&did),
            "verification method round trip differs"
        );
        let _ = did.document(DocumentForm::Multikey);
        let _ = did.document(DocumentForm::JsonWebKey2020);
        let _ = did.jwk();
        let _ = did.x25519_multibase();
    }
    if let Ok(did) = DidKey::parse_verification_method(text) {
        assert_eq!(DidKey::parse(did.as_str()).as_ref(), Ok(&did));
    }
}

/// An anchor proof as a wallet or a manifest carries it
/// (`AnchorProof::from_json`): a parsed proof serialises back to JSON that
/// parses to the same proof, its path has the RFC 9162 length for its leaf
/// and size, and checking it against a leaf and a root never panics.
pub fn anchor_proof(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(proof) = AnchorProof::from_json(text) else {
        return;
    };
    assert!(
        proof.leaf_index() < proof.batch_size(),
        "leaf outside the batch"
    );
    assert!(proof.path().len() <= anchor::MAX_PATH_HASHES);
    let again = AnchorProof::from_json(&proof.to_json());
    assert_eq!(
        again.as_ref(),
        Ok(&proof),
        "anchor proof JSON round trip differs"
    );
    let again = AnchorProof::new(
        proof.entry_index(),
        proof.leaf_index(),
        proof.batch_size(),
        proof.path().to_vec(),
    );
    assert_eq!(
        again.as_ref(),
        Ok(&proof),
        "AnchorProof::new refuses a parsed proof"
    );
    let root = log::Hash([7; 32]);
    let _ = proof.verify(anchor::leaf(text).as_bytes(), root);
}

/// A verifier's presentation request as a wallet reads it
/// (`presentation_request::PresentationRequest::parse`, `VCHR1:` text): a
/// parsed request is within the bounds `new` enforces, and its text form
/// parses back to the same request (or, when re-encoding made it longer
/// than `MAX_REQUEST_CHARS`, is refused as too long: never misread).
pub fn presentation_request(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(request) = VerifierRequest::parse(text) else {
        return;
    };
    assert!(!request.aud().is_empty());
    assert!(request.aud().chars().count() <= presentation_request::MAX_AUD_CHARS);
    assert!(
        (presentation_request::MIN_NONCE_CHARS..=presentation_request::MAX_NONCE_CHARS)
            .contains(&request.nonce().len())
    );
    assert!(request.expires() > 0);
    assert!(request.claims().len() <= presentation_request::MAX_CLAIMS);
    let again = request.to_text();
    assert!(again.starts_with(presentation_request::PREFIX));
    match VerifierRequest::parse(&again) {
        Ok(back) => assert_eq!(back, request, "request parse -> text -> parse differs"),
        // The text form of a request read from at most MAX_REQUEST_CHARS
        // can be longer only if the JSON it was read from was not compact.
        Err(presentation_request::RequestError::TooLong { .. }) => {}
        Err(e) => panic!("the text of a parsed request does not parse: {e}"),
    }
    let _ = request.is_expired(NOW);
    let _ = request.to_request();
}

/// An issuer's batch manifest as a wallet imports it (`Manifest::from_json`):
/// a parsed manifest serialises to JSON that parses to the same manifest;
/// looking entries up by file and credential, and checking the anchor
/// entry's inclusion, never panic.
pub fn manifest(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(manifest) = Manifest::from_json(text) else {
        return;
    };
    let json = manifest.to_json();
    assert_eq!(
        Manifest::from_json(&json).as_ref().ok(),
        Some(&manifest),
        "manifest JSON round trip differs"
    );
    for entry in manifest.entries() {
        assert_eq!(
            manifest.entry_by_file(&entry.file).map(|e| &e.file),
            Some(&entry.file),
            "a listed file is not found by its name"
        );
        let _ = manifest.check_entry(entry, text);
    }
    let _ = manifest.entry_for_credential(text);
    let _ = manifest.check_anchor();
    let _ = manifest.batch_root();
}

/// A batch's JSON Lines archive (`archive::Lines`, which a wallet imports
/// from): nothing is read after the first refused line; every line read
/// names its own credential (`credential_id`) and parses again, the same,
/// from what `serde_json` writes of it.
pub fn archive(data: &[u8]) {
    let mut refused = false;
    for line in Lines::new(std::io::Cursor::new(data.to_vec())) {
        assert!(!refused, "a line was read after a refused one");
        match line {
            Ok(line) => {
                assert_eq!(
                    vouch_core::manifest::credential_id(&line.sd_jwt),
                    line.credential_id,
                    "a line whose id is not its credential's"
                );
                let json = serde_json::to_string(&line).expect("an archive line serialises");
                assert_eq!(
                    ArchiveLine::parse(&json, 1).as_ref().ok(),
                    Some(&line),
                    "archive line JSON round trip differs"
                );
            }
            Err(_) => refused = true,
        }
    }
}

/// The QR envelope with its anchor part (`envelope::decode_presentation`):
/// what decodes stays within `MAX_DECODED`; its anchor proof, if any, is in
/// bounds; encoding it again (`encode_presentation`) decodes back to the
/// same presentation and proof.
pub fn envelope_anchor(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let Ok(presentation) = envelope::decode_presentation(text) else {
        return;
    };
    assert!(presentation.sd_jwt.len() <= envelope::MAX_DECODED);
    if let Some(proof) = &presentation.anchor_proof {
        assert!(proof.leaf_index() < proof.batch_size());
        assert!(proof.path().len() <= anchor::MAX_PATH_HASHES);
    }
    if let Ok(again) = envelope::encode_presentation(&presentation) {
        assert_eq!(
            envelope::decode_presentation(&again).as_ref(),
            Ok(&presentation),
            "envelope decode_presentation -> encode -> decode differs"
        );
    }
}

/// The presentation file form (`Presentation::from_file_json`, and
/// `Presentation::read`, which takes any of the forms): a parsed file is
/// compact SD-JWT text with an anchor proof in bounds, and writes back to
/// JSON that parses to the same presentation; `read` of a file form agrees
/// with `from_file_json`.
pub fn presentation_file(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let read = Presentation::read(text);
    let Ok(file) = Presentation::from_file_json(text) else {
        return;
    };
    assert!(!file.sd_jwt.is_empty());
    assert!(file
        .sd_jwt
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')));
    if let Some(proof) = &file.anchor_proof {
        assert!(proof.leaf_index() < proof.batch_size());
        assert!(proof.path().len() <= anchor::MAX_PATH_HASHES);
    }
    let json = file.to_file_json();
    assert_eq!(
        Presentation::from_file_json(&json).as_ref(),
        Ok(&file),
        "presentation file JSON round trip differs"
    );
    if text.trim_matches(|c: char| c.is_ascii_whitespace()) == text {
        assert_eq!(read.as_ref(), Ok(&file), "read and from_file_json disagree");
    }
}

/// The one-pass JSON read of the verify path against the general way it
/// replaced (session 8), on any bytes: `jws::parse_json_object` (SD-JWT
/// payloads, JWS headers) gives what `serde_json`'s `Map` then
/// `check_member_names` (repeats, and names of serde_json's own) give, the
/// same object or the same error; and a disclosure of these bytes
/// (`Disclosure::parse`) gives what parsing as `serde_json` does, then the
/// shape, the member names and the depth give. Built
/// with the workspace's features of `serde_json` (`arbitrary_precision`,
/// and `raw_value` through the verifier), whose private member names the
/// read must treat as `serde_json` does.
pub fn json_object(data: &[u8]) {
    use serde_json::{Map, Value};
    use vouch_core::jws::{self, JsonObjectError};
    use vouch_core::sd_jwt::{Disclosure, DisclosureError, MAX_DEPTH};

    let general = serde_json::from_slice::<Map<String, Value>>(data)
        .map_err(|e| JsonObjectError::Json {
            category: e.classify(),
            line: e.line(),
            column: e.column(),
        })
        .and_then(|object| {
            jws::check_member_names(data)?;
            Ok(object)
        });
    assert_eq!(jws::parse_json_object(data), general, "a JSON object");

    // How many containers nest in a value (a scalar 0, `[]` 1), as the
    // disclosure's depth rule counts them.
    fn nesting(value: &Value) -> usize {
        match value {
            Value::Array(items) => 1 + items.iter().map(nesting).max().unwrap_or(0),
            Value::Object(map) => 1 + map.values().map(nesting).max().unwrap_or(0),
            _ => 0,
        }
    }
    let general = serde_json::from_slice::<Value>(data)
        .map_err(|e| DisclosureError::Json {
            line: e.line(),
            column: e.column(),
        })
        .and_then(|array| {
            let Value::Array(items) = array else {
                return Err(DisclosureError::Shape);
            };
            let mut items = items.into_iter();
            let (salt, name, value) = match (items.next(), items.next(), items.next(), items.next())
            {
                (Some(Value::String(salt)), Some(Value::String(name)), Some(value), None) => {
                    (salt, Some(name), value)
                }
                (Some(Value::String(salt)), Some(value), None, None) => (salt, None, value),
                _ => return Err(DisclosureError::Shape),
            };
            jws::check_member_names(data)?;
            if nesting(&value) > MAX_DEPTH {
                return Err(DisclosureError::TooDeep);
            }
            Ok((salt, name, value))
        });
    let read = Disclosure::parse(&vouch_core::b64::encode(data)).map(|d| {
        (
            d.salt().to_owned(),
            d.name().map(str::to_owned),
            d.value().clone(),
        )
    });
    assert_eq!(read, general, "a disclosure");
}

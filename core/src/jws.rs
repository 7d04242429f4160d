//! Compact JWS (RFC 7515) as SD-JWT uses it: parse strictly, sign with EdDSA,
//! verify EdDSA (ed25519-dalek) and ES256 (ssi, for RFC 9901's own examples and
//! EUDI-style issuers).

use std::borrow::Cow;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde_json::{Map, Value};
use ssi_jwk::{Algorithm as SsiAlgorithm, Params, JWK};

use crate::b64;

/// Longest compact JWS [`Jws::parse`] reads, in bytes: the limit of the
/// SD-JWT it may be part of ([`crate::sd_jwt::MAX_SD_JWT_BYTES`]). Checked
/// before anything is split or decoded.
pub const MAX_JWS_BYTES: usize = 1024 * 1024;

/// Why a compact JWS could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwsError {
    /// Not three `.`-separated parts.
    #[error("a compact JWS has 3 parts separated by '.', found {0}")]
    Parts(usize),
    /// A part is not canonical base64url.
    #[error("JWS {part} is not canonical base64url")]
    Base64 {
        /// `header`, `payload` or `signature`.
        part: &'static str,
    },
    /// The header is not a JSON object.
    #[error("JWS header is not a JSON object: {0}")]
    Header(#[source] JsonObjectError),
    /// The header names no `alg` or one we do not verify.
    #[error("unsupported JWS alg {0:?} (EdDSA and ES256 are supported)")]
    Alg(String),
    /// The header has `crit`, whose extensions we do not understand.
    #[error("JWS header has crit parameters, which are not supported")]
    Crit,
    /// Longer than [`MAX_JWS_BYTES`].
    #[error("JWS of {len} bytes is longer than the {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// The signature algorithms Vouch verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    /// Ed25519 (RFC 8037). The only algorithm Vouch signs with.
    EdDSA,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

impl Alg {
    /// The JOSE name.
    pub fn as_str(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::ES256 => "ES256",
        }
    }
}

/// A parsed compact JWS. Keeps the exact text so serialisation is lossless.
#[derive(Debug, Clone, PartialEq)]
pub struct Jws {
    text: String,
    alg: Alg,
    header: Map<String, Value>,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl Jws {
    /// Parses `header.payload.signature`.
    ///
    /// # Errors
    /// [`JwsError`] for text longer than [`MAX_JWS_BYTES`] (refused before
    /// any work), a wrong number of parts, non-canonical base64url, a header
    /// that is not a JSON object or repeats a member name, an unsupported
    /// `alg`, or `crit`.
    pub fn parse(text: &str) -> Result<Self, JwsError> {
        if text.len() > MAX_JWS_BYTES {
            return Err(JwsError::TooLarge {
                len: text.len(),
                max: MAX_JWS_BYTES,
            });
        }
        let mut parts = text.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::Parts(text.split('.').count()));
        };
        let header_bytes = b64::decode(h).map_err(|_| JwsError::Base64 { part: "header" })?;
        let payload = b64::decode(p).map_err(|_| JwsError::Base64 { part: "payload" })?;
        let signature = b64::decode(s).map_err(|_| JwsError::Base64 { part: "signature" })?;
        Self::from_decoded(text.to_owned(), &header_bytes, payload, signature)
    }

    /// As [`Jws::parse`], for `text` whose three parts are already
    /// decoded: `header`, `payload` and `signature` must be exactly what
    /// base64url-decoding them gives (the QR envelope renders the text
    /// from these bytes, so it has them). Makes the checks [`Jws::parse`]
    /// makes after decoding, with the same errors.
    pub(crate) fn from_decoded(
        text: String,
        header: &[u8],
        payload: Vec<u8>,
        signature: Vec<u8>,
    ) -> Result<Self, JwsError> {
        if text.len() > MAX_JWS_BYTES {
            return Err(JwsError::TooLarge {
                len: text.len(),
                max: MAX_JWS_BYTES,
            });
        }
        let header: Map<String, Value> = parse_json_object(header).map_err(JwsError::Header)?;
        let alg = match header.get("alg").and_then(Value::as_str) {
            Some("EdDSA") => Alg::EdDSA,
            Some("ES256") => Alg::ES256,
            Some(other) => return Err(JwsError::Alg(other.to_owned())),
            None => return Err(JwsError::Alg(String::new())),
        };
        if header.contains_key("crit") {
            return Err(JwsError::Crit);
        }
        Ok(Self {
            text,
            alg,
            header,
            payload,
            signature,
        })
    }

    /// Signs `payload` with Ed25519 under a header of `alg: EdDSA` plus `typ`
    /// and `kid` when given.
    pub fn sign_eddsa(
        payload: &[u8],
        typ: Option<&str>,
        kid: Option<&str>,
        key: &SigningKey,
    ) -> Self {
        Self::sign_eddsa_owned(payload.to_vec(), typ, kid, key)
    }

    /// As [`Jws::sign_eddsa`], keeping `payload` without a copy.
    pub(crate) fn sign_eddsa_owned(
        payload: Vec<u8>,
        typ: Option<&str>,
        kid: Option<&str>,
        key: &SigningKey,
    ) -> Self {
        let mut header = Map::new();
        header.insert("alg".into(), Value::from("EdDSA"));
        if let Some(typ) = typ {
            header.insert("typ".into(), Value::from(typ));
        }
        if let Some(kid) = kid {
            header.insert("kid".into(), Value::from(kid));
        }
        // Serialising a map of strings cannot fail.
        let header_json = serde_json::to_vec(&header).unwrap_or_default();
        let mut text = String::with_capacity(
            b64::encoded_len(header_json.len()) + b64::encoded_len(payload.len()) + 2 + 86,
        );
        b64::encode_to(&header_json, &mut text);
        text.push('.');
        b64::encode_to(&payload, &mut text);
        let signature = key.sign(text.as_bytes()).to_bytes().to_vec();
        text.push('.');
        b64::encode_to(&signature, &mut text);
        Self {
            text,
            alg: Alg::EdDSA,
            header,
            payload,
            signature,
        }
    }

    /// Appends the base64url of the protected header [`Jws::sign_eddsa`]
    /// makes for `typ` and `kid` to `out`, written as text (not built as
    /// a map; its members in the order that map keeps them): the same for
    /// every credential of one issuer, so made once.
    pub(crate) fn eddsa_header(typ: Option<&str>, kid: Option<&str>, out: &mut String) {
        use crate::sd_jwt::{map_sorts_keys, write_json_str};
        // The members in the order `sign_eddsa`'s header map keeps them.
        let mut header = String::with_capacity(64 + kid.map_or(0, str::len));
        header.push_str("{\"alg\":\"EdDSA\"");
        let typ = typ.map(|t| ("typ", t));
        let kid = kid.map(|k| ("kid", k));
        let (one, two) = if map_sorts_keys() {
            (kid, typ)
        } else {
            (typ, kid)
        };
        for (name, value) in [one, two].into_iter().flatten() {
            header.push_str(",\"");
            header.push_str(name);
            header.push_str("\":");
            write_json_str(value, &mut header);
        }
        header.push('}');
        b64::encode_to(header.as_bytes(), out);
    }

    /// Writes `<header>.<payload>.<signature>` into `out` (emptied first),
    /// `header` the base64url of the protected header
    /// ([`Jws::eddsa_header`]), with room for `extra` more bytes after it
    /// (an SD-JWT's disclosures): the signature covers the text's own
    /// prefix, so nothing is copied. The same text as
    /// `sign_eddsa(..).as_str()`.
    pub(crate) fn sign_eddsa_compact_into(
        header: &str,
        payload: &[u8],
        key: &SigningKey,
        extra: usize,
        out: &mut String,
    ) {
        out.clear();
        out.reserve(header.len() + b64::encoded_len(payload.len()) + 2 + 86 + extra);
        out.push_str(header);
        out.push('.');
        b64::encode_to(payload, out);
        let signature = key.sign(out.as_bytes()).to_bytes();
        out.push('.');
        b64::encode_to(signature, out);
    }

    /// The exact compact serialisation.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The signature algorithm.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The protected header.
    pub fn header(&self) -> &Map<String, Value> {
        &self.header
    }

    /// A string header parameter.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    /// The decoded payload bytes.
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The decoded signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// `header.payload`, the bytes the signature covers.
    pub fn signing_input(&self) -> &[u8] {
        let end = self.text.rfind('.').unwrap_or(self.text.len());
        &self.text.as_bytes()[..end]
    }

    /// Verifies the signature with `key`.
    ///
    /// # Errors
    /// [`SignatureError`] when the key does not suit the algorithm or the
    /// signature does not verify.
    pub fn verify(&self, key: &PublicKey) -> Result<(), SignatureError> {
        key.verify(self.alg, self.signing_input(), &self.signature)
    }
}

/// A JSON object member name that occurs twice in the same object.
///
/// RFC 7515 §4 and RFC 7519 §4 let a parser reject such input, and Vouch
/// does: serde_json keeps the last value, another parser may keep the first,
/// and two parsers that read one signed text differently are a way around
/// the signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("member name {name:?} occurs twice in one JSON object (byte {at})")]
pub struct DuplicateMember {
    /// The repeated name, unescaped.
    pub name: String,
    /// Byte offset of a later occurrence.
    pub at: usize,
}

/// Checks that no object in the JSON text `json` repeats a member name,
/// comparing names after unescaping (`"a"` and `"\u0061"` are the same
/// name).
///
/// Meant for text serde_json has already accepted (which bounds its nesting
/// to 128 levels): one pass over the bytes, no hashing; each object's names
/// are compared pairwise when it has at most 16, else sorted (so a huge
/// object costs n log n, not n²). On text that is not JSON it never panics,
/// but its answer means nothing.
///
/// # Errors
/// [`DuplicateMember`] naming a repeated name and where it repeats.
pub fn check_unique_members(json: &[u8]) -> Result<(), DuplicateMember> {
    // Names of the open objects, outermost first, with their byte offsets.
    let mut names: Vec<(usize, Cow<'_, [u8]>)> = Vec::new();
    // Open containers: for an object, where its names start in `names`;
    // `None` for an array.
    let mut open: Vec<Option<usize>> = Vec::new();
    let mut expect_name = false;
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        match b {
            b'{' => {
                open.push(Some(names.len()));
                expect_name = true;
            }
            b'[' => {
                open.push(None);
                expect_name = false;
            }
            b'}' | b']' => {
                if let Some(Some(first)) = open.pop() {
                    if let Some(members) = names.get_mut(first..) {
                        check_object(members)?;
                    }
                    names.truncate(first);
                }
                expect_name = false;
            }
            b',' => expect_name = matches!(open.last(), Some(Some(_))),
            b'"' => {
                let start = i;
                let mut escaped = false;
                i += 1;
                while let Some(&c) = json.get(i) {
                    match c {
                        b'\\' => {
                            escaped = true;
                            i += 2;
                        }
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                if expect_name && matches!(open.last(), Some(Some(_))) {
                    let raw = json.get(start + 1..i).unwrap_or_default();
                    let name: Cow<'_, [u8]> = if escaped {
                        match json
                            .get(start..=i)
                            .and_then(|quoted| serde_json::from_slice::<String>(quoted).ok())
                        {
                            Some(unescaped) => Cow::Owned(unescaped.into_bytes()),
                            None => Cow::Borrowed(raw),
                        }
                    } else {
                        Cow::Borrowed(raw)
                    };
                    names.push((start, name));
                }
                expect_name = false;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Checks one object's member names (with their offsets) for repeats.
fn check_object(members: &mut [(usize, Cow<'_, [u8]>)]) -> Result<(), DuplicateMember> {
    let repeated = |(at, name): &(usize, Cow<'_, [u8]>)| DuplicateMember {
        name: String::from_utf8_lossy(name).into_owned(),
        at: *at,
    };
    if members.len() <= 16 {
        for (i, member) in members.iter().enumerate() {
            if members[..i].iter().any(|(_, name)| *name == member.1) {
                return Err(repeated(member));
            }
        }
        return Ok(());
    }
    members.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
    match members.windows(2).find(|pair| pair[0].1 == pair[1].1) {
        Some(pair) => Err(repeated(&pair[1])),
        None => Ok(()),
    }
}

/// Why JSON text is not an object with unique member names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonObjectError {
    /// Not JSON, or JSON but not an object.
    #[error("{}", json_problem(*.category, *.line, *.column))]
    Json {
        /// What serde_json found: a syntax error, the end of the text, or
        /// valid JSON of another type (`Data`).
        category: serde_json::error::Category,
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
    },
    /// An object in it repeats a member name.
    #[error("{0}")]
    DuplicateMember(#[from] DuplicateMember),
}

fn json_problem(category: serde_json::error::Category, line: usize, column: usize) -> String {
    use serde_json::error::Category;
    let what = match category {
        Category::Data => "JSON, but not an object",
        Category::Eof => "JSON that ends too early",
        Category::Syntax | Category::Io => "not JSON",
    };
    format!("{what} (line {line}, column {column})")
}

/// Parses outside JSON text that must be an object, refusing repeated member
/// names anywhere in it ([`check_unique_members`]).
///
/// # Errors
/// [`JsonObjectError`] saying why it is not JSON, not an object, or
/// repeats a name.
pub fn parse_json_object(json: &[u8]) -> Result<Map<String, Value>, JsonObjectError> {
    let object: Map<String, Value> =
        serde_json::from_slice(json).map_err(|e| JsonObjectError::Json {
            category: e.classify(),
            line: e.line(),
            column: e.column(),
        })?;
    check_unique_members(json)?;
    Ok(object)
}

/// A signature that does not verify, or a key that cannot verify it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The key type does not match the JWS algorithm.
    #[error("a {key} key cannot verify an {alg} signature")]
    KeyMismatch {
        /// The key type.
        key: &'static str,
        /// The JWS algorithm.
        alg: &'static str,
    },
    /// The signature is wrong.
    #[error("signature does not verify")]
    Invalid,
}

/// A public key that verifies JWS signatures.
#[derive(Debug, Clone, PartialEq)]
pub enum PublicKey {
    /// Ed25519.
    Ed25519(VerifyingKey),
    /// P-256, kept as a JWK for ssi's ES256 verifier.
    P256(Box<JWK>),
}

/// A JWK that is not a usable public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unusable public JWK: {0}")]
pub struct JwkError(pub String);

impl PublicKey {
    /// Reads a public JWK (`OKP`/`Ed25519` or `EC`/`P-256`).
    ///
    /// # Errors
    /// [`JwkError`] for other key types, private keys, or bad key bytes.
    pub fn from_jwk(value: &Value) -> Result<Self, JwkError> {
        let obj = value
            .as_object()
            .ok_or_else(|| JwkError("not a JSON object".into()))?;
        if obj.contains_key("d") {
            return Err(JwkError("contains a private key".into()));
        }
        match (
            obj.get("kty").and_then(Value::as_str),
            obj.get("crv").and_then(Value::as_str),
        ) {
            (Some("OKP"), Some("Ed25519")) => {
                let x = obj
                    .get("x")
                    .and_then(Value::as_str)
                    .ok_or_else(|| JwkError("no x".into()))?;
                let x = b64::decode_array::<32>(x).map_err(|e| JwkError(e.to_string()))?;
                let key = VerifyingKey::from_bytes(&x)
                    .map_err(|_| JwkError("x is not an Ed25519 point".into()))?;
                if key.is_weak() {
                    return Err(JwkError("Ed25519 key of small order".into()));
                }
                Ok(PublicKey::Ed25519(key))
            }
            (Some("EC"), Some("P-256")) => {
                let jwk: JWK =
                    serde_json::from_value(value.clone()).map_err(|e| JwkError(e.to_string()))?;
                match &jwk.params {
                    Params::EC(ec) if ec.x_coordinate.is_some() && ec.y_coordinate.is_some() => {}
                    _ => return Err(JwkError("EC key without x and y".into())),
                }
                Ok(PublicKey::P256(Box::new(jwk)))
            }
            (kty, crv) => Err(JwkError(format!(
                "unsupported key type kty={:?} crv={:?}",
                kty.unwrap_or(""),
                crv.unwrap_or("")
            ))),
        }
    }

    /// The key as a public JWK value.
    pub fn to_jwk(&self) -> Value {
        match self {
            PublicKey::Ed25519(key) => serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "x": b64::encode(key.as_bytes())
            }),
            PublicKey::P256(jwk) => serde_json::to_value(jwk.to_public()).unwrap_or(Value::Null),
        }
    }

    /// Verifies `signature` over `input` under `alg`.
    ///
    /// # Errors
    /// [`SignatureError`] when the key does not suit `alg` or the signature
    /// does not verify.
    pub fn verify(&self, alg: Alg, input: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
        match (self, alg) {
            (PublicKey::Ed25519(key), Alg::EdDSA) => {
                crate::ed25519::verify(key, &[input], signature)
                    .map_err(|_| SignatureError::Invalid)
            }
            (PublicKey::P256(jwk), Alg::ES256) => {
                ssi_jws::verify_bytes(SsiAlgorithm::ES256, input, jwk, signature)
                    .map_err(|_| SignatureError::Invalid)
            }
            (PublicKey::Ed25519(_), alg) => Err(SignatureError::KeyMismatch {
                key: "Ed25519",
                alg: alg.as_str(),
            }),
            (PublicKey::P256(_), alg) => Err(SignatureError::KeyMismatch {
                key: "P-256",
                alg: alg.as_str(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn sign_parse_verify_round_trip() {
        let jws = Jws::sign_eddsa(br#"{"a":1}"#, Some("kb+jwt"), None, &key());
        let parsed = Jws::parse(jws.as_str()).unwrap();
        assert_eq!(parsed, jws);
        assert_eq!(parsed.header_str("typ"), Some("kb+jwt"));
        parsed
            .verify(&PublicKey::Ed25519(key().verifying_key()))
            .unwrap();
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert_eq!(
            parsed.verify(&PublicKey::Ed25519(other)),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn broken_input() {
        assert_eq!(Jws::parse("a.b"), Err(JwsError::Parts(2)));
        assert_eq!(Jws::parse("a.b.c.d"), Err(JwsError::Parts(4)));
        assert!(matches!(
            Jws::parse("e30.e30.AA="),
            Err(JwsError::Base64 { part: "signature" })
        ));
        assert!(matches!(Jws::parse("W10.e30.AA"), Err(JwsError::Header(_))));
        // {"alg":"none"}
        assert!(
            matches!(Jws::parse("eyJhbGciOiJub25lIn0.e30."), Err(JwsError::Alg(a)) if a == "none")
        );
        // {"alg":"EdDSA","crit":["x"]}
        let h = b64::encode(r#"{"alg":"EdDSA","crit":["x"]}"#);
        assert_eq!(Jws::parse(&format!("{h}.e30.AA")), Err(JwsError::Crit));
    }

    #[test]
    fn jwk_rejects_private_and_unknown_keys() {
        assert!(PublicKey::from_jwk(
            &serde_json::json!({"kty":"OKP","crv":"Ed25519","x":"AA","d":"AA"})
        )
        .is_err());
        assert!(
            PublicKey::from_jwk(&serde_json::json!({"kty":"RSA","n":"AA","e":"AQAB"})).is_err()
        );
        assert!(PublicKey::from_jwk(&serde_json::json!("x")).is_err());
        let good = PublicKey::Ed25519(key().verifying_key());
        assert_eq!(PublicKey::from_jwk(&good.to_jwk()).unwrap(), good);
    }
}

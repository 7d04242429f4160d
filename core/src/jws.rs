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
    match scan_member_names(json, false) {
        Ok(()) => Ok(()),
        Err(MemberNameError::Duplicate(e)) => Err(e),
        // Never: the scan looks for them only when asked to.
        Err(MemberNameError::Private(_)) => Ok(()),
    }
}

/// What [`check_member_names`] refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberNameError {
    /// An object repeats a member name.
    Duplicate(DuplicateMember),
    /// A member name is one of serde_json's own.
    Private(PrivateMember),
}

/// A member name serde_json keeps for itself (it begins
/// `$serde_json::private::`): serde_json's `Value` reads an object whose
/// first name is `$serde_json::private::Number` as a number and, built with
/// `raw_value`, one whose first name is `$serde_json::private::RawValue`
/// as the JSON text of its string, where other implementations read an
/// object. What such a name means would depend on how serde_json is
/// built, and a repeat inside the raw value's text would pass unseen, so
/// it is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("member name {name:?} (byte {at}) is one serde_json keeps for itself")]
pub struct PrivateMember {
    /// The name, unescaped.
    pub name: String,
    /// Byte offset of the name.
    pub at: usize,
}

/// [`check_unique_members`], and also no member name of serde_json's own
/// ([`PrivateMember`]): the first of either met in the text (a repeat is
/// met where its object ends, a private name where it is).
///
/// # Errors
/// [`MemberNameError`] naming the name and where it is.
pub fn check_member_names(json: &[u8]) -> Result<(), MemberNameError> {
    scan_member_names(json, true)
}

/// Whether a member name of serde_json's own may be in `json`: one can only
/// be spelled with a `$` or with an escape (`\u0024`).
pub(crate) fn may_hold_private_names(json: &[u8]) -> bool {
    // `contains` of a byte is std's word-at-a-time search: two of them
    // cost less than one byte-by-byte pass.
    json.contains(&b'$') || json.contains(&b'\\')
}

/// The scan of [`check_unique_members`] and [`check_member_names`]:
/// repeats, and private names when `private`.
fn scan_member_names(json: &[u8], private: bool) -> Result<(), MemberNameError> {
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
                        check_object(members).map_err(MemberNameError::Duplicate)?;
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
                    if private && name.starts_with(PRIVATE_TOKEN_START.as_bytes()) {
                        return Err(MemberNameError::Private(PrivateMember {
                            name: String::from_utf8_lossy(&name).into_owned(),
                            at: start,
                        }));
                    }
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
    /// A member name in it is one of serde_json's own.
    #[error("{0}")]
    PrivateMember(#[from] PrivateMember),
}

impl From<MemberNameError> for JsonObjectError {
    fn from(e: MemberNameError) -> Self {
        match e {
            MemberNameError::Duplicate(e) => JsonObjectError::DuplicateMember(e),
            MemberNameError::Private(e) => JsonObjectError::PrivateMember(e),
        }
    }
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
/// names anywhere in it ([`check_unique_members`]), and member names of
/// serde_json's own ([`PrivateMember`]).
///
/// One pass: each object is built once, at its size, and a name it
/// already holds is a repeat. Only then is the text read again the
/// general way (parsed, then scanned), so the error is exactly the one
/// parsing and then scanning gives: a syntax error later in the text
/// comes first, and the repeat named is the one the scan names.
///
/// # Errors
/// [`JsonObjectError`] saying why it is not JSON, not an object, repeats
/// a name or holds a name of serde_json's own.
pub fn parse_json_object(json: &[u8]) -> Result<Map<String, Value>, JsonObjectError> {
    match read_unique(json, Top::Object) {
        Ok(Some(Value::Object(object))) => {
            // The read saw no repeat, and left any private name other than
            // the number token (read as a number) to the general way.
            if may_hold_private_names(json) {
                check_member_names(json)?;
            }
            return Ok(object);
        }
        Err(e) => return Err(json_error(&e)),
        // A repeat, a name of serde_json's own (or, which `Top::Object`
        // never gives, a non-object): the general way says what it is.
        Ok(Some(_) | None) => {}
    }
    let object: Map<String, Value> = serde_json::from_slice(json).map_err(|e| json_error(&e))?;
    check_member_names(json)?;
    Ok(object)
}

fn json_error(e: &serde_json::Error) -> JsonObjectError {
    JsonObjectError::Json {
        category: e.classify(),
        line: e.line(),
        column: e.column(),
    }
}

/// What the text read by [`read_unique`] must hold at its top.
#[derive(Clone, Copy)]
pub(crate) enum Top {
    /// An object, read as `serde_json` reads a `Map<String, Value>`.
    Object,
    /// Any value, read as `serde_json` reads a `Value`.
    Value,
}

/// Reads JSON text as `serde_json::from_slice` reads a `Value` (or, for
/// [`Top::Object`], a `Map<String, Value>`), the same value and the same
/// errors, except that an object repeating a member name (after
/// unescaping), or a member name that is one of serde_json's private
/// tokens ([`PRIVATE_TOKEN_START`]; serde_json's features decide what its
/// `Value` makes of those), stops the read: `Ok(None)`. Then nothing is
/// known of the rest of the text, and the caller reads it the general way.
///
/// serde_json's bounds hold (nesting of at most 128 containers); each
/// object and array is made once at its size from room one read shares.
///
/// # Errors
/// serde_json's error for text that is not JSON, or not an object for
/// [`Top::Object`], met before any repeated name.
pub(crate) fn read_unique(json: &[u8], top: Top) -> Result<Option<Value>, serde_json::Error> {
    use serde::de::{DeserializeSeed as _, Deserializer as _};
    let mut scratch = Scratch::default();
    let mut de = serde_json::Deserializer::from_slice(json);
    let read = match top {
        Top::Object => de.deserialize_map(Unique {
            scratch: &mut scratch,
            plain_map: true,
        }),
        Top::Value => Unique {
            scratch: &mut scratch,
            plain_map: false,
        }
        .deserialize(&mut de),
    };
    if scratch.stopped {
        return Ok(None);
    }
    let value = read?;
    de.end()?;
    Ok(Some(value))
}

/// The map key through which serde_json, built with `arbitrary_precision`
/// (as this workspace builds it), hands a number's text to a `Value`:
/// its `Value` reads an object whose first name is this as that number.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// What serde_json's other private map keys begin with: built with
/// `raw_value` (as the verifier's binary builds it, through axum and
/// josekit), its `Value` reads an object whose first name is
/// `$serde_json::private::RawValue` as the JSON text of its string. A read
/// that meets a name with this beginning (other than [`NUMBER_TOKEN`],
/// read as serde_json reads it) leaves the text to serde_json, so the value
/// is serde_json's whatever features it is built with.
pub(crate) const PRIVATE_TOKEN_START: &str = "$serde_json::private::";

/// Members (or items) [`Scratch`] makes room for when first used: a JWS
/// header, a disclosure and most objects of a credential fit without
/// regrowing it.
const SCRATCH_ROOM: usize = 16;

/// Room the levels of one [`read_unique`] share: the members and items of
/// the containers open, so each is made once at its final size.
#[derive(Default)]
struct Scratch {
    members: Vec<(String, Value)>,
    items: Vec<Value>,
    /// Set when the read stops to leave the text to the general way
    /// ([`Unique::general_way`]): an object repeated a member name, or a
    /// name is one of serde_json's private tokens ([`PRIVATE_TOKEN_START`]).
    stopped: bool,
}

/// Reads one value as serde_json's `Value` does, into [`Scratch`].
struct Unique<'s> {
    scratch: &'s mut Scratch,
    /// The top-level object read as a `Map` (no number token).
    plain_map: bool,
}

impl Unique<'_> {
    fn below(&mut self) -> Unique<'_> {
        Unique {
            scratch: self.scratch,
            plain_map: false,
        }
    }

    /// Stops the read: the text is read the general way.
    fn general_way<E: serde::de::Error>(&mut self) -> E {
        self.scratch.stopped = true;
        E::custom("a member name repeats, or is one of serde_json's own")
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Unique<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Unique<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(if self.plain_map {
            "a map"
        } else {
            "any valid JSON value"
        })
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        serde::de::DeserializeSeed::deserialize(self, deserializer)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        if self.scratch.items.capacity() == 0 {
            self.scratch.items.reserve(SCRATCH_ROOM);
        }
        let start = self.scratch.items.len();
        while let Some(item) = seq.next_element_seed(self.below())? {
            self.scratch.items.push(item);
        }
        if start == 0 {
            // The outermost array open: its items are the whole scratch,
            // taken as they are (not copied, which would hold a huge one
            // twice).
            return Ok(Value::Array(std::mem::take(&mut self.scratch.items)));
        }
        Ok(Value::Array(self.scratch.items.drain(start..).collect()))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let names = Name {
            number: !self.plain_map,
        };
        let first = match map.next_key_seed(names)? {
            None => return Ok(Value::Object(Map::new())),
            // As serde_json's `Value` reads it: the number's text, parsed.
            Some(NameOr::Number) => return map.next_value_seed(NumberText).map(Value::Number),
            Some(NameOr::Name(name)) => name,
        };
        if first.starts_with(PRIVATE_TOKEN_START) {
            return Err(self.general_way());
        }
        if self.scratch.members.capacity() == 0 {
            self.scratch.members.reserve(SCRATCH_ROOM);
        }
        let start = self.scratch.members.len();
        let value = map.next_value_seed(self.below())?;
        self.scratch.members.push((first, value));
        // serde_json's `Value` looks for the number token in the first name
        // only.
        while let Some(name) = map.next_key::<String>()? {
            if name.starts_with(PRIVATE_TOKEN_START) {
                return Err(self.general_way());
            }
            let value = map.next_value_seed(self.below())?;
            self.scratch.members.push((name, value));
        }
        let members = &mut self.scratch.members;
        let mut object = Map::with_capacity(members.len() - start);
        let mut repeat = false;
        for (name, value) in members.drain(start..) {
            repeat |= object.insert(name, value).is_some();
        }
        if repeat {
            return Err(self.general_way());
        }
        Ok(Value::Object(object))
    }
}

/// A member name, or (where serde_json's `Value` would see one) the
/// number token.
enum NameOr {
    Name(String),
    Number,
}

/// Reads a member name as serde_json's `Value` does: the number token
/// is taken as a number only where `number` says (inside a `Value`, not
/// as a name of the top-level `Map`), and never copied.
#[derive(Clone, Copy)]
struct Name {
    number: bool,
}

impl<'de> serde::de::DeserializeSeed<'de> for Name {
    type Value = NameOr;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<NameOr, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for Name {
    type Value = NameOr;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a string key")
    }

    fn visit_str<E>(self, name: &str) -> Result<NameOr, E> {
        Ok(if self.number && name == NUMBER_TOKEN {
            NameOr::Number
        } else {
            NameOr::Name(name.to_owned())
        })
    }

    fn visit_string<E>(self, name: String) -> Result<NameOr, E> {
        Ok(if self.number && name == NUMBER_TOKEN {
            NameOr::Number
        } else {
            NameOr::Name(name)
        })
    }
}

/// A number's text, parsed as serde_json's `Value` parses it.
struct NumberText;

impl<'de> serde::de::DeserializeSeed<'de> for NumberText {
    type Value = serde_json::Number;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<serde_json::Number, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for NumberText {
    type Value = serde_json::Number;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("string containing a number")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<serde_json::Number, E> {
        text.parse().map_err(E::custom)
    }
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

    /// What `parse_json_object` gave before it read in one pass (parse,
    /// then scan for repeated names), names of serde_json's own refused
    /// too.
    fn parse_then_scan(json: &[u8]) -> Result<Map<String, Value>, JsonObjectError> {
        let object: Map<String, Value> =
            serde_json::from_slice(json).map_err(|e| json_error(&e))?;
        check_member_names(json)?;
        Ok(object)
    }

    /// Member names of serde_json's own are refused, wherever they are
    /// and however they are spelled, in a JSON object and in a disclosure;
    /// the same text as a value, or a name that only looks like one, is
    /// not.
    #[test]
    fn fail_member_names_of_serde_json_s_own() {
        use crate::sd_jwt::{Disclosure, DisclosureError};
        let raw = "$serde_json::private::RawValue";
        let number = "$serde_json::private::Number";
        let refused = [
            (format!(r#"{{"{raw}":"[1]"}}"#), raw),
            (format!(r#"{{"x":{{"{raw}":"\"Alice\""}}}}"#), raw),
            (format!(r#"{{"x":{{"{raw}":"{{\"b\":1,\"b\":2}}"}}}}"#), raw),
            // serde_json reads this one as the number 5.
            (format!(r#"{{"x":{{"{number}":"5"}}}}"#), number),
            (format!(r#"{{"x":{{"y":1,"{number}":"5"}}}}"#), number),
            (
                r#"{"x":[{"a":1,"\u0024serde_json::private::Other":2}]}"#.to_owned(),
                "$serde_json::private::Other",
            ),
        ];
        for (text, name) in &refused {
            let e = parse_json_object(text.as_bytes()).unwrap_err();
            assert!(
                matches!(&e, JsonObjectError::PrivateMember(p) if p.name == *name),
                "{text}: {e}"
            );
            assert!(e.to_string().contains("serde_json keeps for itself"), "{e}");
            let disclosure = format!(r#"["salt","claim",{text}]"#);
            assert!(
                matches!(
                    Disclosure::parse(&crate::b64::encode(&disclosure)),
                    Err(DisclosureError::PrivateMember(p)) if p.name == *name
                ),
                "{disclosure}"
            );
        }
        // Escaped inside the name; where it is (the name's opening quote).
        let e = parse_json_object(br#"{"x":{"$serde_json\u003a:private::X":1}}"#).unwrap_err();
        assert!(
            matches!(&e, JsonObjectError::PrivateMember(p)
            if p.name == "$serde_json::private::X" && p.at == 6),
            "{e:?}"
        );
        // With repeats, the first met in the text: a repeat where its
        // object ends, a private name where it is.
        assert!(matches!(
            parse_json_object(br#"{"x":{"a":1,"a":2},"$serde_json::private::X":1}"#),
            Err(JsonObjectError::DuplicateMember(_))
        ));
        assert!(matches!(
            parse_json_object(br#"{"a":1,"a":2,"$serde_json::private::X":1}"#),
            Err(JsonObjectError::PrivateMember(_))
        ));
        for text in [
            format!(r#"{{"a":"{raw}"}}"#),
            r#"{"$serde_json::private":1,"serde_json::private::Number":2}"#.to_owned(),
            r#"{"a":"\\ and $","$":{"\u0041":1}}"#.to_owned(),
        ] {
            assert!(parse_json_object(text.as_bytes()).is_ok(), "{text}");
            let disclosure = format!(r#"["salt","claim",{text}]"#);
            assert!(
                Disclosure::parse(&crate::b64::encode(&disclosure)).is_ok(),
                "{disclosure}"
            );
        }
    }

    /// `read_unique`, compared with serde_json reading the same text.
    fn assert_reads_as_serde_json(json: &[u8]) {
        let shown = String::from_utf8_lossy(json);
        let value = serde_json::from_slice::<Value>(json);
        let map = serde_json::from_slice::<Map<String, Value>>(json);
        let unique = check_unique_members(json).is_ok();
        for (top, general) in [
            (Top::Value, value.map_err(|e| json_error(&e))),
            (
                Top::Object,
                map.map(Value::Object).map_err(|e| json_error(&e)),
            ),
        ] {
            match read_unique(json, top) {
                Ok(Some(read)) => {
                    assert_eq!(Ok(read), general, "{shown}");
                    // Text that read through had no repeat (a repeat in text
                    // serde_json refuses is not looked for).
                    assert!(unique, "{shown}");
                }
                // A repeat, or a name of serde_json's own, stops the read;
                // the caller reads the text again.
                Ok(None) => assert!(
                    !unique || shown.contains("serde_json::private::"),
                    "{shown}"
                ),
                Err(e) => assert_eq!(Err(json_error(&e)), general, "{shown}"),
            }
        }
        assert_eq!(parse_json_object(json), parse_then_scan(json), "{shown}");
    }

    #[test]
    fn one_pass_reads_what_serde_json_reads_with_the_same_errors() {
        let deep_array = format!("{}{}", "[".repeat(130), "]".repeat(130));
        let deep_object = format!("{}1{}", r#"{"a":"#.repeat(130), "}".repeat(130));
        let wide: String = (0..40).map(|i| format!(r#""m{i}":{i},"#)).collect();
        let texts: Vec<String> = vec![
            r#"{}"#.into(),
            r#"[]"#.into(),
            r#"{"a":1,"b":[1,-2,3.5,1e400,-0,12345678901234567890123,true,false,null],"c":{"d":"\u00e9\n"}}"#.into(),
            r#"  {"iss":"did:key:z6Mk","iat":1700000000,"cnf":{"jwk":{"kty":"OKP","crv":"Ed25519","x":"AA"}},"_sd":["x","y"]}  "#.into(),
            r#"["salt","name",{"nested":[{"...":"d"},[[]],{}]}]"#.into(),
            r#""a string""#.into(),
            r#"17"#.into(),
            r#"-1.5e3"#.into(),
            r#"null"#.into(),
            // The number token serde_json's `Value` reads as a number, as a
            // first name, as a later one, and at the top.
            r#"{"a":{"$serde_json::private::Number":"12"}}"#.into(),
            r#"{"a":{"$serde_json::private::Number":"x"}}"#.into(),
            r#"{"a":{"$serde_json::private::Number":12}}"#.into(),
            r#"{"a":{"b":1,"$serde_json::private::Number":"12"}}"#.into(),
            r#"{"$serde_json::private::Number":"12"}"#.into(),
            // serde_json's raw-value token (read as the JSON text of its
            // string when serde_json is built with `raw_value`, as the
            // workspace's binaries build it; a plain name when not), first
            // or later, valid, trailing a member, not JSON, hiding a repeat;
            // and another name of that family.
            r#"{"x":{"$serde_json::private::RawValue":"[1,2]"}}"#.into(),
            r#"{"x":{"$serde_json::private::RawValue":"1","y":2}}"#.into(),
            r#"{"x":{"$serde_json::private::RawValue":"x"}}"#.into(),
            r#"{"x":{"y":2,"$serde_json::private::RawValue":"[1]"}}"#.into(),
            r#"{"cnf":{"$serde_json::private::RawValue":"{\"jwk\":1,\"jwk\":2}"}}"#.into(),
            r#"{"x":{"\u0024serde_json::private::RawValue":"[3]"}}"#.into(),
            r#"{"x":{"$serde_json::private::Other":1}}"#.into(),
            r#"{"$serde_json::private::RawValue":"[1,2]"}"#.into(),
            // Repeats: plain, escaped, nested, in a wide object, with a
            // syntax error after them, and inner before outer.
            r#"{"a":1,"a":2}"#.into(),
            r#"{"a":1,"\u0061":2}"#.into(),
            r#"{"x":[{"b":1,"b":2}]}"#.into(),
            format!(r#"{{{wide}"m7":0}}"#),
            r#"{"a":1,"a":2,"b":"#.into(),
            r#"{"a":1,"a":2,"b":{"c":1,"c":2}}"#.into(),
            r#"{"a":1,"a":{"c":1,"c":2}}"#.into(),
            r#"[{"a":1,"a":2},]"#.into(),
            r#"{"a":{},"b":{},"a":[]}"#.into(),
            // Not JSON, or not an object.
            String::new(),
            r#"{"a":1,}"#.into(),
            r#"{"a":1}x"#.into(),
            r#"{"a" 1}"#.into(),
            r#"{1:2}"#.into(),
            r#"{"a":[1,2}"#.into(),
            r#"{"a":"\x"}"#.into(),
            r#"{"a":01}"#.into(),
            deep_array,
            deep_object,
        ];
        for text in &texts {
            assert_reads_as_serde_json(text.as_bytes());
        }
        // Lone surrogates in a name; a repeat, then nesting past
        // serde_json's limit; a repeat nested in a wide object.
        assert_reads_as_serde_json(br#"{"\ud800":1}"#);
        assert_reads_as_serde_json(br#"{"\ud800":1,"\ud800":2}"#);
        assert_reads_as_serde_json(format!(r#"[{{"a":1,"a":2}},{}"#, "[".repeat(130)).as_bytes());
        let wide: String = (0..20).map(|i| format!(r#""m{i}":{i},"#)).collect();
        assert_reads_as_serde_json(format!(r#"{{{wide}"in":{{"b":1,"b":2}}}}"#).as_bytes());
        // Invalid UTF-8 in a string and in a name.
        assert_reads_as_serde_json(b"{\"a\":\"\xff\"}");
        assert_reads_as_serde_json(b"{\"\xff\":1,\"\xff\":2}");
    }

    #[test]
    fn one_pass_agrees_with_parse_then_scan_on_every_damaged_text() {
        let text = br#"{"iss":"did:key:z6Mk","n":[1,2.5,{"a":true,"b":null}],"cnf":{"jwk":{"x":"AA","x2":"\u0041"}},"_sd":["p","q"],"s":"\"y\""}"#;
        for cut in 0..=text.len() {
            assert_reads_as_serde_json(&text[..cut]);
        }
        for at in 0..text.len() {
            for byte in *br#"{}[]",:1a\x "# {
                let mut damaged = text.to_vec();
                damaged[at] = byte;
                assert_reads_as_serde_json(&damaged);
            }
        }
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

//! Disclosures: salted claims and array elements, their encoding and digest.

use rand_core::{CryptoRng, RngCore};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::b64::{self, Base64Error};
use crate::jws::{
    check_member_names, may_hold_private_names, read_unique, DuplicateMember, MemberNameError,
    PrivateMember, Top,
};

use super::MAX_DEPTH;

/// Why a string is not an encoded disclosure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DisclosureError {
    /// Not base64url of a JSON array of a salt string and a claim (name
    /// string and value) or of a salt string and an array element.
    #[error(
        "not base64url of a JSON array [salt, name, value] or [salt, value] with string salt and name"
    )]
    Shape,
    /// Base64url of text that is not JSON.
    #[error("not JSON (line {line}, column {column})")]
    Json {
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
    },
    /// Not canonical unpadded base64url.
    #[error("{0}")]
    Base64(#[from] Base64Error),
    /// An object in it repeats a member name.
    #[error("{0}")]
    DuplicateMember(#[from] DuplicateMember),
    /// A member name in it is one of serde_json's own.
    #[error("{0}")]
    PrivateMember(#[from] PrivateMember),
    /// Its value nests deeper than [`MAX_DEPTH`].
    #[error("its value nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl From<MemberNameError> for DisclosureError {
    fn from(e: MemberNameError) -> Self {
        match e {
            MemberNameError::Duplicate(e) => DisclosureError::DuplicateMember(e),
            MemberNameError::Private(e) => DisclosureError::PrivateMember(e),
        }
    }
}

/// A disclosure: a salted claim (`[salt, name, value]`) or array element
/// (`[salt, value]`), with its digest.
#[derive(Debug, Clone, PartialEq)]
pub struct Disclosure {
    pub(super) encoded: String,
    pub(super) digest: String,
    pub(super) salt: String,
    pub(super) name: Option<String>,
    pub(super) value: Value,
}

impl Disclosure {
    /// A new disclosure with a 128-bit random salt.
    ///
    /// The encoding is the compact JSON array `[salt, name, value]` (or
    /// `[salt, value]`), byte for byte what ssi's `DisclosureBuf` produces
    /// (a unit test holds us to that), serialised without cloning the value.
    pub fn new(name: Option<String>, value: Value, rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let salt = b64::encode(salt);
        let mut json = String::with_capacity(256);
        json.push('[');
        write_json_str(&salt, &mut json);
        json.push(',');
        if let Some(name) = &name {
            write_json_str(name, &mut json);
            json.push(',');
        }
        write_json(&value, &mut json);
        json.push(']');
        let encoded = b64::encode(json);
        let digest = digest(encoded.as_bytes());
        Self {
            encoded,
            digest,
            salt,
            name,
            value,
        }
    }

    /// Parses an encoded disclosure.
    ///
    /// # Errors
    /// [`DisclosureError`] when it is not canonical base64url of a JSON
    /// array of a salt string and a claim (name string and value) or an
    /// array element, when an object in it repeats a member name, or when
    /// its value nests deeper than [`MAX_DEPTH`].
    pub fn parse(encoded: &str) -> Result<Self, DisclosureError> {
        // Decoded once, parsed once into the value that is kept: what ssi's
        // `DecodedDisclosure::new` accepts (strict unpadded base64url, a
        // JSON array of two or three elements, string salt and name), with
        // its errors, without its second copy of the value.
        // serde_json refuses more than 128 levels, so what is built here
        // stays shallow enough to walk and drop; the tighter bound is
        // checked before anything walks it.
        let json = b64::decode(encoded).map_err(|_| DisclosureError::Shape)?;
        Self::from_decoded(encoded.to_owned(), &json, None)
    }

    /// As [`Disclosure::parse`], for `encoded` whose decoded bytes `json`
    /// are already known (exactly what base64url-decoding it gives), and
    /// with its SHA-256 `digest` when that is known too (the QR envelope
    /// computed it over the same text). The same checks and errors as
    /// [`Disclosure::parse`] after decoding.
    pub(crate) fn from_decoded(
        encoded: String,
        json: &[u8],
        digest: Option<[u8; 32]>,
    ) -> Result<Self, DisclosureError> {
        let not_json = |e: serde_json::Error| DisclosureError::Json {
            line: e.line(),
            column: e.column(),
        };
        // One pass, refusing repeated member names as it goes; when a name
        // repeats, the text is read the general way, so every error comes
        // in the same order (not JSON, then the shape, then the repeat).
        let (array, repeated) = match read_unique(json, Top::Value).map_err(not_json)? {
            Some(array) => (array, false),
            None => (serde_json::from_slice(json).map_err(not_json)?, true),
        };
        let Value::Array(items) = array else {
            return Err(DisclosureError::Shape);
        };
        let mut items = items.into_iter();
        let (salt, name, value) = match (items.next(), items.next(), items.next(), items.next()) {
            (Some(Value::String(salt)), Some(Value::String(name)), Some(value), None) => {
                (salt, Some(name), value)
            }
            (Some(Value::String(salt)), Some(value), None, None) => (salt, None, value),
            _ => return Err(DisclosureError::Shape),
        };
        // Refuse what serde_json silently resolved (last member name wins),
        // and names of serde_json's own (the read left them to serde_json,
        // but for the number token, which it reads as a number).
        if repeated || may_hold_private_names(json) {
            check_member_names(json)?;
        }
        if nesting(&value) > MAX_DEPTH {
            return Err(DisclosureError::TooDeep);
        }
        let digest = match digest {
            Some(known) => {
                let carried = b64::encode(known);
                // Every test and fuzz run (debug builds) checks it.
                debug_assert_eq!(
                    carried,
                    self::digest(encoded.as_bytes()),
                    "a carried disclosure digest differs from its text's"
                );
                carried
            }
            None => self::digest(encoded.as_bytes()),
        };
        Ok(Self {
            encoded,
            digest,
            salt,
            name,
            value,
        })
    }

    /// The base64url text as it travels.
    pub fn as_str(&self) -> &str {
        &self.encoded
    }
    /// base64url(SHA-256(encoded)), as it appears in `_sd` or `...`.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// The salt.
    pub fn salt(&self) -> &str {
        &self.salt
    }
    /// The claim name, or `None` for an array element.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The claim value (possibly holding digests of nested disclosures).
    pub fn value(&self) -> &Value {
        &self.value
    }
}

/// base64url(SHA-256(bytes)).
pub fn digest(bytes: &[u8]) -> String {
    b64::encode(Sha256::digest(bytes))
}

/// Length of a digest as it appears in `_sd` or `...`: base64url of 32
/// bytes.
pub(super) const DIGEST_LEN: usize = 43;

/// base64url(SHA-256(bytes)) as bytes, without allocating.
pub(super) fn digest_bytes(bytes: &[u8]) -> [u8; DIGEST_LEN] {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let mut out = [0u8; DIGEST_LEN];
    // 32 bytes are always exactly 43 characters: the slice fits.
    let _ = URL_SAFE_NO_PAD.encode_slice(Sha256::digest(bytes), &mut out);
    out
}

/// Appends `s` as a JSON string, escaped byte for byte as `serde_json`
/// writes it (`"` and `\\`, the short escapes `\b \f \n \r \t`, other
/// control characters as `\u00xx`; everything else as it is), so what is
/// written here is identical to `serde_json`'s compact serialisation.
pub(crate) fn write_json_str(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push('"');
    // Most strings need no escape: copied whole.
    let Some(first) = escape_at(bytes) else {
        out.push_str(s);
        out.push('"');
        return;
    };
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // `b` is ASCII, so `i` is a character boundary.
        out.push_str(&s[start..i]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The position of the first byte a JSON string escapes (`"`, `\` or
/// below 0x20), looked for eight bytes at a time; `None` if there is none.
fn escape_at(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        let mut eight = [0u8; 8];
        eight.copy_from_slice(word);
        if needs_escape(u64::from_le_bytes(eight)) {
            break;
        }
        i += 8;
    }
    bytes[i..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map(|at| i + at)
}

/// Whether one of the eight bytes of `word` is `"`, `\` or below 0x20:
/// the bytes a JSON string escapes (exact: no byte of a word without them
/// is reported, every word with one is).
fn needs_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below n (n ≤ 0x80) sets its high bit here, and only then
    // does any byte's high bit get set.
    let below = |x: u64, n: u64| x.wrapping_sub(ONES * n) & !x & HIGH;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    (below(word, 0x20) | below(quote, 1) | below(backslash, 1)) != 0
}

/// Whether a `serde_json::Map` keeps its members sorted by key (the
/// default) rather than in insertion order (its `preserve_order` feature,
/// which any crate in a build can turn on for all). What is written as
/// text here must put members in the order a map would, to stay the bytes
/// `serde_json` writes.
pub(crate) fn map_sorts_keys() -> bool {
    static SORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SORTED.get_or_init(|| {
        let mut map = Map::new();
        map.insert("b".into(), Value::Null);
        map.insert("a".into(), Value::Null);
        map.keys().next().is_some_and(|k| k == "a")
    })
}

/// Appends `value` as compact JSON, identical to `serde_json::to_string`
/// (members in the map's order, numbers as `serde_json` prints them).
pub(crate) fn write_json(value: &Value, out: &mut String) {
    use std::fmt::Write as _;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        // Writing into a String cannot fail.
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_json_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(key, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

/// How many containers nest in `value` (a scalar is 0, `[]` is 1, `[[1]]`
/// is 2), counted up to [`NESTING_COUNTED`].
pub(super) fn nesting(value: &Value) -> usize {
    nesting_up_to(value, NESTING_COUNTED)
}

/// How far [`nesting`] counts: a value nesting deeper gives this. Every
/// caller compares with [`MAX_DEPTH`] (or `MAX_DEPTH + 1` after adding a
/// level), which this is beyond.
const NESTING_COUNTED: usize = MAX_DEPTH + 2;

/// The smaller of `value`'s nesting and `cap`: recursive (at most `cap`
/// deep, so the stack stays small whatever the value) and without
/// allocating.
fn nesting_up_to(value: &Value, cap: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    let deepest_of = |values: &mut dyn Iterator<Item = &Value>| {
        let mut deepest = 0;
        for value in values {
            deepest = deepest.max(nesting_up_to(value, cap - 1));
            if deepest == cap - 1 {
                break;
            }
        }
        1 + deepest
    };
    match value {
        Value::Array(items) => deepest_of(&mut items.iter()),
        Value::Object(map) => deepest_of(&mut map.values()),
        _ => 0,
    }
}

/// How many containers nest beneath the top of a claim set.
pub(super) fn claims_nesting(claims: &Map<String, Value>) -> usize {
    claims.values().map(nesting).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ssi_sd_jwt::{DecodedDisclosure, DisclosureBuf, DisclosureDescription};

    /// What parsing a disclosure gave before it read in one pass: the
    /// JSON, its shape, repeated names, then the depth.
    fn parse_then_scan(json: &[u8]) -> Result<(String, Option<String>, Value), DisclosureError> {
        let array: Value = serde_json::from_slice(json).map_err(|e| DisclosureError::Json {
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Array(items) = array else {
            return Err(DisclosureError::Shape);
        };
        let mut items = items.into_iter();
        let (salt, name, value) = match (items.next(), items.next(), items.next(), items.next()) {
            (Some(Value::String(salt)), Some(Value::String(name)), Some(value), None) => {
                (salt, Some(name), value)
            }
            (Some(Value::String(salt)), Some(value), None, None) => (salt, None, value),
            _ => return Err(DisclosureError::Shape),
        };
        check_member_names(json)?;
        // The old count, with no bound.
        let mut deepest = 0;
        let mut pending = vec![(&value, 1)];
        while let Some((value, level)) = pending.pop() {
            match value {
                Value::Array(items) => {
                    deepest = deepest.max(level);
                    pending.extend(items.iter().map(|v| (v, level + 1)));
                }
                Value::Object(map) => {
                    deepest = deepest.max(level);
                    pending.extend(map.values().map(|v| (v, level + 1)));
                }
                _ => {}
            }
        }
        if deepest > MAX_DEPTH {
            return Err(DisclosureError::TooDeep);
        }
        Ok((salt, name, value))
    }

    #[test]
    fn fail_a_broken_disclosure_gives_the_error_parsing_then_scanning_gives() {
        let deep = |n: usize| format!(r#"["s","n",{}1{}]"#, "[".repeat(n), "]".repeat(n));
        let texts = [
            r#"["s","n",{"a":1}]"#.to_owned(),
            r#"["s",{"a":[1,{"b":2}]}]"#.to_owned(),
            // A repeat alone; with a wrong shape (the shape is the error);
            // with a syntax error after it (that is the error).
            r#"["s","n",{"a":1,"a":2}]"#.to_owned(),
            r#"["s","n",{"a":1,"\u0061":2},4]"#.to_owned(),
            r#"[1,{"a":1,"a":2}]"#.to_owned(),
            r#"["s","n",{"a":1,"a":2}"#.to_owned(),
            r#"["s","n",{"a":1,"a":2}]x"#.to_owned(),
            // Repeats nested, and a name token of serde_json's.
            r#"["s","n",[{"b":{"c":1,"c":1}}]]"#.to_owned(),
            r#"["s","n",{"$serde_json::private::Number":"5"}]"#.to_owned(),
            // serde_json's raw-value token (what it is depends on
            // serde_json's features: the reading must not).
            r#"["s","n",{"$serde_json::private::RawValue":"[1]"}]"#.to_owned(),
            r#"["s","n",{"a":{"$serde_json::private::RawValue":"{\"b\":1,\"b\":2}"}}]"#.to_owned(),
            // Depth: at the limit, one beyond, beyond serde_json's own.
            deep(MAX_DEPTH),
            deep(MAX_DEPTH + 1),
            deep(MAX_DEPTH + 5),
            deep(200),
            r#"{"s":"n"}"#.to_owned(),
            r#"["s","n""#.to_owned(),
            String::new(),
        ];
        for text in &texts {
            let encoded = b64::encode(text);
            let parsed = Disclosure::parse(&encoded).map(|d| {
                (
                    d.salt().to_owned(),
                    d.name().map(str::to_owned),
                    d.value().clone(),
                )
            });
            assert_eq!(parsed, parse_then_scan(text.as_bytes()), "{text}");
        }
    }

    #[test]
    fn nesting_counts_to_its_cap_without_allocating_a_stack() {
        let nested = |n: usize| -> Value {
            serde_json::from_str(&format!("{}{}", "[".repeat(n), "]".repeat(n))).unwrap()
        };
        assert_eq!(nesting(&Value::from(1)), 0);
        assert_eq!(
            nesting(&serde_json::json!({"a": [1, {"b": []}], "c": {}})),
            4
        );
        for n in [1, MAX_DEPTH, MAX_DEPTH + 1, NESTING_COUNTED] {
            assert_eq!(nesting(&nested(n)), n);
        }
        assert_eq!(nesting(&nested(100)), NESTING_COUNTED);
    }

    #[test]
    fn disclosure_encoding_matches_ssi() {
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(8);
        let value = serde_json::json!({"code": "CS101", "credits": 6, "nested": [1, "ü", null]});
        let ours = Disclosure::new(Some("course".into()), value.clone(), &mut rng);
        let desc = DisclosureDescription::ObjectEntry {
            key: "course".into(),
            value,
        };
        assert_eq!(
            ours.as_str(),
            DisclosureBuf::encode_from_parts(ours.salt(), &desc).to_string()
        );
        let ours = Disclosure::new(None, serde_json::json!("DE"), &mut rng);
        let desc = DisclosureDescription::ArrayItem(serde_json::json!("DE"));
        assert_eq!(
            ours.as_str(),
            DisclosureBuf::encode_from_parts(ours.salt(), &desc).to_string()
        );
        assert_eq!(Disclosure::parse(ours.as_str()).unwrap(), ours);
    }

    #[test]
    fn json_writer_is_serde_json() {
        let mut controls = String::new();
        for c in 0u8..0x20 {
            controls.push(char::from(c));
        }
        controls.push_str("\u{7f}\"\\/ü€😀");
        let values = [
            serde_json::json!(null),
            serde_json::json!([true, false, 0, -1, 2.5, 1e300, u64::MAX, i64::MIN]),
            serde_json::json!({"b": 1, "a": [{}, [], ""], "c": {"d": {"e": null}}}),
            serde_json::json!({ controls.clone(): controls }),
            serde_json::from_str::<Value>(
                r#"{"n": [-0, 1e400, 3.60, 0.1e-7, 12345678901234567890123]}"#,
            )
            .unwrap(),
        ];
        for v in values {
            let mut ours = String::new();
            write_json(&v, &mut ours);
            assert_eq!(ours, serde_json::to_string(&v).unwrap());
        }
        let mut s = String::new();
        write_json_str(&controls, &mut s);
        assert_eq!(s, serde_json::to_string(&controls).unwrap());
        // Every byte that escapes, and some that do not, at every place of
        // strings long enough for the eight-byte steps.
        for special in [
            "\"", "\\", "\n", "\u{1}", "\u{1f}", " ", "!", "#", "[", "]", "ü", "\u{7f}",
        ] {
            for len in 0..20 {
                for at in 0..=len {
                    let text = format!("{}{special}{}", "a".repeat(at), "b".repeat(len - at));
                    let mut s = String::new();
                    write_json_str(&text, &mut s);
                    assert_eq!(s, serde_json::to_string(&text).unwrap(), "{text:?}");
                }
            }
        }
        assert_eq!(
            std::str::from_utf8(&digest_bytes(b"abc")).unwrap(),
            digest(b"abc")
        );
    }

    #[test]
    fn parse_agrees_with_ssi() {
        let cases = [
            r#"["s", "name", {"a": [1, 2.5, -0, 1e400, "ü\u00e9"]}]"#,
            r#"["s", ["x"]]"#,
            r#"  ["s","n",null]  "#,
            // Broken: not an array, too short, too long, salt or name not a
            // string, not JSON, trailing text, cut short.
            r#"{"s": 1}"#,
            r#"["s"]"#,
            r#"["s", "n", 1, 2]"#,
            r#"[1, "n", 1]"#,
            r#"["s", 2, 1]"#,
            r#"[1, 2"#,
            r#"["s", "n", 1] x"#,
            "not json",
            "",
        ];
        for case in cases {
            let encoded = b64::encode(case);
            let ours = Disclosure::parse(&encoded);
            match DecodedDisclosure::new(&encoded) {
                Ok(theirs) => {
                    let ours = ours.unwrap_or_else(|e| panic!("{case}: {e}"));
                    assert_eq!(ours.salt(), theirs.salt, "{case}");
                    let (name, value) = match theirs.desc {
                        DisclosureDescription::ObjectEntry { key, value } => (Some(key), value),
                        DisclosureDescription::ArrayItem(value) => (None, value),
                    };
                    assert_eq!(ours.name(), name.as_deref(), "{case}");
                    assert_eq!(ours.value(), &value, "{case}");
                }
                Err(ssi_sd_jwt::DecodeError::JsonDeserialization(e)) => assert_eq!(
                    ours.unwrap_err(),
                    DisclosureError::Json {
                        line: e.line(),
                        column: e.column()
                    },
                    "{case}"
                ),
                Err(_) => assert_eq!(ours.unwrap_err(), DisclosureError::Shape, "{case}"),
            }
        }
        // Not base64url at all, and non-canonical trailing bits.
        for bad in ["a+b/", "QR", "WyJzIiwxXQ=="] {
            assert!(DecodedDisclosure::new(bad).is_err());
            assert_eq!(Disclosure::parse(bad).unwrap_err(), DisclosureError::Shape);
        }
    }
}

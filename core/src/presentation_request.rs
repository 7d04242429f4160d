//! Presentation requests: what a verifier asks a holder for, as text a
//! wallet reads from a QR code or a paste.
//!
//! A request names the verifier (`aud`), carries a fresh single-use `nonce`
//! the holder's KB-JWT must repeat, an expiry, and optionally the claims the
//! verifier wants disclosed. Its text form is
//!
//! ```text
//! VCHR1:<base45 of the compact JSON {"aud":…,"nonce":…,"exp":…,"claims":[…]}>
//! ```
//!
//! Base45 (RFC 9285) keeps the whole text inside the QR alphanumeric set,
//! like the `VCH1:` envelope, so the code stays small. `claims` is left out
//! when empty. [`PresentationRequest::parse`] refuses unknown fields, a bad
//! audience or nonce, and more than [`MAX_CLAIMS`] claims; the verifier
//! alone decides whether a nonce is still outstanding.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::path::{ClaimPath, PathError};
use crate::verify::Request;

/// The text prefix (format version 1).
pub const PREFIX: &str = "VCHR1:";
/// Longest request text [`PresentationRequest::parse`] reads, in characters.
pub const MAX_REQUEST_CHARS: usize = 4096;
/// Longest audience, in characters.
pub const MAX_AUD_CHARS: usize = 256;
/// Shortest nonce, in characters (16 base64url characters carry 96 bits).
pub const MIN_NONCE_CHARS: usize = 16;
/// Longest nonce, in characters.
pub const MAX_NONCE_CHARS: usize = 128;
/// Most claims a request may ask for.
pub const MAX_CLAIMS: usize = 64;
/// Random bytes in a nonce from [`fresh_nonce`].
pub const NONCE_BYTES: usize = 18;

/// Why a request could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No `VCHR1:` prefix.
    #[error("not a Vouch presentation request: it must start with {PREFIX}")]
    Prefix,
    /// Longer than [`MAX_REQUEST_CHARS`].
    #[error("presentation request of {len} characters is longer than the limit of {max}")]
    TooLong {
        /// Characters given.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not base45.
    #[error("presentation request is not valid base45 at character {0}")]
    Base45(usize),
    /// Not the request JSON.
    #[error("presentation request content is not a request: {0}")]
    Json(String),
    /// The audience is empty, too long, or holds control characters.
    #[error("presentation request audience: {0}")]
    Audience(&'static str),
    /// The nonce is too short, too long, or not base64url characters.
    #[error("presentation request nonce: {0}")]
    Nonce(&'static str),
    /// The expiry is not a positive Unix time.
    #[error("presentation request expiry {0} is not a positive Unix time")]
    Expiry(i64),
    /// More than [`MAX_CLAIMS`] claims.
    #[error("presentation request asks for {0} claims; at most {MAX_CLAIMS}")]
    TooManyClaims(usize),
    /// A claim path that does not parse.
    #[error("presentation request claim: {0}")]
    Claim(#[source] PathError),
}

/// A presentation request: who asks, the nonce to repeat, until when, and
/// which claims. Only valid requests exist: see [`PresentationRequest::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentationRequest {
    aud: String,
    nonce: String,
    expires: i64,
    claims: Vec<ClaimPath>,
}

/// The JSON form, as written in the text.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    aud: String,
    nonce: String,
    exp: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    claims: Vec<String>,
}

/// A fresh nonce: [`NONCE_BYTES`] random bytes from `rng`, base64url.
pub fn fresh_nonce(rng: &mut (impl RngCore + CryptoRng)) -> String {
    let mut bytes = [0u8; NONCE_BYTES];
    rng.fill_bytes(&mut bytes);
    crate::b64::encode(bytes)
}

impl PresentationRequest {
    /// A request from `aud` with `nonce`, expiring at `expires` (Unix
    /// seconds), asking for `claims`.
    ///
    /// # Errors
    /// [`RequestError::Audience`] for an empty audience, one over
    /// [`MAX_AUD_CHARS`] or with control characters;
    /// [`RequestError::Nonce`] for a nonce outside
    /// [`MIN_NONCE_CHARS`]..=[`MAX_NONCE_CHARS`] or with characters outside
    /// base64url; [`RequestError::Expiry`] for `expires` ≤ 0;
    /// [`RequestError::TooManyClaims`] beyond [`MAX_CLAIMS`].
    pub fn new(
        aud: impl Into<String>,
        nonce: impl Into<String>,
        expires: i64,
        claims: Vec<ClaimPath>,
    ) -> Result<Self, RequestError> {
        let (aud, nonce) = (aud.into(), nonce.into());
        if aud.is_empty() {
            return Err(RequestError::Audience("empty"));
        }
        if aud.chars().count() > MAX_AUD_CHARS {
            return Err(RequestError::Audience("longer than 256 characters"));
        }
        if aud.chars().any(char::is_control) {
            return Err(RequestError::Audience("holds control characters"));
        }
        if nonce.len() < MIN_NONCE_CHARS {
            return Err(RequestError::Nonce("shorter than 16 characters"));
        }
        if nonce.len() > MAX_NONCE_CHARS {
            return Err(RequestError::Nonce("longer than 128 characters"));
        }
        if !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(RequestError::Nonce(
                "holds characters outside base64url (A-Z a-z 0-9 - _)",
            ));
        }
        if expires <= 0 {
            return Err(RequestError::Expiry(expires));
        }
        if claims.len() > MAX_CLAIMS {
            return Err(RequestError::TooManyClaims(claims.len()));
        }
        Ok(Self {
            aud,
            nonce,
            expires,
            claims,
        })
    }

    /// Reads a request from its text form (surrounding whitespace ignored).
    ///
    /// # Errors
    /// [`RequestError`]: the prefix, the length (checked first), base45,
    /// the JSON (unknown fields refused), and everything
    /// [`PresentationRequest::new`] checks.
    pub fn parse(text: &str) -> Result<Self, RequestError> {
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if text.len() > MAX_REQUEST_CHARS {
            return Err(RequestError::TooLong {
                len: text.len(),
                max: MAX_REQUEST_CHARS,
            });
        }
        let body = text.strip_prefix(PREFIX).ok_or(RequestError::Prefix)?;
        let json =
            crate::base45::decode(body).map_err(|at| RequestError::Base45(PREFIX.len() + at))?;
        let wire: Wire =
            serde_json::from_slice(&json).map_err(|e| RequestError::Json(e.to_string()))?;
        if wire.claims.len() > MAX_CLAIMS {
            return Err(RequestError::TooManyClaims(wire.claims.len()));
        }
        let claims = wire
            .claims
            .iter()
            .map(|c| ClaimPath::parse(c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RequestError::Claim)?;
        Self::new(wire.aud, wire.nonce, wire.exp, claims)
    }

    /// The text form: `VCHR1:` + base45 of the compact JSON.
    pub fn to_text(&self) -> String {
        let wire = Wire {
            aud: self.aud.clone(),
            nonce: self.nonce.clone(),
            exp: self.expires,
            claims: self.claims.iter().map(ToString::to_string).collect(),
        };
        // Serialising a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(&wire).unwrap_or_default();
        let mut out = String::from(PREFIX);
        crate::base45::encode(&json, &mut out);
        out
    }

    /// Who asks: the KB-JWT's expected `aud`.
    pub fn aud(&self) -> &str {
        &self.aud
    }

    /// The nonce the KB-JWT must repeat.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// When the request expires (Unix seconds).
    pub fn expires(&self) -> i64 {
        self.expires
    }

    /// The claims asked for.
    pub fn claims(&self) -> &[ClaimPath] {
        &self.claims
    }

    /// Whether the request has expired at `now` (Unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        now >= self.expires
    }

    /// What [`crate::verify::verify`] checks a presentation against.
    pub fn to_request(&self) -> Request {
        Request {
            aud: self.aud.clone(),
            nonce: Some(self.nonce.clone()),
            claims: self.claims.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn paths(p: &[&str]) -> Vec<ClaimPath> {
        p.iter().map(|p| ClaimPath::parse(p).unwrap()).collect()
    }

    fn sample() -> PresentationRequest {
        PresentationRequest::new(
            "https://hr.example.com",
            "q2Vx9aZbYc3dEf4gHi5jKl6m",
            1_800_000_000,
            paths(&["/courses", "/student_name", "/a~1b"]),
        )
        .unwrap()
    }

    #[test]
    fn round_trips_through_text() {
        let request = sample();
        let text = request.to_text();
        assert!(text.starts_with(PREFIX));
        assert_eq!(PresentationRequest::parse(&text).unwrap(), request);
        assert_eq!(
            PresentationRequest::parse(&format!("  {text}\n")).unwrap(),
            request
        );
        // Without claims, too.
        let bare = PresentationRequest::new("v", "AAAAAAAAAAAAAAAA", 5, Vec::new()).unwrap();
        assert_eq!(PresentationRequest::parse(&bare.to_text()).unwrap(), bare);
    }

    #[test]
    fn text_is_qr_alphanumeric() {
        let text = sample().to_text();
        assert!(
            text.bytes()
                .all(|b| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&b)),
            "{text}"
        );
        assert!(crate::qr::qr_code(&text, crate::qr::EcLevel::M).is_ok());
    }

    #[test]
    fn to_request_carries_aud_nonce_claims() {
        let r = sample().to_request();
        assert_eq!(r.aud, "https://hr.example.com");
        assert_eq!(r.nonce.as_deref(), Some("q2Vx9aZbYc3dEf4gHi5jKl6m"));
        assert_eq!(r.claims.len(), 3);
        assert!(sample().is_expired(1_800_000_000));
        assert!(!sample().is_expired(1_799_999_999));
    }

    #[test]
    fn fresh_nonces_are_valid_and_differ() {
        let mut rng = rand::rngs::OsRng;
        let a = fresh_nonce(&mut rng);
        let b = fresh_nonce(&mut rng);
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(PresentationRequest::new("v", a, 1, Vec::new()).is_ok());
    }

    fn wire(json: &str) -> String {
        let mut out = String::from(PREFIX);
        crate::base45::encode(json.as_bytes(), &mut out);
        out
    }

    #[test]
    fn fail_broken_text() {
        use RequestError as E;
        let parse = PresentationRequest::parse;
        assert_eq!(parse(""), Err(E::Prefix));
        assert_eq!(parse("VCH1:ABC"), Err(E::Prefix));
        assert_eq!(parse("vchr1:ABC"), Err(E::Prefix));
        assert!(matches!(parse("VCHR1:abc"), Err(E::Base45(6))));
        // One character left over: not base45.
        assert!(matches!(parse("VCHR1:A"), Err(E::Base45(6))));
        // ":::" is 44 + 44·45 + 44·2025 = 91124 > 65535.
        assert!(matches!(parse("VCHR1::::"), Err(E::Base45(6))));
        let long = format!("VCHR1:{}", "0".repeat(MAX_REQUEST_CHARS));
        assert!(matches!(parse(&long), Err(E::TooLong { .. })));
        // Truncated: the JSON is cut.
        let text = sample().to_text();
        let cut = &text[..text.len() - 6];
        assert!(parse(cut).is_err());
        assert!(matches!(parse(&wire("[1,2]")), Err(E::Json(_))));
        assert!(matches!(parse(&wire("not json")), Err(E::Json(_))));
        assert!(matches!(
            parse(&wire(
                r#"{"aud":"v","nonce":"AAAAAAAAAAAAAAAA","exp":1,"extra":1}"#
            )),
            Err(E::Json(_))
        ));
        assert!(matches!(
            parse(&wire(r#"{"aud":"v","nonce":"AAAAAAAAAAAAAAAA"}"#)),
            Err(E::Json(_))
        ));
    }

    #[test]
    fn fail_bad_fields() {
        use RequestError as E;
        let parse = |j: &str| PresentationRequest::parse(&wire(j));
        assert!(matches!(
            parse(r#"{"aud":"","nonce":"AAAAAAAAAAAAAAAA","exp":1}"#),
            Err(E::Audience(_))
        ));
        let long_aud = "a".repeat(MAX_AUD_CHARS + 1);
        assert!(matches!(
            parse(&format!(
                r#"{{"aud":"{long_aud}","nonce":"AAAAAAAAAAAAAAAA","exp":1}}"#
            )),
            Err(E::Audience(_))
        ));
        assert!(matches!(
            parse(r#"{"aud":"a\nb","nonce":"AAAAAAAAAAAAAAAA","exp":1}"#),
            Err(E::Audience(_))
        ));
        assert!(matches!(
            parse(r#"{"aud":"v","nonce":"short","exp":1}"#),
            Err(E::Nonce(_))
        ));
        assert!(matches!(
            parse(r#"{"aud":"v","nonce":"AAAAAAAAAAAAAAA=","exp":1}"#),
            Err(E::Nonce(_))
        ));
        assert!(matches!(
            parse(r#"{"aud":"v","nonce":"AAAAAAAAAAAAAAAA","exp":0}"#),
            Err(E::Expiry(0))
        ));
        assert!(matches!(
            parse(r#"{"aud":"v","nonce":"AAAAAAAAAAAAAAAA","exp":1,"claims":["/a//b"]}"#),
            Err(E::Claim(_))
        ));
        let many: Vec<String> = (0..=MAX_CLAIMS).map(|i| format!("\"/c{i}\"")).collect();
        assert!(matches!(
            parse(&format!(
                r#"{{"aud":"v","nonce":"AAAAAAAAAAAAAAAA","exp":1,"claims":[{}]}}"#,
                many.join(",")
            )),
            Err(E::TooManyClaims(65))
        ));
    }
}

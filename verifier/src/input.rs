//! What a verifier is handed, parsed at the edge: a `VCH1:` envelope, a
//! relay link, a raw SD-JWT presentation, a presentation file, or a QR
//! image holding one of the first two.
//!
//! [`Input::from_bytes`] and [`Input::from_text`] only classify and bound
//! the input; [`Input::resolve`] does the work (decoding an image, fetching
//! and decrypting a relay item) and yields a [`Presented`]: the
//! presentation text and its anchor proof, if any, ready for
//! [`vouch_core::verify::verify`].
//!
//! A presentation file is either the presentation text itself, or JSON:
//!
//! ```json
//! { "presentation": "<SD-JWT+KB or VCH1: text>", "anchor_proof": { … } }
//! ```
//!
//! (`anchor_proof` optional, no other fields). A relay item's plaintext is
//! any of these too, but never another link or image.

use std::io::Read as _;
use std::path::Path;

use vouch_core::presentation::Presentation as FilePresentation;
use vouch_core::verify::Presentation;
use vouch_core::{AnchorProof, SdJwt};

use crate::qr::{self, QrError};
use crate::relay::{RelayError, RelayHosts, RelayLink};

/// Largest input read from a file or standard input, in bytes (an image).
pub const MAX_INPUT_BYTES: usize = qr::MAX_IMAGE_BYTES;
/// Largest text input, in bytes: a `VCH1:` envelope of the largest
/// presentation, with room for a presentation file's anchor proof.
pub const MAX_TEXT_BYTES: usize = vouch_core::envelope::MAX_ENVELOPE_CHARS + (16 << 10);

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Nothing given.
    #[error("the input is empty")]
    Empty,
    /// Over a size limit.
    #[error("{what} of {len} bytes is larger than the limit of {max}")]
    TooLarge {
        /// What.
        what: &'static str,
        /// Bytes given (at least).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Neither an image nor UTF-8 text.
    #[error("the input is neither a PNG/JPEG image nor UTF-8 text")]
    NotText,
    /// Text that is none of the accepted forms.
    #[error(
        "the input is not a presentation: expected VCH1: text, a relay link \
         (https://…/p/<id>#<key>), an SD-JWT presentation or a presentation file; \
         it starts with {start:?}"
    )]
    Unrecognised {
        /// Its first characters.
        start: String,
    },
    /// A link that is not a relay link, or a relay that failed.
    #[error(transparent)]
    Relay(#[from] RelayError),
    /// A relay item holding another link or an image.
    #[error("the relay item holds {0}, not a presentation")]
    Nested(&'static str),
    /// An image with no readable QR code.
    #[error(transparent)]
    Qr(#[from] QrError),
    /// A presentation file whose JSON is not the presentation file form.
    #[error(transparent)]
    File(vouch_core::presentation::FileError),
    /// A file or standard input that could not be read.
    #[error("reading {what}: {source}")]
    Io {
        /// The path, or "standard input".
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// An input, classified and bounded, not yet resolved.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Input {
    /// A `VCH1:` QR envelope.
    Envelope(String),
    /// A compact SD-JWT+KB presentation.
    SdJwt(String),
    /// A presentation file's JSON form (`vouch-presentation/v1`).
    File(FilePresentation),
    /// A relay link.
    Relay(RelayLink),
    /// A PNG or JPEG image, to be scanned for a QR code.
    Image(Vec<u8>),
}

/// Where a presentation came from, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// `VCH1:` text.
    Envelope,
    /// A raw SD-JWT.
    SdJwt,
    /// A presentation file's JSON.
    File,
    /// A relay item, through a link.
    Relay,
    /// A QR image holding `VCH1:` text.
    QrEnvelope,
    /// A QR image holding a relay link.
    QrRelay,
}

/// A presentation ready to check.
#[derive(Debug, Clone)]
pub struct Presented {
    /// The presentation text (compact SD-JWT+KB or `VCH1:`).
    pub text: String,
    /// The anchor proof, when the holder showed one.
    pub anchor: Option<AnchorProof>,
    /// Where it came from.
    pub source: Source,
}

impl Presented {
    /// The presentation as [`vouch_core::verify::verify`] takes it.
    pub fn presentation(&self) -> Presentation<'_> {
        match &self.anchor {
            Some(proof) => Presentation::with_anchor(&self.text, proof),
            None => Presentation::from(self.text.as_str()),
        }
    }

    /// The nonce its key-binding JWT carries, when the presentation reads
    /// that far; `None` for no KB-JWT, no nonce, an empty one or input
    /// that does not parse (whose checks then say why). Nothing is
    /// verified here: [`vouch_core::verify::verify`] checks the KB-JWT.
    pub fn kb_nonce(&self) -> Option<String> {
        let read = FilePresentation::read(&self.text).ok()?;
        kb_nonce(&read.sd_jwt)
    }

    /// The presentation read once: its SD-JWT parsed (a `VCH1:` envelope
    /// decoded straight into it, a presentation file opened), with the
    /// anchor proof given apart or else the one it carries; `None` when
    /// it does not read or parse (then [`Presented::presentation`] is
    /// checked, and verification says why).
    pub(crate) fn read(&self) -> Option<Read> {
        // Told apart as `vouch_core::presentation::Presentation::read`
        // tells them.
        let text = self.text.trim_matches(|c: char| c.is_ascii_whitespace());
        let (sd_jwt, carried) = if text.starts_with(vouch_core::envelope::PREFIX) {
            let decoded = vouch_core::envelope::decode_sd_jwt(text).ok()?;
            (decoded.sd_jwt.ok()?, decoded.anchor_proof)
        } else {
            let read = FilePresentation::read(text).ok()?;
            (SdJwt::parse(&read.sd_jwt).ok()?, read.anchor_proof)
        };
        Some(Read {
            anchor: self.anchor.clone().or(carried),
            sd_jwt,
        })
    }
}

/// A [`Presented`] read once ([`Presented::read`]).
pub(crate) struct Read {
    /// The presentation's SD-JWT+KB, parsed.
    pub(crate) sd_jwt: SdJwt,
    /// The anchor proof checked.
    pub(crate) anchor: Option<AnchorProof>,
}

impl Read {
    /// As [`Presented::kb_nonce`], for a presentation whose SD-JWT parsed
    /// (one that does not never becomes a `Read`: verification says why).
    pub(crate) fn kb_nonce(&self) -> Option<String> {
        kb_payload_nonce(self.sd_jwt.kb_jwt()?.payload())
    }
}

/// The nonce of the KB-JWT of compact presentation `sd_jwt`, unverified.
fn kb_nonce(sd_jwt: &str) -> Option<String> {
    // The KB-JWT is what follows the last `~`; only it is parsed.
    let (_, kb) = sd_jwt.rsplit_once('~')?;
    let kb = vouch_core::jws::Jws::parse(kb).ok()?;
    kb_payload_nonce(kb.payload())
}

/// The nonce a KB-JWT's `payload` carries, unverified (see [`kb_nonce`]).
fn kb_payload_nonce(payload: &[u8]) -> Option<String> {
    /// The one claim read, borrowed; every other member is skipped.
    #[derive(serde::Deserialize)]
    struct Nonce<'a> {
        #[serde(borrow)]
        nonce: Option<std::borrow::Cow<'a, str>>,
    }
    // serde reads a struct from an array as well; only an object is read
    // this way, and whatever it does not take (a repeated member, a nonce
    // that is not a string) goes the general way, as before.
    let object = payload.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let nonce = match serde_json::from_slice::<Nonce<'_>>(payload)
        .ok()
        .filter(|_| object)
    {
        Some(read) => read.nonce?.into_owned(),
        None => {
            let claims: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(payload).ok()?;
            claims.get("nonce")?.as_str()?.to_owned()
        }
    };
    Some(nonce).filter(|n| !n.is_empty())
}

fn is_sd_jwt(text: &str) -> bool {
    text.contains('~')
        && text.contains('.')
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

impl Input {
    /// Classifies `bytes`: a PNG/JPEG image by its signature, otherwise
    /// UTF-8 text ([`Input::from_text`]).
    ///
    /// # Errors
    /// [`InputError::TooLarge`] beyond [`MAX_INPUT_BYTES`] (or
    /// [`MAX_TEXT_BYTES`] for text), [`InputError::NotText`], and those of
    /// [`Input::from_text`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, InputError> {
        if bytes.len() > MAX_INPUT_BYTES {
            return Err(InputError::TooLarge {
                what: "input",
                len: bytes.len(),
                max: MAX_INPUT_BYTES,
            });
        }
        if qr::image_format(&bytes).is_some() {
            return Ok(Self::Image(bytes));
        }
        if bytes.len() > MAX_TEXT_BYTES {
            return Err(InputError::TooLarge {
                what: "text input",
                len: bytes.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        let text = String::from_utf8(bytes).map_err(|_| InputError::NotText)?;
        Self::from_text(&text)
    }

    /// Classifies text (surrounding whitespace ignored): `VCH1:` envelope,
    /// relay link, presentation file JSON, or raw SD-JWT.
    ///
    /// # Errors
    /// [`InputError::Empty`], [`InputError::TooLarge`] beyond
    /// [`MAX_TEXT_BYTES`], [`InputError::Relay`] for a link that is not a
    /// relay link, [`InputError::File`] for bad presentation file JSON,
    /// [`InputError::Unrecognised`] for anything else.
    pub fn from_text(text: &str) -> Result<Self, InputError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InputError::Empty);
        }
        if text.len() > MAX_TEXT_BYTES {
            return Err(InputError::TooLarge {
                what: "text input",
                len: text.len(),
                max: MAX_TEXT_BYTES,
            });
        }
        if text.starts_with(vouch_core::envelope::PREFIX) {
            return Ok(Self::Envelope(text.to_owned()));
        }
        if RelayLink::looks_like(text) {
            return Ok(Self::Relay(RelayLink::parse(text)?));
        }
        if text.starts_with('{') {
            let file = FilePresentation::from_file_json(text).map_err(InputError::File)?;
            return Ok(Self::File(file));
        }
        if is_sd_jwt(text) {
            return Ok(Self::SdJwt(text.to_owned()));
        }
        Err(InputError::Unrecognised {
            start: text.chars().take(24).collect(),
        })
    }

    /// Reads `path` (at most [`MAX_INPUT_BYTES`]) and classifies it.
    ///
    /// # Errors
    /// [`InputError::Io`], and those of [`Input::from_bytes`].
    pub fn read_file(path: &Path) -> Result<Self, InputError> {
        let io = |source| InputError::Io {
            what: path.display().to_string(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        Self::from_bytes(read_capped(file).map_err(io)?)
    }

    /// Reads standard input (at most [`MAX_INPUT_BYTES`]) and classifies it.
    ///
    /// # Errors
    /// [`InputError::Io`], and those of [`Input::from_bytes`].
    pub fn read_stdin() -> Result<Self, InputError> {
        let bytes = read_capped(std::io::stdin().lock()).map_err(|source| InputError::Io {
            what: "standard input".into(),
            source,
        })?;
        Self::from_bytes(bytes)
    }

    /// Turns the input into a presentation, following a relay link to any
    /// host: see [`Input::resolve_with`].
    ///
    /// # Errors
    /// As [`Input::resolve_with`].
    pub async fn resolve(self) -> Result<Presented, InputError> {
        self.resolve_with(&RelayHosts::any()).await
    }

    /// Turns the input into a presentation: decodes an image's QR code,
    /// fetches and decrypts a relay item (once: the relay serves it once)
    /// when its link is on one of `relays`.
    ///
    /// # Errors
    /// [`InputError`]: no QR code, a QR code or relay item holding none of
    /// the accepted forms, a relay link to a host not in `relays`, a relay
    /// failure.
    pub async fn resolve_with(self, relays: &RelayHosts) -> Result<Presented, InputError> {
        match self {
            Self::Image(bytes) => {
                let text = qr::decode(&bytes)?;
                match Self::from_text(&text)? {
                    Self::Envelope(text) => Ok(Presented {
                        text,
                        anchor: None,
                        source: Source::QrEnvelope,
                    }),
                    Self::Relay(link) => {
                        let mut p = from_relay(&link, relays).await?;
                        p.source = Source::QrRelay;
                        Ok(p)
                    }
                    other => other.into_presented(),
                }
            }
            Self::Relay(link) => from_relay(&link, relays).await,
            other => other.into_presented(),
        }
    }

    /// A text input as a presentation; links and images are not text.
    fn into_presented(self) -> Result<Presented, InputError> {
        let (text, anchor, source) = match self {
            Self::Envelope(text) => (text, None, Source::Envelope),
            Self::SdJwt(text) => (text, None, Source::SdJwt),
            Self::File(file) => (file.sd_jwt, file.anchor_proof, Source::File),
            Self::Relay(_) => return Err(InputError::Nested("a relay link")),
            Self::Image(_) => return Err(InputError::Nested("an image")),
        };
        Ok(Presented {
            text,
            anchor,
            source,
        })
    }
}

async fn from_relay(link: &RelayLink, relays: &RelayHosts) -> Result<Presented, InputError> {
    relays.check(link)?;
    let plain = link.fetch().await?;
    let inner = Input::from_text(&plain)?;
    let mut p = inner.into_presented()?;
    p.source = Source::Relay;
    Ok(p)
}

fn read_capped(reader: impl std::io::Read) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    // One byte more than the limit tells an over-long input from one at it.
    reader
        .take(MAX_INPUT_BYTES as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_kb_nonce_is_read_from_an_object_payload_only() {
        let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let with = |payload: &str| {
            let kb = vouch_core::jws::Jws::sign_eddsa(payload.as_bytes(), None, None, &key);
            kb_nonce(&format!("eyJh.eyJi.c2ln~{}", kb.as_str()))
        };
        let nonce = |n: &str| Some(n.to_owned());
        assert_eq!(with(r#"{"aud":"x","nonce":"n-1","iat":1}"#), nonce("n-1"));
        assert_eq!(with(r#" {"nonce":"a\"b\u00e9"}"#), nonce("a\"bé"));
        // A repeated member: the last one, as a JSON map reads it.
        assert_eq!(with(r#"{"nonce":"a","nonce":"b"}"#), nonce("b"));
        // No nonce, an empty one, one that is not a string, not an object,
        // not JSON, no KB-JWT.
        for payload in [
            r#"{"aud":"x"}"#,
            r#"{"nonce":""}"#,
            r#"{"nonce":null}"#,
            r#"{"nonce":7}"#,
            r#"["n-1"]"#,
            r#"{"nonce":"n-1""#,
            "",
        ] {
            assert_eq!(with(payload), None, "{payload}");
        }
        assert_eq!(kb_nonce("eyJh.eyJi.c2ln~"), None);
        assert_eq!(kb_nonce("eyJh.eyJi.c2ln~not a jws"), None);
    }

    #[test]
    fn classifies_text() {
        assert!(matches!(
            Input::from_text(" VCH1:ABC \n").unwrap(),
            Input::Envelope(t) if t == "VCH1:ABC"
        ));
        assert!(matches!(
            Input::from_text("eyJh.eyJi.c2ln~WyJ~").unwrap(),
            Input::SdJwt(_)
        ));
        assert!(matches!(
            Input::from_text(r#"{"format":"vouch-presentation/v1","presentation":"eyJh.eyJi.c2ln~"}"#).unwrap(),
            Input::File(f) if f.sd_jwt == "eyJh.eyJi.c2ln~" && f.anchor_proof.is_none()
        ));
        let link = crate::relay::link(
            "https://reg.example",
            "00112233445566778899aabbccddeeff",
            &[1; 32],
        );
        assert!(matches!(Input::from_text(&link).unwrap(), Input::Relay(_)));
        assert!(matches!(
            Input::from_bytes(b"\x89PNG\r\n\x1a\nxx".to_vec()).unwrap(),
            Input::Image(_)
        ));
    }

    #[test]
    fn fail_bad_inputs() {
        assert!(matches!(Input::from_text("  "), Err(InputError::Empty)));
        assert!(matches!(
            Input::from_text("hello world"),
            Err(InputError::Unrecognised { .. })
        ));
        assert!(matches!(
            Input::from_text("https://example.com/some/page"),
            Err(InputError::Relay(_))
        ));
        assert!(matches!(
            Input::from_text(r#"{"format":"vouch-presentation/v1","presentation":"x","extra":1}"#),
            Err(InputError::File(_))
        ));
        assert!(matches!(
            Input::from_text(r#"{"presentation":"x""#),
            Err(InputError::File(_))
        ));
        assert!(matches!(
            Input::from_bytes(vec![0xC3, 0x28]),
            Err(InputError::NotText)
        ));
        assert!(matches!(
            Input::from_bytes(vec![b'A'; MAX_TEXT_BYTES + 1]),
            Err(InputError::TooLarge { .. })
        ));
        assert!(matches!(
            Input::from_bytes(vec![b'A'; MAX_INPUT_BYTES + 1]),
            Err(InputError::TooLarge { .. })
        ));
    }
}

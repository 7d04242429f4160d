//! A presentation as the holder hands it over: the compact SD-JWT+KB text
//! and, optionally, the proof that the credential was anchored on the chain.
//!
//! It travels in one of three forms, all read by [`Presentation::read`]:
//! - the compact SD-JWT+KB text alone (no anchor proof);
//! - a `VCH1:` QR envelope ([`crate::envelope::encode_presentation`]),
//!   whose optional anchor part carries the proof;
//! - the file form, a small JSON document:
//!   `{"format":"vouch-presentation/v1","presentation":"<compact SD-JWT+KB>","anchor_proof":{…}}`
//!   with `anchor_proof` (the [`AnchorProof`] JSON form) left out when there
//!   is none. Unknown members are refused, so a misspelt `anchor_proof` is
//!   not silently taken for "no proof".

use serde::{Deserialize, Serialize};

use crate::anchor::{AnchorProof, MAX_PROOF_JSON_BYTES};
use crate::envelope::{self, EnvelopeError};
use crate::sd_jwt::MAX_SD_JWT_BYTES;

/// The `format` of the file form, version 1.
pub const FILE_FORMAT: &str = "vouch-presentation/v1";

/// Longest file form [`Presentation::from_file_json`] reads: the longest
/// SD-JWT, the longest anchor proof JSON, and room for the members' names
/// and JSON escapes of the SD-JWT text (which has none: it is base64url,
/// `.` and `~`).
pub const MAX_FILE_BYTES: usize = MAX_SD_JWT_BYTES + MAX_PROOF_JSON_BYTES + 1024;

/// A presentation and, optionally, its anchor proof, owned.
#[derive(Debug, Clone, PartialEq)]
pub struct Presentation {
    /// The compact SD-JWT+KB presentation text, exactly as signed.
    pub sd_jwt: String,
    /// The proof that the credential was anchored on the chain, if the
    /// holder shows one.
    pub anchor_proof: Option<AnchorProof>,
}

/// Why a presentation file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// Longer than [`MAX_FILE_BYTES`]; refused before parsing.
    #[error("presentation file of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not JSON of the file form's shape (a missing or unknown member, a
    /// member of the wrong type, or an anchor proof out of bounds).
    #[error("presentation file, line {line} column {column}: {detail}")]
    Json {
        /// Line of the error (1-based).
        line: usize,
        /// Column of the error (1-based).
        column: usize,
        /// What serde_json found wrong there.
        detail: String,
    },
    /// A `format` other than [`FILE_FORMAT`].
    #[error("presentation file format is {found:?}; expected {FILE_FORMAT:?}")]
    Format {
        /// The `format` found.
        found: String,
    },
    /// The `presentation` member is empty or is not a compact SD-JWT's
    /// text (base64url, `.` and `~`).
    #[error("presentation file: the presentation member is not a compact SD-JWT")]
    NotCompact,
}

/// Why a presentation in any of its forms could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// A `VCH1:` envelope that does not decode.
    #[error("bad QR envelope: {0}")]
    Envelope(#[from] EnvelopeError),
    /// A file form that does not parse.
    #[error("bad presentation file: {0}")]
    File(#[from] FileError),
}

/// The file form on the wire.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    presentation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    anchor_proof: Option<AnchorProof>,
}

impl Presentation {
    /// A presentation without an anchor proof.
    pub fn new(sd_jwt: impl Into<String>) -> Self {
        Self {
            sd_jwt: sd_jwt.into(),
            anchor_proof: None,
        }
    }

    /// Reads a presentation in any of its forms: a `VCH1:` envelope, the
    /// file form (a JSON object), or else the compact SD-JWT+KB text
    /// itself, taken as it is (parsing and checking it is the verifier's
    /// job). Surrounding ASCII whitespace is ignored.
    ///
    /// # Errors
    /// [`ReadError::Envelope`] for an envelope that does not decode,
    /// [`ReadError::File`] for a JSON object that is not the file form.
    pub fn read(input: &str) -> Result<Self, ReadError> {
        let input = input.trim_matches(|c: char| c.is_ascii_whitespace());
        if input.starts_with(envelope::PREFIX) {
            Ok(envelope::decode_presentation(input)?)
        } else if input.starts_with('{') {
            Ok(Self::from_file_json(input)?)
        } else {
            Ok(Self::new(input))
        }
    }

    /// Parses the file form (see the module documentation).
    ///
    /// # Errors
    /// [`FileError`] when it is longer than [`MAX_FILE_BYTES`] (checked
    /// first), not the file form's JSON, of another format, or its
    /// presentation is not compact SD-JWT text.
    pub fn from_file_json(text: &str) -> Result<Self, FileError> {
        if text.len() > MAX_FILE_BYTES {
            return Err(FileError::TooLarge {
                len: text.len(),
                max: MAX_FILE_BYTES,
            });
        }
        let file: File = serde_json::from_str(text).map_err(|e| FileError::Json {
            line: e.line(),
            column: e.column(),
            detail: e.to_string(),
        })?;
        if file.format != FILE_FORMAT {
            return Err(FileError::Format { found: file.format });
        }
        let compact = !file.presentation.is_empty()
            && file
                .presentation
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'));
        if !compact {
            return Err(FileError::NotCompact);
        }
        Ok(Self {
            sd_jwt: file.presentation,
            anchor_proof: file.anchor_proof,
        })
    }

    /// The file form, on one line.
    pub fn to_file_json(&self) -> String {
        let file = File {
            format: FILE_FORMAT.to_owned(),
            presentation: self.sd_jwt.clone(),
            anchor_proof: self.anchor_proof.clone(),
        };
        // Strings and an anchor proof (integers and strings) always
        // serialise.
        serde_json::to_string(&file).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::log::Hash;

    const TEXT: &str =
        "eyJhbGciOiJFZERTQSJ9.e30.c2ln~WyJzIiwiYSIsMV0~eyJ0eXAiOiJrYitqd3QifQ.e30.c2ln";

    fn proof() -> AnchorProof {
        AnchorProof::new(12, 3, 5, vec![Hash([1; 32]), Hash([2; 32]), Hash([3; 32])]).unwrap()
    }

    #[test]
    fn file_form_round_trips_with_and_without_an_anchor_proof() {
        for p in [
            Presentation::new(TEXT),
            Presentation {
                sd_jwt: TEXT.into(),
                anchor_proof: Some(proof()),
            },
        ] {
            let json = p.to_file_json();
            assert!(json.starts_with("{\"format\":\"vouch-presentation/v1\""));
            assert_eq!(json.contains("anchor_proof"), p.anchor_proof.is_some());
            assert_eq!(Presentation::from_file_json(&json).unwrap(), p);
            assert_eq!(Presentation::read(&format!("\n {json}\n")).unwrap(), p);
        }
    }

    #[test]
    fn read_takes_every_form() {
        assert_eq!(
            Presentation::read(&format!(" {TEXT}\n")).unwrap(),
            Presentation::new(TEXT)
        );
        let p = Presentation {
            sd_jwt: TEXT.into(),
            anchor_proof: Some(proof()),
        };
        let env = envelope::encode_presentation(&p).unwrap();
        assert_eq!(Presentation::read(&env).unwrap(), p);
        assert!(matches!(
            Presentation::read("VCH1:::"),
            Err(ReadError::Envelope(_))
        ));
    }

    #[test]
    fn broken_files_are_refused() {
        let good = Presentation {
            sd_jwt: TEXT.into(),
            anchor_proof: Some(proof()),
        }
        .to_file_json();
        // Not the file form's JSON: the error says where.
        for text in [
            String::new(),
            "{".into(),
            "[]".into(),
            good[..good.len() - 1].to_owned(),
            format!("{good}x"),
            good.replace("\"format\"", "\"fromat\""),
            good.replace("\"anchor_proof\"", "\"anchor_prof\""),
            format!("{{\"format\":\"{FILE_FORMAT}\"}}"),
            good.replace("\"presentation\":\"", "\"presentation\":7,\"x\":\""),
            // An anchor proof whose leaf is outside its batch.
            good.replace("\"leaf_index\":3", "\"leaf_index\":5"),
        ] {
            let err = Presentation::from_file_json(&text).unwrap_err();
            assert!(
                matches!(err, FileError::Json { line: 1, column, .. } if column <= text.len().max(1)),
                "{text}: {err:?}"
            );
        }
        assert_eq!(
            Presentation::from_file_json(
                &good.replace("vouch-presentation/v1", "vouch-presentation/v2")
            ),
            Err(FileError::Format {
                found: "vouch-presentation/v2".into()
            })
        );
        for presentation in ["", "VCH1:ABC", "a b"] {
            assert_eq!(
                Presentation::from_file_json(&good.replace(TEXT, presentation)),
                Err(FileError::NotCompact),
                "{presentation:?}"
            );
        }
        let huge = format!(
            "{{\"format\":\"{FILE_FORMAT}\",\"presentation\":\"{}\"}}",
            "a".repeat(MAX_FILE_BYTES)
        );
        assert_eq!(
            Presentation::from_file_json(&huge),
            Err(FileError::TooLarge {
                len: huge.len(),
                max: MAX_FILE_BYTES
            })
        );
    }
}

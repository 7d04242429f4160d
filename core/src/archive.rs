//! The JSON Lines archive of an issued batch (`vouch-issuer issue
//! --output-format jsonl`): one file, `OUT/credentials.jsonl`, instead of
//! one file per credential, beside the same `OUT/manifest.json`. The issuer
//! writes it and checks it against its manifest; a wallet imports its own
//! lines from it. Sans-IO: lines are read from any [`BufRead`].
//!
//! One line per credential, in batch order (line *n* is the manifest's
//! entry *n*), each a JSON object with exactly these members:
//!
//! ```json
//! {"row": 17, "credential_id": "<32 hex digits>", "file": "000017-<id>.sd-jwt",
//!  "holder": "did:key:z6Mk…", "sd_jwt": "<issuer JWT>~<disclosure>~…~",
//!  "anchor_proof": {"entry_index": 12, "leaf_index": 16, "batch_size": 100000,
//!                   "path": ["<base64>", …]}}
//! ```
//!
//! - `row`: the CSV data row it was issued from (1-based);
//! - `credential_id`: [`vouch_core::manifest::credential_id`] of `sd_jwt`;
//! - `file`: the name the manifest lists it under (what `--output-format
//!   files` would have called its file), so a line and its manifest entry
//!   find each other by name as well as by id;
//! - `holder`: the holder's did:key, to route the line to its holder;
//! - `sd_jwt`: the credential, the compact SD-JWT exactly as issued;
//! - `anchor_proof`: its [`AnchorProof`], as in the manifest, so one line
//!   is all a holder needs to import the credential with its anchor proof.
//!
//! Every line ends with `\n`, including the last; the file is written to a
//! temporary name, synced and renamed into place, so a reader never sees a
//! partial file under this name. [`Lines`] refuses an empty archive, a
//! last line without its `\n` (a file cut short) and any line that is not
//! this object, naming the line.

use std::io::BufRead;

use serde::{Deserialize, Serialize};

use crate::manifest::credential_id;
use crate::{AnchorProof, DidKey};

/// The archive's file name in the output directory.
pub const FILE_NAME: &str = "credentials.jsonl";

/// Longest line [`Lines`] accepts: a credential at the SD-JWT size limit
/// with its anchor proof and the other members.
pub const MAX_LINE_BYTES: usize = crate::sd_jwt::MAX_SD_JWT_BYTES + 64 * 1024;

/// One line of the archive; see the [module documentation](self).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveLine {
    /// The CSV data row it was issued from.
    pub row: u64,
    /// [`credential_id`] of `sd_jwt`.
    pub credential_id: String,
    /// The name the manifest lists it under.
    pub file: String,
    /// The holder's did:key.
    pub holder: String,
    /// The credential: compact SD-JWT as issued.
    pub sd_jwt: String,
    /// Its place in the anchored batch.
    pub anchor_proof: AnchorProof,
}

/// The same line, borrowed, for writing without copying the credential
/// (`serde_json` writes it as [`ArchiveLine`] reads it).
#[derive(Debug, Serialize)]
pub struct ArchiveLineRef<'a> {
    /// The CSV data row it was issued from.
    pub row: u64,
    /// [`credential_id`] of `sd_jwt`.
    pub credential_id: &'a str,
    /// The name the manifest lists it under.
    pub file: &'a str,
    /// The holder's did:key.
    pub holder: &'a str,
    /// The credential: compact SD-JWT as issued.
    pub sd_jwt: &'a str,
    /// Its place in the anchored batch.
    pub anchor_proof: &'a AnchorProof,
}

/// Why an archive line, or the archive, cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The archive cannot be read.
    #[error("reading it: {0}")]
    Io(#[source] std::io::Error),
    /// No line at all: an issued batch has at least one credential.
    #[error("no credentials in it")]
    Empty,
    /// A line that is not the archive's JSON object.
    #[error("line {line}: not an archive line: {source}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// Cause.
        source: serde_json::Error,
    },
    /// The last line has no `\n`: the file was cut short.
    #[error("line {line}: cut short (no newline at the end of the file)")]
    Truncated {
        /// 1-based line number.
        line: usize,
    },
    /// A line longer than [`MAX_LINE_BYTES`].
    #[error("line {line}: longer than {MAX_LINE_BYTES} bytes")]
    TooLong {
        /// 1-based line number.
        line: usize,
    },
    /// A holder that is not a did:key.
    #[error("line {line}: holder: {source}")]
    Holder {
        /// 1-based line number.
        line: usize,
        /// Cause.
        source: crate::did::DidError,
    },
    /// A `credential_id` that is not the credential's.
    #[error("line {line}: credential_id {found} is not the id of its sd_jwt ({actual})")]
    CredentialId {
        /// 1-based line number.
        line: usize,
        /// The id given.
        found: String,
        /// The credential's id.
        actual: String,
    },
}

impl ArchiveLine {
    /// Parses one line (without its `\n`); `line` is its 1-based number,
    /// for the error. Checks the shape, the holder DID and that
    /// `credential_id` is the credential's; the credential itself is the
    /// SD-JWT verifier's to check.
    ///
    /// # Errors
    /// [`ArchiveError`] naming the line.
    pub fn parse(text: &str, line: usize) -> Result<Self, ArchiveError> {
        let parsed: ArchiveLine =
            serde_json::from_str(text).map_err(|source| ArchiveError::Json { line, source })?;
        DidKey::parse(&parsed.holder).map_err(|source| ArchiveError::Holder { line, source })?;
        let actual = credential_id(&parsed.sd_jwt);
        if actual != parsed.credential_id {
            return Err(ArchiveError::CredentialId {
                line,
                found: parsed.credential_id.chars().take(64).collect(),
                actual,
            });
        }
        Ok(parsed)
    }
}

/// The lines of an archive, read one at a time from a reader (one line in
/// memory at a time). Stops after the first error.
pub struct Lines {
    reader: Box<dyn BufRead + Send>,
    line: usize,
    failed: bool,
}

impl std::fmt::Debug for Lines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "archive::Lines(line {})", self.line)
    }
}

impl Lines {
    /// The lines of the archive `reader` reads.
    pub fn new(reader: impl BufRead + Send + 'static) -> Self {
        Self {
            reader: Box::new(reader),
            line: 0,
            failed: false,
        }
    }

    fn next_line(&mut self) -> Result<Option<ArchiveLine>, ArchiveError> {
        self.line += 1;
        let line = self.line;
        let mut bytes = Vec::new();
        let read = std::io::Read::take(&mut self.reader, MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut bytes)
            .map_err(ArchiveError::Io)?;
        if read == 0 {
            return if line == 1 {
                Err(ArchiveError::Empty)
            } else {
                Ok(None)
            };
        }
        if bytes.last() != Some(&b'\n') {
            return Err(if bytes.len() > MAX_LINE_BYTES {
                ArchiveError::TooLong { line }
            } else {
                ArchiveError::Truncated { line }
            });
        }
        bytes.pop();
        let text = std::str::from_utf8(&bytes).map_err(|e| ArchiveError::Json {
            line,
            source: serde::de::Error::custom(e),
        })?;
        ArchiveLine::parse(text, line).map(Some)
    }
}

impl Iterator for Lines {
    type Item = Result<ArchiveLine, ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_line().transpose();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::log::Hash;

    const HOLDER: &str = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
    const SD_JWT: &str = "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2ln~WyJzIiwiYSIsMV0~";

    fn line(row: u64) -> String {
        let proof = AnchorProof::new(3, row - 1, 4, vec![Hash([7; 32]); 2]).unwrap();
        let mut text = serde_json::to_string(&ArchiveLineRef {
            row,
            credential_id: &credential_id(SD_JWT),
            file: &format!("{row:06}-x.sd-jwt"),
            holder: HOLDER,
            sd_jwt: SD_JWT,
            anchor_proof: &proof,
        })
        .unwrap();
        text.push('\n');
        text
    }

    fn lines(text: &str) -> Vec<Result<ArchiveLine, ArchiveError>> {
        Lines::new(std::io::Cursor::new(text.as_bytes().to_vec())).collect()
    }

    #[test]
    fn lines_round_trip() {
        let text = line(1) + &line(2);
        let read: Vec<ArchiveLine> = lines(&text).into_iter().map(Result::unwrap).collect();
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].row, 2);
        assert_eq!(read[1].sd_jwt, SD_JWT);
        assert_eq!(read[1].anchor_proof.leaf_index(), 1);
        assert_eq!(read[0].file, "000001-x.sd-jwt");
        assert!(matches!(lines("")[..], [Err(ArchiveError::Empty)]));
    }

    #[test]
    fn fail_a_file_cut_short_or_a_broken_line() {
        let whole = line(1) + &line(2);
        // Cut anywhere inside the second line: the first still reads, then
        // the cut is named, then nothing more.
        let first = line(1).len();
        for cut in [first + 1, first + 40, whole.len() - 1] {
            let read = lines(&whole[..cut]);
            assert_eq!(read.len(), 2, "cut at {cut}");
            assert!(read[0].is_ok());
            assert!(
                matches!(read[1], Err(ArchiveError::Truncated { line: 2 })),
                "cut at {cut}: {:?}",
                read[1]
            );
        }
        // Not JSON, an unknown member, a missing member, a bad holder, an id
        // that is not the credential's, not UTF-8: each names its line.
        let bad = [
            "not json\n".to_owned(),
            line(1).replacen("{", "{\"extra\":1,", 1),
            line(1).replacen("\"row\":1,", "", 1),
            line(1).replace(HOLDER, "did:key:zBad"),
            line(1).replacen("\"credential_id\":\"", "\"credential_id\":\"0", 1),
        ];
        for (i, b) in bad.iter().enumerate() {
            let read = lines(&(line(1) + b + &line(3)));
            assert_eq!(read.len(), 2, "{b}");
            let e = read[1].as_ref().unwrap_err();
            assert!(e.to_string().starts_with("line 2: "), "{i}: {e}");
        }
        let mut bytes = line(1).into_bytes();
        bytes.extend_from_slice(b"{\"row\":\xff}\n");
        let read: Vec<_> = Lines::new(std::io::Cursor::new(bytes)).collect();
        assert!(matches!(read[1], Err(ArchiveError::Json { line: 2, .. })));
    }

    #[test]
    fn fail_a_line_over_the_limit() {
        let long = format!("{{\"row\":\"{}\"}}\n", "x".repeat(MAX_LINE_BYTES));
        let read = lines(&long);
        assert!(matches!(read[..], [Err(ArchiveError::TooLong { line: 1 })]));
    }
}

//! An issuer's JSON Lines archive (`credentials.jsonl`, from
//! `vouch-issuer issue --output-format jsonl`), read for import: one
//! credential per line with its holder and anchor proof,
//!
//! ```json
//! {"row": 17, "credential_id": "…", "file": "000017-….sd-jwt",
//!  "holder": "did:key:z6Mk…", "sd_jwt": "…~", "anchor_proof": {…}}
//! ```
//!
//! (the format `vouch_issuer::archive` documents and writes; the wallet
//! does not depend on the issuer crate, so it reads the lines itself).
//! Every line is checked before any is used: its shape (exactly these
//! members), its `\n`, its length, its holder DID, and that
//! `credential_id` is its credential's. A file with one bad line is
//! refused whole, naming the line.

use std::io::BufRead;

use serde::Deserialize;
use vouch_core::manifest::credential_id;
use vouch_core::{AnchorProof, DidKey};

/// Longest line accepted: a credential at the SD-JWT size limit, with its
/// anchor proof and the other members.
pub const MAX_LINE_BYTES: usize = vouch_core::sd_jwt::MAX_SD_JWT_BYTES + 64 * 1024;

/// One line of the archive. `row` and `file` are required (the shape is
/// checked) but not used for import.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    #[allow(dead_code)]
    row: u64,
    credential_id: String,
    #[allow(dead_code)]
    file: String,
    holder: String,
    sd_jwt: String,
    anchor_proof: AnchorProof,
}

/// A credential of the archive that belongs to this wallet.
#[derive(Debug, Clone)]
pub struct ArchivedCredential {
    /// Its 1-based line.
    pub line: usize,
    /// The credential: compact SD-JWT as issued.
    pub sd_jwt: String,
    /// Its place in the anchored batch.
    pub anchor_proof: AnchorProof,
}

/// What [`read`] found: the credentials to import, and how many lines
/// were for other holders.
#[derive(Debug, Clone)]
pub struct ArchiveRead {
    /// The lines whose holder the wallet has.
    pub mine: Vec<ArchivedCredential>,
    /// Lines for other holders, skipped.
    pub skipped: usize,
}

/// Why an archive is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// The file cannot be read.
    #[error("reading it: {0}")]
    Io(#[source] std::io::Error),
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
        source: vouch_core::did::DidError,
    },
    /// A `credential_id` that is not the credential's.
    #[error("line {line}: credential_id is not the id of its sd_jwt")]
    CredentialId {
        /// 1-based line number.
        line: usize,
    },
    /// No lines at all.
    #[error("no credentials in it")]
    Empty,
}

/// Reads a whole archive from `reader`, checking every line; keeps the
/// lines whose holder `mine` accepts (given the holder's did:key text).
///
/// # Errors
/// [`ArchiveError`] naming the first bad line; then nothing is kept.
pub fn read(
    reader: impl BufRead,
    mine: impl Fn(&str) -> bool,
) -> Result<ArchiveRead, ArchiveError> {
    let mut reader = reader.take(0);
    let mut found = ArchiveRead {
        mine: Vec::new(),
        skipped: 0,
    };
    let mut bytes = Vec::new();
    for line in 1.. {
        bytes.clear();
        reader.set_limit(MAX_LINE_BYTES as u64 + 1);
        if reader
            .read_until(b'\n', &mut bytes)
            .map_err(ArchiveError::Io)?
            == 0
        {
            if line == 1 {
                return Err(ArchiveError::Empty);
            }
            break;
        }
        if bytes.pop() != Some(b'\n') {
            return Err(if bytes.len() >= MAX_LINE_BYTES {
                ArchiveError::TooLong { line }
            } else {
                ArchiveError::Truncated { line }
            });
        }
        let parsed: Line =
            serde_json::from_slice(&bytes).map_err(|source| ArchiveError::Json { line, source })?;
        DidKey::parse(&parsed.holder).map_err(|source| ArchiveError::Holder { line, source })?;
        if credential_id(&parsed.sd_jwt) != parsed.credential_id {
            return Err(ArchiveError::CredentialId { line });
        }
        if mine(&parsed.holder) {
            found.mine.push(ArchivedCredential {
                line,
                sd_jwt: parsed.sd_jwt,
                anchor_proof: parsed.anchor_proof,
            });
        } else {
            found.skipped += 1;
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vouch_core::log::Hash;

    const MINE: &str = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
    const OTHER: &str = "did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG";
    const SD_JWT: &str = "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2ln~WyJzIiwiYSIsMV0~";

    fn line(row: u64, holder: &str) -> String {
        let proof = AnchorProof::new(3, row - 1, 4, vec![Hash([7; 32]); 2]).unwrap();
        let text = serde_json::json!({
            "row": row,
            "credential_id": credential_id(SD_JWT),
            "file": format!("{row:06}-x.sd-jwt"),
            "holder": holder,
            "sd_jwt": SD_JWT,
            "anchor_proof": proof,
        });
        format!("{text}\n")
    }

    fn run(text: &str) -> Result<ArchiveRead, ArchiveError> {
        read(std::io::Cursor::new(text.as_bytes().to_vec()), |h| {
            h == MINE
        })
    }

    #[test]
    fn keeps_this_wallets_lines_and_counts_the_others() {
        let text = line(1, MINE) + &line(2, OTHER) + &line(3, MINE);
        let found = run(&text).unwrap();
        assert_eq!(found.skipped, 1);
        let lines: Vec<usize> = found.mine.iter().map(|c| c.line).collect();
        assert_eq!(lines, [1, 3]);
        assert_eq!(found.mine[1].sd_jwt, SD_JWT);
        assert_eq!(found.mine[1].anchor_proof.leaf_index(), 2);
    }

    #[test]
    fn fail_a_broken_line_names_it_and_keeps_nothing() {
        let good = line(1, MINE);
        let cases = [
            ("not json\n".to_owned(), "line 2: not an archive line"),
            (
                line(2, MINE).replacen('{', "{\"extra\":1,", 1),
                "line 2: not an archive line",
            ),
            (
                line(2, MINE).replacen("\"row\":2,", "", 1),
                "line 2: not an archive line",
            ),
            (line(2, "did:key:zBad"), "line 2: holder:"),
            (
                line(2, MINE).replacen("\"credential_id\":\"", "\"credential_id\":\"0", 1),
                "line 2: credential_id",
            ),
            (line(2, MINE).trim_end().to_owned(), "line 2: cut short"),
        ];
        for (bad, want) in cases {
            let e = run(&(good.clone() + &bad)).unwrap_err().to_string();
            assert!(e.starts_with(want), "{bad:?}: {e}");
        }
        let long = format!("{{\"row\":\"{}\"}}\n", "x".repeat(MAX_LINE_BYTES));
        assert!(matches!(
            run(&(good + &long)),
            Err(ArchiveError::TooLong { line: 2 })
        ));
        assert!(matches!(run(""), Err(ArchiveError::Empty)));
    }
}

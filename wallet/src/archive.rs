//! An issuer's JSON Lines archive (`credentials.jsonl`, from
//! `vouch-issuer issue --output-format jsonl`), read for import: one
//! credential per line with its holder and anchor proof,
//!
//! ```json
//! {"row": 17, "credential_id": "…", "file": "000017-….sd-jwt",
//!  "holder": "did:key:z6Mk…", "sd_jwt": "…~", "anchor_proof": {…}}
//! ```
//!
//! (the format [`vouch_core::archive`] documents, which reads the lines).
//! Every line is checked before any is used: its shape (exactly these
//! members), its `\n`, its length, its holder DID, and that
//! `credential_id` is its credential's. A file with one bad line is
//! refused whole, naming the line.

use std::io::BufRead;

use vouch_core::AnchorProof;

pub use vouch_core::archive::{ArchiveError, MAX_LINE_BYTES};

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

/// Reads a whole archive from `reader`, checking every line; keeps the
/// lines whose holder `mine` accepts (given the holder's did:key text).
///
/// # Errors
/// [`ArchiveError`] naming the first bad line; then nothing is kept.
pub fn read(
    reader: impl BufRead + Send + 'static,
    mine: impl Fn(&str) -> bool,
) -> Result<ArchiveRead, ArchiveError> {
    let mut found = ArchiveRead {
        mine: Vec::new(),
        skipped: 0,
    };
    for (i, line) in vouch_core::archive::Lines::new(reader).enumerate() {
        let line = line?;
        if mine(&line.holder) {
            found.mine.push(ArchivedCredential {
                line: i + 1,
                sd_jwt: line.sd_jwt,
                anchor_proof: line.anchor_proof,
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
    use vouch_core::manifest::credential_id;

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

//! The JSON Lines archive ([`crate::archive`]) written once. While the
//! batch is signed, each line goes to `OUT/.credentials.<batch>.jsonl.tmp`
//! ([`pending_path`]: one per batch, so batches sharing an output
//! directory never touch each other's) whole
//! but for its anchor proof: in its place a slot, `null` and then spaces,
//! as wide as the longest proof any credential of the batch can have
//! ([`Slots::for_batch`]). That file is the batch's pending record (synced
//! before the anchor entry is saved; a resumed batch reads it again,
//! [`read_pending`]). Once the batch is anchored, each proof is written
//! into its slot where it lies in the file ([`fill`]), the file synced and
//! renamed to `OUT/credentials.jsonl`. A line then reads as any archive
//! line: the spaces after the proof are JSON whitespace before its `}`.

use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vouch_core::manifest::ManifestEntry;
use vouch_core::AnchorProof;

use super::journal::{next_line, replace, Writeback};
use super::{io, IssuerError};

/// The pending lines' one name in an output directory before it named
/// their batch (read on resume, [`super::batch`], and only moved once its
/// lines are the batch's).
pub(super) const LEGACY_NAME: &str = ".credentials.jsonl.tmp";

/// A pending file's name: this, the batch id, then [`PENDING_SUFFIX`].
const PENDING_PREFIX: &str = ".credentials.";
/// The end of a pending file's name.
const PENDING_SUFFIX: &str = ".jsonl.tmp";

/// Where batch `batch`'s pending lines wait in the output directory `out`.
pub(super) fn pending_path(out: &Path, batch: &str) -> PathBuf {
    out.join(format!("{PENDING_PREFIX}{batch}{PENDING_SUFFIX}"))
}

/// Whether `name` is some batch's pending lines ([`pending_path`], or the
/// earlier shared [`LEGACY_NAME`]).
pub(super) fn is_pending_name(name: &str) -> bool {
    name.starts_with(PENDING_PREFIX) && name.ends_with(PENDING_SUFFIX)
}

/// What comes before a line's slot: its last member's name.
const MEMBER: &[u8] = b",\"anchor_proof\":";

/// Longest base64 hash of an audit path, with its quotes and comma.
const PATH_HASH: usize = 44 + 3;

/// The part of a line known while signing, in the archive's member order,
/// but for `sd_jwt` (written after it, [`json_string`]).
#[derive(Serialize)]
struct Head<'a> {
    row: u64,
    credential_id: &'a str,
    file: &'a str,
    holder: &'a str,
}

/// Appends `text` as a JSON string, as `serde_json` writes it. A
/// credential (base64url, `.` and `~`) has nothing to escape: that is
/// checked in one pass the compiler vectorises, and the text copied;
/// anything else goes through `serde_json`.
fn json_string(out: &mut Vec<u8>, text: &str) -> Result<(), serde_json::Error> {
    // What `serde_json` escapes: control characters, `"` and `\`.
    let plain = text.bytes().fold(true, |plain, b| {
        plain & (b >= 0x20 && b != b'"' && b != b'\\')
    });
    if plain {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(out, text)
    }
}

/// Appends `proof` as `serde_json` writes it (compact): its numbers and
/// its path's hashes in standard base64, nothing to escape.
fn proof_json(out: &mut Vec<u8>, proof: &AnchorProof) {
    use base64::Engine as _;
    let number = |out: &mut Vec<u8>, name: &[u8], n: u64| {
        out.extend_from_slice(name);
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = n;
        loop {
            at -= 1;
            // A digit: below 10.
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(&digits[at..]);
    };
    number(out, b"{\"entry_index\":", proof.entry_index());
    number(out, b",\"leaf_index\":", proof.leaf_index());
    number(out, b",\"batch_size\":", proof.batch_size());
    out.extend_from_slice(b",\"path\":[");
    let mut b64 = [0u8; 44];
    for (i, hash) in proof.path().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        // 32 bytes are always 44 characters of padded base64: it fits.
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(hash.0, &mut b64)
            .unwrap_or_default();
        out.extend_from_slice(&b64[..n]);
        out.push(b'"');
    }
    out.extend_from_slice(b"]}");
}

/// A pending line read back: the members known while signing. Its slot
/// (`null`, a proof if an earlier run got that far, or part of one if that
/// run stopped while writing it) is read as `null`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PendingLine {
    /// The CSV data row.
    pub(super) row: u64,
    /// Its credential id, as written.
    pub(super) credential_id: String,
    /// Its manifest file name.
    pub(super) file: String,
    /// The holder's did:key.
    pub(super) holder: String,
    /// The credential.
    pub(super) sd_jwt: String,
    /// The slot, read as `null` and ignored.
    #[serde(rename = "anchor_proof")]
    _anchor_proof: serde::de::IgnoredAny,
}

/// The slot width of a batch's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slots {
    width: usize,
}

impl Slots {
    /// Wide enough for the anchor proof of any credential of a batch of
    /// `size`: an entry index of 20 digits, leaf index and batch size as
    /// long as `size`, and an audit path of `⌈log2 size⌉` hashes (the
    /// longest RFC 9162 gives in a tree of `size` leaves).
    pub(super) fn for_batch(size: u64) -> Self {
        let levels = (u64::BITS - size.saturating_sub(1).leading_zeros()) as usize;
        let digits = size.to_string().len();
        let frame = r#"{"entry_index":,"leaf_index":,"batch_size":,"path":[]}"#.len();
        Self {
            width: frame + u64::MAX.to_string().len() + 2 * digits + levels * PATH_HASH,
        }
    }

    /// Appends a pending line (its `\n` included) to `line`; returns where
    /// its slot starts there.
    ///
    /// # Errors
    /// [`IssuerError::Io`] on `path`, should `serde_json` fail to write
    /// into memory.
    #[allow(clippy::too_many_arguments)] // The line's members, named.
    pub(super) fn line(
        self,
        line: &mut Vec<u8>,
        path: &Path,
        row: u64,
        credential_id: &str,
        file: &str,
        holder: &str,
        sd_jwt: &str,
    ) -> Result<usize, IssuerError> {
        let head = Head {
            row,
            credential_id,
            file,
            holder,
        };
        line.reserve(sd_jwt.len() + 256 + self.width);
        serde_json::to_writer(&mut *line, &head)
            .and_then(|()| {
                // The object's closing brace: the other members go before it.
                line.pop();
                line.extend_from_slice(b",\"sd_jwt\":");
                json_string(line, sd_jwt)
            })
            .map_err(|e| io(path)(std::io::Error::from(e)))?;
        line.extend_from_slice(MEMBER);
        let slot = line.len();
        line.extend_from_slice(b"null");
        line.resize(slot + self.width, b' ');
        line.extend_from_slice(b"}\n");
        Ok(slot)
    }

    /// The longest pending line of this width, its `\n` included: an
    /// archive line at its longest and a slot.
    fn max_line(self) -> usize {
        crate::archive::MAX_LINE_BYTES + self.width + 1
    }

    /// Where the slot of a pending line (without its `\n`) starts, if the
    /// line ends with a slot of this width.
    fn find(self, line: &[u8]) -> Option<usize> {
        let body = line.strip_suffix(b"}")?;
        let slot = body.len().checked_sub(self.width)?;
        body[..slot].ends_with(MEMBER).then_some(slot)
    }
}

/// The pending lines at `path` of a batch of `rows` rows, each with the
/// offset of its slot in the file, one at a time. Each line is read up to
/// the longest a batch writes, and no more lines than `rows`.
///
/// # Errors
/// [`IssuerError::Io`] when it cannot be opened; each item
/// [`IssuerError::Io`], [`IssuerError::PendingLine`] for a line that is not
/// a pending line, [`IssuerError::PendingLong`] for one longer than any,
/// [`IssuerError::PendingExtra`] for a line past the batch's rows, or
/// [`IssuerError::ArchiveChanged`] for one cut short or whose slot is not
/// the batch's.
pub(super) fn read_pending(
    path: &Path,
    slots: Slots,
    rows: usize,
) -> Result<impl Iterator<Item = Result<(PendingLine, u64), IssuerError>> + '_, IssuerError> {
    let file = std::fs::File::open(path).map_err(io(path))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let (mut at, mut number) = (0u64, 0usize);
    let mut bytes = Vec::new();
    let mut failed = false;
    Ok(std::iter::from_fn(move || {
        if failed {
            return None;
        }
        let next = match next_line(
            &mut reader,
            &mut bytes,
            path,
            number + 1,
            slots.max_line(),
            rows,
        ) {
            Ok(false) => return None,
            Ok(true) => {
                number += 1;
                let start = at;
                at += bytes.len() as u64;
                pending_line(path, &mut bytes, number, start, slots)
            }
            Err(e) => Err(e),
        };
        failed = next.is_err();
        Some(next)
    }))
}

/// One pending line read back (`bytes` with its `\n`, overwritten), starting
/// at `start` in the file. Its slot is found first, then what comes before
/// it parsed with `null` in its place: whatever the slot holds (`fill`
/// writes every slot whole again).
fn pending_line(
    path: &Path,
    bytes: &mut Vec<u8>,
    number: usize,
    start: u64,
    slots: Slots,
) -> Result<(PendingLine, u64), IssuerError> {
    let changed = || IssuerError::ArchiveChanged {
        path: path.to_owned(),
    };
    let line = bytes.strip_suffix(b"\n").ok_or_else(changed)?;
    let slot = slots.find(line).ok_or_else(changed)?;
    bytes.truncate(slot);
    bytes.extend_from_slice(b"null}");
    let parsed: PendingLine =
        serde_json::from_slice(bytes).map_err(|source| IssuerError::PendingLine {
            path: path.to_owned(),
            line: number,
            source,
        })?;
    Ok((parsed, start + slot as u64))
}

/// Writes each entry's anchor proof into its slot (`offsets`, in entry
/// order) of the pending lines at `tmp`, syncs them and renames them to
/// `path`.
///
/// # Errors
/// [`IssuerError::Io`]; [`IssuerError::ArchiveCount`] when there are not
/// as many slots as entries; [`IssuerError::Slot`] for a proof wider than
/// its slot.
pub(super) fn fill(
    tmp: &Path,
    path: &Path,
    slots: Slots,
    offsets: &[u64],
    entries: &[ManifestEntry],
) -> Result<(), IssuerError> {
    let proofs = entries.iter().map(|e| Ok((e.row, &e.anchor_proof)));
    fill_with(tmp, slots, offsets, entries.len(), proofs)?;
    replace(tmp, path)
}

/// As [`fill`], with the `count` proofs (each with its row) taken from
/// `proofs`, in entry order, as they are written (they may be made
/// there); `tmp` is synced, not renamed.
///
/// # Errors
/// As [`fill`], and the first error of `proofs`.
pub(super) fn fill_with<P: std::borrow::Borrow<AnchorProof>>(
    tmp: &Path,
    slots: Slots,
    offsets: &[u64],
    count: usize,
    proofs: impl Iterator<Item = Result<(u64, P), IssuerError>>,
) -> Result<(), IssuerError> {
    if offsets.len() != count {
        return Err(IssuerError::ArchiveCount {
            path: tmp.to_owned(),
            found: offsets.len(),
            want: count,
        });
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(tmp)
        .map_err(io(tmp))?;
    // A slot every 5-6 kB (a 100k batch's file is 549 MB): most of the
    // file's pages are written back again, most while later slots are
    // filled.
    let mut writeback = Writeback::start(&file, tmp)?;
    let mut proof = Vec::with_capacity(slots.width);
    let mut written = 0;
    for (made, &at) in proofs.zip(offsets) {
        written += 1;
        let (row, made) = made?;
        proof.clear();
        proof_json(&mut proof, made.borrow());
        if proof.len() > slots.width {
            return Err(IssuerError::Slot {
                row,
                width: slots.width,
            });
        }
        proof.resize(slots.width, b' ');
        file.write_all_at(&proof, at).map_err(io(tmp))?;
        writeback.wrote(at)?;
    }
    // A slot left empty would read as a credential without its proof.
    if written != count {
        return Err(IssuerError::ArchiveCount {
            path: tmp.to_owned(),
            found: written,
            want: count,
        });
    }
    writeback.finish(&file)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use vouch_core::log::Hash;

    const HOLDER: &str = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";
    const SD_JWT: &str = "eyJhbGciOiJFZERTQSJ9.eyJpc3MiOiJ4In0.c2ln~WyJzIiwiYSIsMV0~";

    /// The longest proof of each leaf of batches of many sizes (entry
    /// index `u64::MAX`) fits the slot, and the slot is no wider than the
    /// longest by more than the entry index's digits.
    #[test]
    fn every_proof_of_a_batch_fits_its_slot() {
        for size in (1..=70u64).chain([1000, 65_536, 65_537, 100_000]) {
            let slots = Slots::for_batch(size);
            let mut widest = 0;
            let leaves: Vec<u64> = if size <= 70 {
                (0..size).collect()
            } else {
                vec![0, size / 2, size - 2, size - 1]
            };
            for leaf in leaves {
                let proof = (0..=64)
                    .find_map(|n| {
                        AnchorProof::new(u64::MAX, leaf, size, vec![Hash([0xff; 32]); n]).ok()
                    })
                    .unwrap();
                let text = serde_json::to_vec(&proof).unwrap();
                let mut written = Vec::new();
                proof_json(&mut written, &proof);
                assert_eq!(written, text);
                assert!(text.len() <= slots.width, "{size} {leaf}");
                widest = widest.max(text.len());
            }
            assert!(
                slots.width - widest <= 2 + 47,
                "{size}: {} {widest}",
                slots.width
            );
        }
    }

    /// An anchor proof is written as `serde_json` writes it: numbers of
    /// every length, paths of every length (none included), every
    /// base64 digit.
    #[test]
    fn proofs_are_written_as_serde_writes_them() {
        let hashes: Vec<Hash> = (0..=255u8)
            .step_by(7)
            .map(|b| Hash([b.wrapping_mul(37); 32]))
            .collect();
        for (entry, leaf, size) in [
            (0, 0, 1),
            (9, 1, 2),
            (10, 99, 100),
            (u64::MAX, 12_345, 100_000),
            (1 << 40, (1 << 40) - 1, 1 << 40),
        ] {
            let path = (0..=64)
                .find_map(|n| {
                    let path: Vec<Hash> = hashes.iter().cycle().take(n).copied().collect();
                    AnchorProof::new(entry, leaf, size, path).ok()
                })
                .unwrap();
            let mut written = Vec::new();
            proof_json(&mut written, &path);
            assert_eq!(written, serde_json::to_vec(&path).unwrap());
        }
    }

    /// A credential is written as `serde_json` writes it, escaped or not.
    #[test]
    fn json_strings_are_serde_jsons() {
        for text in [SD_JWT, "", "a\"b\\c\nd\u{1}e\u{7f}é~"] {
            let mut out = Vec::new();
            json_string(&mut out, text).unwrap();
            assert_eq!(out, serde_json::to_vec(text).unwrap(), "{text:?}");
        }
    }

    /// A pending line parses as an archive line once its slot is filled,
    /// reads back with its slot, and a line changed or cut short is
    /// refused.
    #[test]
    fn a_filled_line_reads_as_an_archive_line() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = pending_path(dir.path(), "b1");
        let path = dir.path().join("credentials.jsonl");
        let slots = Slots::for_batch(4);
        let id = vouch_core::manifest::credential_id(SD_JWT);
        let offsets = pending(&tmp, slots);
        for line in std::fs::read_to_string(&tmp).unwrap().lines() {
            assert!(serde_json::from_str::<serde_json::Value>(line).is_ok());
        }
        let read: Vec<(PendingLine, u64)> = read_pending(&tmp, slots, 4)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(read.iter().map(|r| r.1).collect::<Vec<_>>(), offsets);
        assert_eq!(read[3].0.row, 4);
        assert_eq!(read[3].0.sd_jwt, SD_JWT);
        assert_eq!(read[3].0.holder, HOLDER);
        assert_eq!(read[3].0.credential_id, id);

        // Fewer proofs than slots: refused, not a file with empty slots.
        let entries = entries(12_345);
        let short = entries[..3].iter().map(|e| Ok((e.row, &e.anchor_proof)));
        assert!(matches!(
            fill_with(&tmp, slots, &offsets, 4, short),
            Err(IssuerError::ArchiveCount {
                found: 3,
                want: 4,
                ..
            })
        ));

        // Filled: every line reads with the archive's reader, its proof
        // as given; the file is at its name and the pending one gone.
        fill(&tmp, &path, slots, &offsets, &entries).unwrap();
        assert!(!tmp.exists());
        let lines: Vec<crate::archive::ArchiveLine> = crate::archive::read(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines.len(), 4);
        for (line, entry) in lines.iter().zip(&entries) {
            assert_eq!(line.anchor_proof, entry.anchor_proof);
            assert_eq!(line.row, entry.row);
            assert_eq!(line.sd_jwt, SD_JWT);
        }
        // Filled lines still read back as pending ones (a resume after a
        // crash while filling).
        assert_eq!(read_pending(&path, slots, 4).unwrap().count(), 4);

        // Refused: fewer slots than entries; a line cut short; a slot of
        // another width; a line that is not a pending line.
        assert!(matches!(
            fill(&path, &tmp, slots, &offsets[..3], &entries),
            Err(IssuerError::ArchiveCount {
                found: 3,
                want: 4,
                ..
            })
        ));
        let whole = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
        let broken = [
            whole[..whole.len() - 1].to_owned(),
            // The first line's row no number, its slot in place.
            whole.replacen("{\"row\":1,", "{\"row\":\"1\",", 1),
            whole.replacen(" }\n", "}\n", 1),
            // A fifth line.
            format!("{whole}{}", whole.lines().next().unwrap()),
        ];
        for (i, text) in broken.iter().enumerate() {
            std::fs::write(&tmp, text).unwrap();
            let read: Vec<_> = read_pending(&tmp, slots, 4).unwrap().collect();
            let last = read.last().unwrap();
            match i {
                1 => assert!(
                    matches!(last, Err(IssuerError::PendingLine { line: 1, .. })),
                    "{last:?}"
                ),
                3 => assert!(
                    matches!(last, Err(IssuerError::PendingExtra { rows: 4, .. })),
                    "{last:?}"
                ),
                _ => assert!(
                    matches!(last, Err(IssuerError::ArchiveChanged { .. })),
                    "{i}: {last:?}"
                ),
            }
        }
    }

    /// Pending lines of a batch of 4 rows, written to `tmp`; their slots'
    /// offsets.
    fn pending(tmp: &Path, slots: Slots) -> Vec<u64> {
        let id = vouch_core::manifest::credential_id(SD_JWT);
        let (mut text, mut offsets) = (Vec::new(), Vec::new());
        for row in 1..=4u64 {
            let file = format!("{row:06}-{id}.sd-jwt");
            let slot = slots
                .line(&mut text, tmp, row, &id, &file, HOLDER, SD_JWT)
                .unwrap();
            offsets.push(slot as u64);
        }
        std::fs::write(tmp, &text).unwrap();
        offsets
    }

    /// Pending files are known by name, under this layout's name and the
    /// earlier shared one; the archive and the manifest are not.
    #[test]
    fn pending_files_are_known_by_name() {
        let path = pending_path(Path::new("out"), "b1");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(is_pending_name(name));
        assert!(is_pending_name(LEGACY_NAME));
        for other in [
            "credentials.jsonl",
            "manifest.json",
            ".credentials.jsonl.b1.tmp",
        ] {
            assert!(!is_pending_name(other), "{other}");
        }
    }

    /// The manifest entries of [`pending`]'s 4 rows, anchored by chain
    /// entry `entry_index`.
    fn entries(entry_index: u64) -> Vec<ManifestEntry> {
        let holder = vouch_core::DidKey::parse(HOLDER).unwrap();
        let id = vouch_core::manifest::credential_id(SD_JWT);
        (0..4u64)
            .map(|i| ManifestEntry {
                row: i + 1,
                holder: holder.clone(),
                credential_id: id.clone(),
                file: format!("{:06}-{id}.sd-jwt", i + 1),
                status: vouch_core::status_list::StatusRef {
                    idx: i,
                    uri: "https://example.com/status/1".into(),
                },
                qr: None,
                anchor_proof: AnchorProof::new(entry_index, i, 4, vec![Hash([i as u8; 32]); 2])
                    .unwrap(),
            })
            .collect()
    }

    /// A slot left torn by a crash while filling (half a proof, the rest
    /// `null` and spaces), or edited to hold other JSON, is read as `null`
    /// and written whole again: the lines fill into archive lines.
    #[test]
    fn a_torn_or_edited_slot_reads_and_fills_whole() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = pending_path(dir.path(), "b1");
        let path = dir.path().join("credentials.jsonl");
        let slots = Slots::for_batch(4);
        let offsets = pending(&tmp, slots);
        let proof = AnchorProof::new(7, 1, 4, vec![Hash([1; 32]); 2]).unwrap();
        let text = serde_json::to_vec(&proof).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&tmp).unwrap();
        file.write_all_at(&text[..text.len() / 2], offsets[1])
            .unwrap();
        file.write_all_at(b"null,\"x\":1", offsets[2]).unwrap();
        file.write_all_at(b"\"text\"", offsets[3]).unwrap();
        drop(file);
        // Before: the torn line is no JSON.
        let torn = std::fs::read_to_string(&tmp).unwrap();
        assert!(torn
            .lines()
            .nth(1)
            .is_some_and(|l| serde_json::from_str::<serde_json::Value>(l).is_err()));
        let read: Vec<(PendingLine, u64)> = read_pending(&tmp, slots, 4)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(read.iter().map(|r| r.1).collect::<Vec<_>>(), offsets);
        assert!(read.iter().all(|r| r.0.sd_jwt == SD_JWT));
        let entries = entries(9);
        fill(&tmp, &path, slots, &offsets, &entries).unwrap();
        let lines: Vec<crate::archive::ArchiveLine> = crate::archive::read(&path)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(lines.len(), 4);
        for (line, entry) in lines.iter().zip(&entries) {
            assert_eq!(line.anchor_proof, entry.anchor_proof);
        }
    }

    /// A line longer than any pending line (no newline in sight) is
    /// refused once that much is read, not read whole.
    #[test]
    fn an_over_long_pending_line_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tmp = pending_path(dir.path(), "b1");
        let slots = Slots::for_batch(4);
        pending(&tmp, slots);
        let mut text = std::fs::read(&tmp).unwrap();
        text.resize(text.len() + slots.max_line() + 4096, b'x');
        std::fs::write(&tmp, &text).unwrap();
        let read: Vec<_> = read_pending(&tmp, slots, 5).unwrap().collect();
        assert_eq!(read.len(), 5);
        assert!(read[..4].iter().all(Result::is_ok));
        let max = slots.max_line();
        assert!(
            matches!(&read[4], Err(IssuerError::PendingLong { line: 5, max: m, .. }) if *m == max),
            "{:?}",
            read[4]
        );
    }
}

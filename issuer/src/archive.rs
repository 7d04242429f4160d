//! The JSON Lines archive output of a batch (`--output-format jsonl`): the
//! format is [`vouch_core::archive`]'s (re-exported here); this module opens
//! the file.

use std::path::Path;

pub use vouch_core::archive::{
    ArchiveError, ArchiveLine, ArchiveLineRef, Lines, FILE_NAME, MAX_LINE_BYTES,
};

/// Reads the archive at `path` line by line (one line in memory at a time).
///
/// # Errors
/// [`ArchiveError::Io`] when the file cannot be opened; each item is the
/// next line or why it is refused (reading stops after the first error).
pub fn read(path: &Path) -> Result<Lines, ArchiveError> {
    let file = std::fs::File::open(path).map_err(ArchiveError::Io)?;
    Ok(Lines::new(std::io::BufReader::with_capacity(1 << 20, file)))
}

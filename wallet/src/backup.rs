//! Backups: the whole wallet as one file in the age format, encrypted under
//! a passphrase (age's scrypt recipient). Inside is a JSON snapshot: the
//! recovery phrase and every record (credentials with their ids and anchor
//! proofs, keys handed out, activity, settings). Restoring it into an empty
//! directory gives the same wallet: the same list, the same presentations.

use std::io::{Read as _, Write as _};

use age::secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// Format marker inside the encrypted file.
pub const FORMAT: &str = "vouch-wallet-backup/1";
/// Largest backup file read.
pub const MAX_BACKUP_BYTES: u64 = 256 << 20;
/// scrypt work factor written (N = 2^18: 256 MiB, about a second).
pub const WORK_FACTOR: u8 = 18;
/// Largest scrypt work factor accepted when reading (N = 2^20: 1 GiB): a
/// hostile file cannot ask for hours of work or tens of GiB.
pub const MAX_WORK_FACTOR: u8 = 20;

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// Not an age file, or not one encrypted under a passphrase.
    #[error("not a wallet backup (age, passphrase-encrypted): {0}")]
    Format(String),
    /// The passphrase does not open it, or it was altered.
    #[error("wrong backup passphrase, or the backup was altered")]
    WrongPassphrase,
    /// The passphrase opens it, but what follows was cut short or altered.
    #[error(
        "the backup opens with this passphrase, but it was cut short or altered after its header"
    )]
    Damaged,
    /// Larger than [`MAX_BACKUP_BYTES`].
    #[error("the backup is larger than {MAX_BACKUP_BYTES} bytes")]
    TooLarge,
    /// It decrypts, but the snapshot inside does not parse.
    #[error("the backup's contents do not parse: {0}")]
    Contents(#[source] serde_json::Error),
    /// Another format version.
    #[error("backup format {0:?} is not {FORMAT:?}")]
    Version(String),
    /// I/O while encrypting or decrypting.
    #[error("backup I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// One record of a snapshot: its table letter, id (hex) and JSON value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordCopy {
    /// Table letter (`c`, `k`, `a`, `s`).
    pub table: char,
    /// The record id, hex.
    pub id: String,
    /// The record.
    pub value: serde_json::Value,
}

/// What a backup holds. Its `Debug` leaves the phrase out.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// [`FORMAT`].
    pub format: String,
    /// The recovery phrase, words separated by spaces.
    pub phrase: String,
    /// Every record but the phrase.
    pub records: Vec<RecordCopy>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("format", &self.format)
            .field("phrase", &"(hidden)")
            .field("records", &self.records.len())
            .finish()
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.phrase);
    }
}

/// Encrypts `snapshot` under `passphrase`.
///
/// # Errors
/// [`BackupError::Io`] (writing to memory does not fail in practice).
pub fn seal(snapshot: &Snapshot, passphrase: &str) -> Result<Vec<u8>, BackupError> {
    let mut recipient = age::scrypt::Recipient::new(SecretString::from(passphrase.to_owned()));
    recipient.set_work_factor(WORK_FACTOR);
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .map_err(|e| BackupError::Format(e.to_string()))?;
    let json =
        zeroize::Zeroizing::new(serde_json::to_vec(snapshot).map_err(BackupError::Contents)?);
    let mut out = Vec::with_capacity(json.len() + 256);
    let mut writer = encryptor.wrap_output(&mut out)?;
    writer.write_all(&json)?;
    writer.finish()?;
    Ok(out)
}

/// Decrypts and parses a backup.
///
/// # Errors
/// [`BackupError`] naming what is wrong; nothing is written anywhere.
pub fn open(bytes: &[u8], passphrase: &str) -> Result<Snapshot, BackupError> {
    if bytes.len() as u64 > MAX_BACKUP_BYTES {
        return Err(BackupError::TooLarge);
    }
    let decryptor = age::Decryptor::new(bytes).map_err(|e| BackupError::Format(e.to_string()))?;
    if !decryptor.is_scrypt() {
        return Err(BackupError::Format(
            "not encrypted under a passphrase".into(),
        ));
    }
    let mut identity = age::scrypt::Identity::new(SecretString::from(passphrase.to_owned()));
    identity.set_max_work_factor(MAX_WORK_FACTOR);
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|e| match e {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                BackupError::WrongPassphrase
            }
            other => BackupError::Format(other.to_string()),
        })?;
    let mut json = zeroize::Zeroizing::new(Vec::new());
    reader
        .by_ref()
        .take(MAX_BACKUP_BYTES * 2)
        .read_to_end(&mut json)
        // The header's MAC checked the passphrase; the payload did not read.
        .map_err(|_| BackupError::Damaged)?;
    let mut snapshot: Snapshot = serde_json::from_slice(&json).map_err(BackupError::Contents)?;
    if snapshot.format != FORMAT {
        return Err(BackupError::Version(std::mem::take(&mut snapshot.format)));
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn snapshot() -> Snapshot {
        Snapshot {
            format: FORMAT.into(),
            phrase: "abandon ability able".into(),
            records: vec![RecordCopy {
                table: 's',
                id: "00".into(),
                value: serde_json::json!("x".repeat(200_000)),
            }],
        }
    }

    #[test]
    fn fail_a_wrong_passphrase_and_a_cut_backup_are_told_apart() {
        let bytes = seal(&snapshot(), "pass").unwrap();
        assert!(matches!(
            open(&bytes, "other"),
            Err(BackupError::WrongPassphrase)
        ));
        let cut = &bytes[..bytes.len() - 100];
        assert!(matches!(open(cut, "pass"), Err(BackupError::Damaged)));
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(matches!(open(&flipped, "pass"), Err(BackupError::Damaged)));
        assert_eq!(open(&bytes, "pass").unwrap().records.len(), 1);
    }

    #[test]
    fn a_snapshots_debug_leaves_the_phrase_out() {
        let shown = format!("{:?}", snapshot());
        assert!(!shown.contains("abandon"), "{shown}");
    }
}

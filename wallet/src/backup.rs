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

/// What a backup holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// [`FORMAT`].
    pub format: String,
    /// The recovery phrase, words separated by spaces.
    pub phrase: String,
    /// Every record but the phrase.
    pub records: Vec<RecordCopy>,
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
        .map_err(|_| BackupError::WrongPassphrase)?;
    let snapshot: Snapshot = serde_json::from_slice(&json).map_err(BackupError::Contents)?;
    if snapshot.format != FORMAT {
        return Err(BackupError::Version(snapshot.format));
    }
    Ok(snapshot)
}

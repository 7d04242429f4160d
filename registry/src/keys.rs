//! Key files: the 32-byte Ed25519 seed in hex, one line, mode 0600.
//!
//! Node, authority and witness keys are service keys kept like SSH host
//! keys: readable by the service account only. Issuer keys use the issuer's
//! encrypted keystore instead.

use std::io::{self, Write as _};
use std::path::Path;

use ed25519_dalek::SigningKey;

/// Writes `key` to a new file at `path` (never overwrites).
///
/// # Errors
/// I/O errors; `AlreadyExists` when the file exists.
pub fn write(path: &Path, key: &SigningKey) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{}", hex::encode(key.to_bytes()))?;
    file.sync_all()
}

/// Reads a key file written by [`write()`].
///
/// # Errors
/// I/O errors; `InvalidData` when it is not 64 hex digits.
pub fn read(path: &Path) -> io::Result<SigningKey> {
    let text = std::fs::read_to_string(path)?;
    let bytes = hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "not a key file (expected 64 hex digits)",
            )
        })?;
    Ok(SigningKey::from_bytes(&bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let key = SigningKey::from_bytes(&[9; 32]);
        write(&path, &key).unwrap();
        assert_eq!(read(&path).unwrap().to_bytes(), key.to_bytes());
        assert_eq!(
            write(&path, &key).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        std::fs::write(&path, "zz\n").unwrap();
        assert_eq!(read(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}

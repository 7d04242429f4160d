//! The issuer's key at rest: Argon2id turns the passphrase into a key that
//! encrypts the Ed25519 seed with XChaCha20-Poly1305. The file is JSON; the
//! DID and parameters are authenticated as associated data, so editing them
//! makes the file fail to open. The seed is never written in the clear.

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use vouch_core::seal::{Key, SealError};
use vouch_core::DidKey;
use zeroize::Zeroizing;

/// Argon2id cost: memory in KiB, passes, lanes (the one `vouch_core::seal`
/// bounds).
pub use vouch_core::seal::Cost;

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    did: String,
    kdf: String,
    cost: Cost,
    salt: String,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

/// Why a keystore could not be written or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// File I/O.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a keystore of ours.
    #[error("not a Vouch issuer keystore: {0}")]
    Malformed(String),
    /// The passphrase does not open it (or the file was altered).
    #[error("wrong passphrase (or the keystore file was altered)")]
    WrongPassphrase,
    /// An empty passphrase.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// A cost parameter outside the accepted bounds (checked before any
    /// key derivation).
    #[error("keystore cost {field} = {value} is outside {min}..={max} (the file was altered, or written by another version); not opened")]
    Cost {
        /// `m_kib`, `t` or `p`.
        field: &'static str,
        /// The value in the file.
        value: u32,
        /// Lowest accepted.
        min: u32,
        /// Highest accepted.
        max: u32,
    },
}

impl From<SealError> for KeystoreError {
    fn from(e: SealError) -> Self {
        match e {
            SealError::WrongKey => KeystoreError::WrongPassphrase,
            SealError::EmptyPassphrase => KeystoreError::EmptyPassphrase,
            SealError::Cost {
                field,
                value,
                min,
                max,
            } => KeystoreError::Cost {
                field,
                value,
                min,
                max,
            },
            other => KeystoreError::Malformed(other.to_string()),
        }
    }
}

/// Bytes of the XChaCha20-Poly1305 nonce at the front of a sealed box.
const NONCE: usize = 24;

fn aad(did: &str, cost: Cost) -> Vec<u8> {
    format!(
        "vouch-keystore/v1\n{did}\n{}:{}:{}",
        cost.m_kib, cost.t, cost.p
    )
    .into_bytes()
}

/// Writes `key` to a new keystore file at `path` (never overwrites).
///
/// # Errors
/// [`KeystoreError`] on I/O, an existing file, or an empty passphrase.
pub fn create(
    path: &Path,
    key: &SigningKey,
    passphrase: &str,
    cost: Cost,
    rng: &mut impl CryptoRngCore,
) -> Result<(), KeystoreError> {
    let did = DidKey::from_public_key(&key.verifying_key());
    let salt = vouch_core::seal::new_salt(rng);
    let k = Key::derive(passphrase, &salt, cost)?;
    let seed = Zeroizing::new(key.to_bytes());
    let sealed = k.seal(&aad(did.as_str(), cost), seed.as_ref(), rng);
    let (nonce, ciphertext) = sealed.split_at(NONCE);
    let file = File {
        version: 1,
        did: did.as_str().to_owned(),
        kdf: "argon2id".into(),
        cost,
        salt: STANDARD.encode(salt),
        cipher: "xchacha20poly1305".into(),
        nonce: STANDARD.encode(nonce),
        ciphertext: STANDARD.encode(ciphertext),
    };
    let json =
        serde_json::to_vec_pretty(&file).map_err(|e| KeystoreError::Malformed(e.to_string()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    use std::io::Write as _;
    let mut f = options.open(path)?;
    f.write_all(&json)?;
    f.sync_all()?;
    Ok(())
}

/// The DID a keystore holds, without opening it.
///
/// # Errors
/// [`KeystoreError`] when the file is not a keystore.
pub fn did_of(path: &Path) -> Result<String, KeystoreError> {
    let file: File = serde_json::from_slice(&std::fs::read(path)?)
        .map_err(|e| KeystoreError::Malformed(e.to_string()))?;
    Ok(file.did)
}

/// Opens a keystore with `passphrase`.
///
/// # Errors
/// [`KeystoreError::WrongPassphrase`] when it does not open.
pub fn open(path: &Path, passphrase: &str) -> Result<SigningKey, KeystoreError> {
    let file: File = serde_json::from_slice(&std::fs::read(path)?)
        .map_err(|e| KeystoreError::Malformed(e.to_string()))?;
    if file.version != 1 || file.kdf != "argon2id" || file.cipher != "xchacha20poly1305" {
        return Err(KeystoreError::Malformed(format!(
            "version {} with {} and {} is not supported",
            file.version, file.kdf, file.cipher
        )));
    }
    let b64 = |what: &str, s: &str| {
        STANDARD
            .decode(s)
            .map_err(|_| KeystoreError::Malformed(format!("{what} is not base64")))
    };
    file.cost.check()?;
    let salt = b64("salt", &file.salt)?;
    let nonce = b64("nonce", &file.nonce)?;
    if nonce.len() != NONCE {
        return Err(KeystoreError::Malformed("nonce is not 24 bytes".into()));
    }
    let sealed = [nonce, b64("ciphertext", &file.ciphertext)?].concat();
    let k = Key::derive(passphrase, &salt, file.cost)?;
    let seed = k.open(&aad(&file.did, file.cost), &sealed)?;
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .map_err(|_| KeystoreError::Malformed("key is not 32 bytes".into()))?;
    let key = SigningKey::from_bytes(&seed);
    if DidKey::from_public_key(&key.verifying_key()).as_str() != file.did {
        return Err(KeystoreError::Malformed(
            "key does not match its DID".into(),
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn round_trip_wrong_passphrase_and_tampering() {
        let dir = std::env::temp_dir().join(format!("vouch-ks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("issuer.keystore");
        let _ = std::fs::remove_file(&path);
        let key = SigningKey::from_bytes(&[3; 32]);
        let mut rng = StdRng::seed_from_u64(1);
        create(&path, &key, "correct horse", Cost::TEST, &mut rng).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(key.to_bytes())));
        assert!(!text.contains(&STANDARD.encode(key.to_bytes())));
        assert_eq!(
            open(&path, "correct horse").unwrap().to_bytes(),
            key.to_bytes()
        );
        assert!(matches!(
            open(&path, "wrong"),
            Err(KeystoreError::WrongPassphrase)
        ));
        assert!(
            create(&path, &key, "x", Cost::TEST, &mut rng).is_err(),
            "never overwrites"
        );
        assert!(matches!(
            create(&dir.join("e"), &key, "", Cost::TEST, &mut rng),
            Err(KeystoreError::EmptyPassphrase)
        ));
        // Another DID in the file: authenticated data no longer matches.
        let other = DidKey::from_public_key(&SigningKey::from_bytes(&[4; 32]).verifying_key());
        let did = did_of(&path).unwrap();
        std::fs::write(&path, text.replace(&did, other.as_str())).unwrap();
        assert!(matches!(
            open(&path, "correct horse"),
            Err(KeystoreError::WrongPassphrase)
        ));
        std::fs::write(&path, "{").unwrap();
        assert!(matches!(
            open(&path, "correct horse"),
            Err(KeystoreError::Malformed(_))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

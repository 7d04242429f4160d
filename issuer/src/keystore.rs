//! The issuer's key at rest: Argon2id turns the passphrase into a key that
//! encrypts the Ed25519 seed with XChaCha20-Poly1305. The file is JSON; the
//! DID and parameters are authenticated as associated data, so editing them
//! makes the file fail to open. The seed is never written in the clear.

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::SigningKey;
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use vouch_core::DidKey;
use zeroize::Zeroizing;

/// Argon2id cost: memory in KiB, passes, lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Memory, KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Cost {
    /// The default: 64 MiB, 3 passes, 1 lane (about half a second here).
    pub const DEFAULT: Cost = Cost {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };
    /// A cheap cost for tests only.
    pub const TEST: Cost = Cost {
        m_kib: 256,
        t: 1,
        p: 1,
    };
    /// The cheapest cost a keystore may name (each field at its minimum).
    pub const MIN: Cost = Cost {
        m_kib: 256,
        t: 1,
        p: 1,
    };
    /// The dearest cost a keystore may name: 1 GiB, 10 passes, 8 lanes.
    /// The cost is read before the file is authenticated, so an edited file
    /// must not be able to make opening hang or run out of memory.
    pub const MAX: Cost = Cost {
        m_kib: 1 << 20,
        t: 10,
        p: 8,
    };

    /// Checks each field against [`Cost::MIN`] and [`Cost::MAX`].
    ///
    /// # Errors
    /// [`KeystoreError::Cost`] naming the first field out of bounds.
    pub fn check(&self) -> Result<(), KeystoreError> {
        for (field, value, min, max) in [
            ("m_kib", self.m_kib, Self::MIN.m_kib, Self::MAX.m_kib),
            ("t", self.t, Self::MIN.t, Self::MAX.t),
            ("p", self.p, Self::MIN.p, Self::MAX.p),
        ] {
            if !(min..=max).contains(&value) {
                return Err(KeystoreError::Cost {
                    field,
                    value,
                    min,
                    max,
                });
            }
        }
        Ok(())
    }
}

/// Salt lengths accepted, in bytes (we write 16).
const SALT_BYTES: std::ops::RangeInclusive<usize> = 8..=64;

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

fn derive(passphrase: &str, salt: &[u8], cost: Cost) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let params = Params::new(cost.m_kib, cost.t, cost.p, Some(32))
        .map_err(|e| KeystoreError::Malformed(format!("argon2 parameters: {e}")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
        .map_err(|e| KeystoreError::Malformed(format!("argon2: {e}")))?;
    Ok(out)
}

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
    if passphrase.is_empty() {
        return Err(KeystoreError::EmptyPassphrase);
    }
    cost.check()?;
    let did = DidKey::from_public_key(&key.verifying_key());
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let k = derive(passphrase, &salt, cost)?;
    let cipher = XChaCha20Poly1305::new(k.as_ref().into());
    let seed = Zeroizing::new(key.to_bytes());
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: seed.as_ref(),
                aad: &aad(did.as_str(), cost),
            },
        )
        .map_err(|_| KeystoreError::Malformed("encryption failed".into()))?;
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
    if !SALT_BYTES.contains(&salt.len()) {
        return Err(KeystoreError::Malformed(format!(
            "salt is {} bytes, not {}..={}",
            salt.len(),
            SALT_BYTES.start(),
            SALT_BYTES.end()
        )));
    }
    let nonce: [u8; 24] = b64("nonce", &file.nonce)?
        .try_into()
        .map_err(|_| KeystoreError::Malformed("nonce is not 24 bytes".into()))?;
    let ciphertext = b64("ciphertext", &file.ciphertext)?;
    let k = derive(passphrase, &salt, file.cost)?;
    let cipher = XChaCha20Poly1305::new(k.as_ref().into());
    let seed = Zeroizing::new(
        cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad(&file.did, file.cost),
                },
            )
            .map_err(|_| KeystoreError::WrongPassphrase)?,
    );
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

//! Secrets at rest: Argon2id turns a passphrase into a key; XChaCha20-Poly1305
//! seals bytes under a key with associated data. The issuer keystore and the
//! wallet store both stand on this; neither writes a secret in the clear.
//!
//! Sans-IO: callers bring the bytes, the salt and the RNG.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
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
    /// The default: 64 MiB, 3 passes, 1 lane (above OWASP's 19 MiB / 2
    /// passes minimum; about half a second on this project's machines).
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
    /// The cheapest cost accepted (each field at its minimum).
    pub const MIN: Cost = Cost {
        m_kib: 256,
        t: 1,
        p: 1,
    };
    /// The dearest cost accepted: 1 GiB, 10 passes, 8 lanes. A cost is read
    /// from disk before anything is authenticated, so an edited file must
    /// not be able to make opening hang or run out of memory.
    pub const MAX: Cost = Cost {
        m_kib: 1 << 20,
        t: 10,
        p: 8,
    };

    /// Checks each field against [`Cost::MIN`] and [`Cost::MAX`].
    ///
    /// # Errors
    /// [`SealError::Cost`] naming the first field out of bounds.
    pub fn check(&self) -> Result<(), SealError> {
        for (field, value, min, max) in [
            ("m_kib", self.m_kib, Self::MIN.m_kib, Self::MAX.m_kib),
            ("t", self.t, Self::MIN.t, Self::MAX.t),
            ("p", self.p, Self::MIN.p, Self::MAX.p),
        ] {
            if !(min..=max).contains(&value) {
                return Err(SealError::Cost {
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

/// Salt lengths accepted, in bytes ([`new_salt`] makes 16).
pub const SALT_BYTES: std::ops::RangeInclusive<usize> = 8..=64;

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The key does not open the box: a wrong passphrase, or the box or its
    /// associated data was altered.
    #[error("wrong key (or the sealed data was altered)")]
    WrongKey,
    /// An empty passphrase.
    #[error("the passphrase is empty")]
    EmptyPassphrase,
    /// A cost parameter outside the accepted bounds (checked before any
    /// key derivation).
    #[error("KDF cost {field} = {value} is outside {min}..={max}")]
    Cost {
        /// `m_kib`, `t` or `p`.
        field: &'static str,
        /// The value given.
        value: u32,
        /// Lowest accepted.
        min: u32,
        /// Highest accepted.
        max: u32,
    },
    /// A salt outside [`SALT_BYTES`].
    #[error("salt is {0} bytes, not {min}..={max}", min = SALT_BYTES.start(), max = SALT_BYTES.end())]
    Salt(usize),
    /// Argon2 refused its parameters.
    #[error("argon2: {0}")]
    Kdf(argon2::Error),
    /// A sealed box shorter than its nonce and tag.
    #[error("sealed data is {0} bytes, shorter than a nonce and a tag")]
    Short(usize),
}

/// A 256-bit symmetric key, wiped from memory when dropped.
pub struct Key(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

impl Key {
    /// A fresh random key.
    pub fn random(rng: &mut impl CryptoRngCore) -> Key {
        let mut k = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(k.as_mut());
        Key(k)
    }

    /// A key from its bytes (e.g. just opened from a sealed box).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(Zeroizing::new(bytes))
    }

    /// The key's bytes, for sealing it under another key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Argon2id of `passphrase` with `salt` at `cost`. The cost and salt
    /// are checked before any work.
    ///
    /// # Errors
    /// [`SealError::EmptyPassphrase`], [`SealError::Cost`],
    /// [`SealError::Salt`], [`SealError::Kdf`].
    pub fn derive(passphrase: &str, salt: &[u8], cost: Cost) -> Result<Key, SealError> {
        if passphrase.is_empty() {
            return Err(SealError::EmptyPassphrase);
        }
        cost.check()?;
        if !SALT_BYTES.contains(&salt.len()) {
            return Err(SealError::Salt(salt.len()));
        }
        let params = Params::new(cost.m_kib, cost.t, cost.p, Some(32)).map_err(SealError::Kdf)?;
        let mut out = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
            .map_err(SealError::Kdf)?;
        Ok(Key(out))
    }

    /// Seals `plaintext` with `aad` bound to it: `nonce (24) ‖ ciphertext ‖
    /// tag (16)`, under a fresh random nonce.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8], rng: &mut impl CryptoRngCore) -> Vec<u8> {
        let mut nonce = [0u8; NONCE];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let mut out = nonce.to_vec();
        // XChaCha20-Poly1305 encryption fails only past 2^38 bytes of
        // plaintext, far beyond anything sealed here; an empty box would
        // then fail to open rather than leak.
        if let Ok(ct) = cipher.encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        ) {
            out.extend_from_slice(&ct);
        }
        out
    }

    /// Opens a box made by [`Key::seal`] with the same `aad`.
    ///
    /// # Errors
    /// [`SealError::Short`] for a truncated box, [`SealError::WrongKey`]
    /// when the key or the associated data do not match or a byte changed.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        if sealed.len() < NONCE + TAG {
            return Err(SealError::Short(sealed.len()));
        }
        let (nonce, ct) = sealed.split_at(NONCE);
        let mut n = [0u8; NONCE];
        n.copy_from_slice(nonce);
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        cipher
            .decrypt(&XNonce::from(n), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| SealError::WrongKey)
    }
}

const NONCE: usize = 24;
const TAG: usize = 16;

/// A fresh 16-byte salt.
pub fn new_salt(rng: &mut impl CryptoRngCore) -> [u8; 16] {
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    salt
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn seal_open_round_trip_and_every_corruption_refused() {
        let mut rng = StdRng::seed_from_u64(7);
        let salt = new_salt(&mut rng);
        let key = Key::derive("correct horse", &salt, Cost::TEST).unwrap();
        let sealed = key.seal(b"aad", b"secret bytes", &mut rng);
        assert_eq!(
            key.open(b"aad", &sealed).unwrap().as_slice(),
            b"secret bytes"
        );
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert!(
                matches!(key.open(b"aad", &bad), Err(SealError::WrongKey)),
                "byte {i}"
            );
        }
        assert!(matches!(
            key.open(b"other", &sealed),
            Err(SealError::WrongKey)
        ));
        let wrong = Key::derive("wrong", &salt, Cost::TEST).unwrap();
        assert!(matches!(
            wrong.open(b"aad", &sealed),
            Err(SealError::WrongKey)
        ));
        assert!(matches!(
            key.open(b"aad", &sealed[..39]),
            Err(SealError::Short(39))
        ));
        assert!(matches!(key.open(b"aad", &[]), Err(SealError::Short(0))));
    }

    #[test]
    fn fail_bad_derivation_inputs_refused_before_work() {
        let salt = [0u8; 16];
        assert!(matches!(
            Key::derive("", &salt, Cost::TEST),
            Err(SealError::EmptyPassphrase)
        ));
        assert!(matches!(
            Key::derive("p", &[0u8; 4], Cost::TEST),
            Err(SealError::Salt(4))
        ));
        assert!(matches!(
            Key::derive("p", &[0u8; 65], Cost::TEST),
            Err(SealError::Salt(65))
        ));
        let huge = Cost {
            m_kib: u32::MAX,
            ..Cost::TEST
        };
        assert!(matches!(
            Key::derive("p", &salt, huge),
            Err(SealError::Cost { field: "m_kib", .. })
        ));
        let zero = Cost { t: 0, ..Cost::TEST };
        assert!(matches!(
            Key::derive("p", &salt, zero),
            Err(SealError::Cost { field: "t", .. })
        ));
        let lanes = Cost { p: 9, ..Cost::TEST };
        assert!(matches!(
            Key::derive("p", &salt, lanes),
            Err(SealError::Cost { field: "p", .. })
        ));
    }

    #[test]
    fn derivation_is_deterministic_and_salted() {
        let a = Key::derive("pass", &[1; 16], Cost::TEST).unwrap();
        let b = Key::derive("pass", &[1; 16], Cost::TEST).unwrap();
        let c = Key::derive("pass", &[2; 16], Cost::TEST).unwrap();
        assert_eq!(a.as_bytes(), b.as_bytes());
        assert_ne!(a.as_bytes(), c.as_bytes());
    }
}

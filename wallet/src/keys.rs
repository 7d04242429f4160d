//! Holder keys: a BIP-39 recovery phrase, its 64-byte seed, and SLIP-0010
//! Ed25519 hardened derivation from that seed.
//!
//! Holder key `n` is at path `m/7652'/0'/n'` (every step hardened, as
//! SLIP-0010 requires for Ed25519): purpose 7652 (Vouch's own, not a coin
//! type), account 0, then the key's index. The seed is the BIP-39 seed of
//! the phrase with an empty BIP-39 passphrase. Another wallet that knows
//! these three facts can restore the same keys.

use ed25519_dalek::SigningKey;
use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use sha2::Sha512;
use zeroize::Zeroizing;

/// The purpose step of every holder key path.
pub const PURPOSE: u32 = 7652;
/// The account step of every holder key path.
pub const ACCOUNT: u32 = 0;
/// Words in a phrase this wallet makes.
pub const WORDS: usize = 24;
/// The first hardened index.
const HARDENED: u32 = 1 << 31;

/// Why a phrase or a path was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not a BIP-39 English phrase: an unknown word, a wrong word count, or
    /// a checksum that does not match (a mistyped word).
    #[error("not a valid recovery phrase: {0}")]
    Phrase(#[source] bip39::Error),
    /// A derivation index at or above 2^31 (SLIP-0010 Ed25519 steps are all
    /// hardened; the index given is the one before hardening).
    #[error("key index {0} is not below 2^31")]
    Index(u32),
}

/// A BIP-39 English recovery phrase.
pub struct RecoveryPhrase(bip39::Mnemonic);

impl std::fmt::Debug for RecoveryPhrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RecoveryPhrase({} words)", self.0.word_count())
    }
}

impl RecoveryPhrase {
    /// A fresh 24-word phrase (256 bits of entropy from `rng`).
    pub fn generate(rng: &mut impl CryptoRngCore) -> RecoveryPhrase {
        let mut entropy = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(entropy.as_mut());
        // 32 bytes is a valid BIP-39 entropy length, so this cannot fail.
        match bip39::Mnemonic::from_entropy(entropy.as_ref()) {
            Ok(m) => RecoveryPhrase(m),
            Err(_) => unreachable!("32 bytes is a valid BIP-39 entropy length"),
        }
    }

    /// Parses a phrase as typed: words separated by any whitespace, any
    /// case. Any BIP-39 length (12 to 24 words) is accepted, so a phrase
    /// from another wallet restores too.
    ///
    /// # Errors
    /// [`KeyError::Phrase`] naming what is wrong.
    pub fn parse(text: &str) -> Result<RecoveryPhrase, KeyError> {
        // The copies made on the way are wiped too (the phrase itself is:
        // bip39's `zeroize` feature).
        let words: Zeroizing<Vec<String>> =
            Zeroizing::new(text.split_whitespace().map(str::to_lowercase).collect());
        let line = Zeroizing::new(words.join(" "));
        bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &line)
            .map(RecoveryPhrase)
            .map_err(KeyError::Phrase)
    }

    /// The words, in order.
    pub fn words(&self) -> Vec<&'static str> {
        self.0.words().collect()
    }

    /// The phrase as one line, words separated by single spaces.
    pub fn to_line(&self) -> Zeroizing<String> {
        // Made in place at its final size: no list of the words (pointers
        // into the word list spell the phrase too) is left behind unwiped.
        let mut line = Zeroizing::new(String::with_capacity(24 * 9));
        for (i, word) in self.0.words().enumerate() {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(word);
        }
        line
    }

    /// The BIP-39 seed (PBKDF2-HMAC-SHA512 of the phrase), with an empty
    /// BIP-39 passphrase.
    pub fn seed(&self) -> Zeroizing<[u8; 64]> {
        Zeroizing::new(self.0.to_seed_normalized(""))
    }
}

/// A SLIP-0010 Ed25519 extended private key: the key and its chain code.
pub struct ExtendedKey {
    key: Zeroizing<[u8; 32]>,
    chain_code: Zeroizing<[u8; 32]>,
}

impl ExtendedKey {
    /// The master key of `seed`: HMAC-SHA512 keyed with `ed25519 seed`.
    pub fn master(seed: &[u8]) -> ExtendedKey {
        Self::from_hmac(b"ed25519 seed", &[seed])
    }

    /// The hardened child `index'` (the index before hardening).
    ///
    /// # Errors
    /// [`KeyError::Index`] when `index` ≥ 2^31.
    pub fn child(&self, index: u32) -> Result<ExtendedKey, KeyError> {
        if index >= HARDENED {
            return Err(KeyError::Index(index));
        }
        let i = (index | HARDENED).to_be_bytes();
        Ok(Self::from_hmac(
            self.chain_code.as_ref(),
            &[&[0u8], self.key.as_ref(), &i],
        ))
    }

    /// The key at `path` below the master key of `seed`, every step
    /// hardened.
    ///
    /// # Errors
    /// [`KeyError::Index`] for a step ≥ 2^31.
    pub fn derive(seed: &[u8], path: &[u32]) -> Result<ExtendedKey, KeyError> {
        path.iter()
            .try_fold(Self::master(seed), |key, &index| key.child(index))
    }

    /// The 32-byte private key (the Ed25519 secret seed).
    pub fn private_key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The chain code.
    pub fn chain_code(&self) -> &[u8; 32] {
        &self.chain_code
    }

    /// The Ed25519 signing key.
    pub fn signing_key(&self) -> SigningKey {
        SigningKey::from_bytes(&self.key)
    }

    fn from_hmac(key: &[u8], parts: &[&[u8]]) -> ExtendedKey {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
        let Ok(mut mac) = Hmac::<Sha512>::new_from_slice(key) else {
            unreachable!("HMAC takes keys of any length")
        };
        for part in parts {
            mac.update(part);
        }
        let out = Zeroizing::new(<[u8; 64]>::from(mac.finalize().into_bytes()));
        let mut k = Zeroizing::new([0u8; 32]);
        let mut c = Zeroizing::new([0u8; 32]);
        k.copy_from_slice(&out[..32]);
        c.copy_from_slice(&out[32..]);
        ExtendedKey {
            key: k,
            chain_code: c,
        }
    }
}

/// Holder key `index`: `m/7652'/0'/index'` below `seed`.
///
/// # Errors
/// [`KeyError::Index`] when `index` ≥ 2^31.
pub fn holder_key(seed: &[u8], index: u32) -> Result<SigningKey, KeyError> {
    Ok(ExtendedKey::derive(seed, &[PURPOSE, ACCOUNT, index])?.signing_key())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// Compiles only for a type wiped from memory when dropped.
    fn wiped_on_drop<T: zeroize::ZeroizeOnDrop>() {}

    #[test]
    fn the_phrase_is_wiped_from_memory_when_dropped() {
        // bip39 built with its `zeroize` feature: the mnemonic inside a
        // `RecoveryPhrase` zeroes its words when dropped.
        wiped_on_drop::<bip39::Mnemonic>();
    }

    #[test]
    fn generated_phrase_has_24_words_and_parses_back_in_any_case() {
        let phrase = RecoveryPhrase::generate(&mut StdRng::seed_from_u64(1));
        assert_eq!(phrase.words().len(), WORDS);
        let shouted = format!(
            "  {}\n",
            phrase.to_line().to_uppercase().replace(' ', "\t ")
        );
        let back = RecoveryPhrase::parse(&shouted).unwrap();
        assert_eq!(back.seed().as_ref(), phrase.seed().as_ref());
    }

    #[test]
    fn fail_phrase_with_a_changed_word_unknown_word_or_wrong_count() {
        let phrase = RecoveryPhrase::generate(&mut StdRng::seed_from_u64(2));
        let mut words = phrase.words();
        // Another valid word in place of the first: the checksum catches it
        // (for all but a 1-in-256 chance; the seed is fixed, so this is
        // deterministic and was checked to be caught).
        words[0] = if words[0] == "abandon" {
            "ability"
        } else {
            "abandon"
        };
        assert!(matches!(
            RecoveryPhrase::parse(&words.join(" ")),
            Err(KeyError::Phrase(_))
        ));
        let mut words = phrase.words();
        words[5] = "notaword";
        assert!(matches!(
            RecoveryPhrase::parse(&words.join(" ")),
            Err(KeyError::Phrase(_))
        ));
        let words = phrase.words();
        assert!(matches!(
            RecoveryPhrase::parse(&words[..23].join(" ")),
            Err(KeyError::Phrase(_))
        ));
        assert!(matches!(
            RecoveryPhrase::parse(""),
            Err(KeyError::Phrase(_))
        ));
    }

    #[test]
    fn fail_index_at_or_above_two_to_the_31() {
        let master = ExtendedKey::master(&[0; 16]);
        assert!(matches!(master.child(HARDENED), Err(KeyError::Index(_))));
        assert!(master.child(HARDENED - 1).is_ok());
        assert!(matches!(
            holder_key(&[0; 64], u32::MAX),
            Err(KeyError::Index(_))
        ));
    }

    #[test]
    fn holder_keys_differ_per_index_and_repeat_per_seed() {
        let seed = [9u8; 64];
        let a = holder_key(&seed, 0).unwrap();
        let b = holder_key(&seed, 1).unwrap();
        assert_ne!(a.to_bytes(), b.to_bytes());
        assert_eq!(holder_key(&seed, 1).unwrap().to_bytes(), b.to_bytes());
    }
}

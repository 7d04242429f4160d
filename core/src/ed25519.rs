//! Ed25519 verification: one rule for every signature Vouch checks, alone
//! or in a batch.
//!
//! The rule (RFC 8032 §5.1.7 with its cofactored equation, and the
//! encodings held strict):
//!
//! 1. `s` is canonical (below the group order `L`);
//! 2. the key `A` and the signature's `R` are canonical encodings (`y`
//!    below `p`) of curve points, and neither is of small order;
//! 3. `[8]([s]B − R − [k]A)` is the identity, with
//!    `k = SHA-512(R ‖ A ‖ M) mod L`.
//!
//! Why cofactored: a batch equation needs the cofactor (without it, a small
//! component a signer adds to `R` cancels in some batches and not in
//! others, so whether a batch held would depend on the random weights and
//! on which other signatures share it). With single checks held to the
//! same equation, a batch holds (but for a chance of about 2⁻¹²⁵) exactly
//! when each of its signatures verifies alone: the chain's nodes, its
//! replicas and `vouch-registry verify` agree on every entry whether they
//! check it alone or in a batch of any size, and a verifier's verdict does
//! not depend on what it was batched with. This is the rule ZIP 215 chose
//! for the same reason, made stricter on encodings. It differs from
//! `ed25519_dalek::VerifyingKey::verify_strict` (cofactorless) on
//! signatures whose `R` or key has a small-order component added, which
//! only the key's holder can make (accepted here, refused there), and on
//! keys spelled with a non-canonical `y ≥ p`, under which nobody can sign
//! (refused here, accepted there); the `ed25519-speccheck` vectors in
//! `tests/vectors/ed25519-speccheck/` pin every case.
//!
//! Interoperability: a signature that passes only the cofactored equation
//! (speccheck cases 7 and 8) is accepted here and refused by cofactorless
//! verifiers (Go's `crypto/ed25519`, OpenSSL, node). Only the key's holder
//! can make one, so nothing can be forged; but an issuer, node or witness
//! that makes one on purpose produces a credential or checkpoint that
//! Vouch accepts and such a verifier refuses.

use std::collections::HashMap;
use std::sync::OnceLock;

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{
    IsIdentity as _, VartimeMultiscalarMul as _, VartimePrecomputedMultiscalarMul as _,
};
use ed25519_dalek::VerifyingKey;
use sha2::{Digest as _, Sha512};

/// Why a signature does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The signature is not 64 bytes.
    #[error("the signature is not 64 bytes")]
    Length,
    /// The key is not the canonical encoding of its point.
    #[error("the key is not a canonical point encoding")]
    KeyEncoding,
    /// The key is a point of small order (any signature would do).
    #[error("the key is a point of small order")]
    WeakKey,
    /// `R` is not the canonical encoding of a curve point.
    #[error("R is not a canonical encoding of a curve point")]
    REncoding,
    /// `R` is a point of small order.
    #[error("R is a point of small order")]
    SmallOrderR,
    /// `s` is not below the group order.
    #[error("s is not below the group order")]
    NonCanonicalS,
    /// The verification equation does not hold.
    #[error("the signature does not verify")]
    Equation,
}

/// Whether a 32-byte point encoding is canonical: its `y` (the low 255
/// bits, little-endian) is below `p = 2²⁵⁵ − 19`. (The other
/// non-canonical form, `x = 0` with the sign bit set, only occurs for the
/// points of small order `(0, ±1)`, which are refused anyway.)
fn is_canonical(encoding: &[u8; 32]) -> bool {
    !(encoding[31] & 0x7f == 0x7f
        && encoding[1..31].iter().all(|&b| b == 0xff)
        && encoding[0] >= 0xed)
}

/// The `y` coordinates (canonical encodings, sign bit clear) of the eight
/// points of small order: `1`, `−1`, `0` and the two of the points of
/// order 8. A point's negation has the same `y`, and the points of small
/// order are closed under negation, so a curve point is of small order
/// exactly when its `y` is one of these.
fn small_order_ys() -> &'static [[u8; 32]] {
    static YS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    YS.get_or_init(|| {
        let mut ys: Vec<[u8; 32]> = Vec::with_capacity(EIGHT_TORSION.len());
        for point in EIGHT_TORSION {
            let mut y = point.compress().to_bytes();
            y[31] &= 0x7f;
            if !ys.contains(&y) {
                ys.push(y);
            }
        }
        ys
    })
}

/// Whether the curve point with this canonical encoding (one that
/// decompresses) is of small order: `EdwardsPoint::is_small_order` read
/// from the encoding's `y`, without the three doublings (a few thousand
/// instructions per signature, and as many again for its key).
fn is_small_order_encoding(encoding: &[u8; 32]) -> bool {
    let mut y = *encoding;
    y[31] &= 0x7f;
    small_order_ys().contains(&y)
}

/// One signature (`R`, `s`) by key `A` on a message, read and ready for the
/// equation, alone ([`Term::holds`]) or in a batch ([`batch_holds`]).
#[derive(Debug, Clone)]
pub struct Term {
    r_bytes: [u8; 32],
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
    key: [u8; 32],
    a: EdwardsPoint,
}

impl Term {
    /// Reads `signature` by `key` on the message that is the concatenation
    /// of `message` (parts, so that a caller need not copy them into one).
    ///
    /// # Errors
    /// The rule's first two steps: a [`Refusal`] other than
    /// [`Refusal::Equation`].
    pub fn new(key: &VerifyingKey, message: &[&[u8]], signature: &[u8]) -> Result<Term, Refusal> {
        let signature: &[u8; 64] = signature.try_into().map_err(|_| Refusal::Length)?;
        let key_bytes = key.to_bytes();
        if !is_canonical(&key_bytes) {
            return Err(Refusal::KeyEncoding);
        }
        // `key` holds a decompressed point: its encoding's `y` decides.
        if is_small_order_encoding(&key_bytes) {
            return Err(Refusal::WeakKey);
        }
        let (r_half, s_half) = signature.split_at(32);
        let mut r_bytes = [0u8; 32];
        r_bytes.copy_from_slice(r_half);
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(s_half);
        if !is_canonical(&r_bytes) {
            return Err(Refusal::REncoding);
        }
        let r = CompressedEdwardsY(r_bytes)
            .decompress()
            .ok_or(Refusal::REncoding)?;
        if is_small_order_encoding(&r_bytes) {
            return Err(Refusal::SmallOrderR);
        }
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))
            .ok_or(Refusal::NonCanonicalS)?;
        let mut hash = Sha512::new();
        hash.update(r_bytes);
        hash.update(key_bytes);
        for part in message {
            hash.update(part);
        }
        Ok(Term {
            r_bytes,
            r,
            s,
            k: Scalar::from_hash(hash),
            key: key_bytes,
            a: key.to_edwards(),
        })
    }

    /// Whether this signature's own equation holds:
    /// `[8]([s]B − [k]A − R) = 0`.
    pub fn holds(&self) -> bool {
        let sb_minus_ka =
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &-self.a, &self.s);
        (sb_minus_ka - self.r).mul_by_cofactor().is_identity()
    }
}

/// Verifies `signature` by `key` on the concatenation of `message`.
///
/// # Errors
/// [`Refusal`] naming the first step of the rule that fails.
pub fn verify(key: &VerifyingKey, message: &[&[u8]], signature: &[u8]) -> Result<(), Refusal> {
    if Term::new(key, message, signature)?.holds() {
        Ok(())
    } else {
        Err(Refusal::Equation)
    }
}

/// A sum of products `z · x` of a 128-bit weight and a scalar (below
/// `2²⁵³`), kept as a 512-bit integer and reduced mod `ℓ` once, at the end:
/// eight word multiplications a term instead of two Montgomery
/// multiplications and a reduction (`Scalar * Scalar`). Each product is
/// below `2³⁸¹`, so up to `2¹³¹` terms fit.
#[derive(Debug, Clone, Copy, Default)]
struct WideSum([u64; 8]);

impl WideSum {
    /// Adds `z · x`.
    fn add_product(&mut self, z: u128, x: &Scalar) {
        let mut limbs = [0u64; 4];
        for (limb, bytes) in limbs.iter_mut().zip(x.as_bytes().chunks_exact(8)) {
            let mut word = [0u8; 8];
            word.copy_from_slice(bytes);
            *limb = u64::from_le_bytes(word);
        }
        for (i, z) in [z as u64, (z >> 64) as u64].into_iter().enumerate() {
            let mut carry = 0u128;
            for (j, &x) in limbs.iter().enumerate() {
                // At most (2⁶⁴−1)² + 2·(2⁶⁴−1) = 2¹²⁸−1: no overflow.
                let t = u128::from(z) * u128::from(x) + u128::from(self.0[i + j]) + carry;
                self.0[i + j] = t as u64;
                carry = t >> 64;
            }
            for word in &mut self.0[i + 4..] {
                if carry == 0 {
                    break;
                }
                let t = u128::from(*word) + carry;
                *word = t as u64;
                carry = t >> 64;
            }
        }
    }

    /// The sum mod `ℓ`.
    fn reduce(&self) -> Scalar {
        let mut bytes = [0u8; 64];
        for (chunk, word) in bytes.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        Scalar::from_bytes_mod_order_wide(&bytes)
    }
}

/// From this many points, Pippenger's method (curve25519-dalek's own
/// switch-over) beats Straus with the basepoint's precomputed table.
const PIPPENGER_FROM: usize = 190;

/// Whether every signature in `terms` verifies, checked as one equation:
/// `[8]([−Σ zᵢsᵢ]B + Σ [zᵢ]Rᵢ + Σ [zᵢkᵢ]Aᵢ) = 0`.
///
/// The 128-bit weights `zᵢ` come from SHA-512 over `domain` and every
/// `Rᵢ`, `Aᵢ`, `sᵢ` and `kᵢ` (which commits to its message), so they
/// cannot be chosen to make forgeries cancel out, and the check is
/// deterministic. The terms of one key are merged into one point
/// (`[Σ zᵢkᵢ]A`): a chain's entries come from few authors, and a verifier
/// sees the same few issuers over and over. Cofactored, as the module
/// explains: it holds (but for a chance of about 2⁻¹²⁵) exactly when every
/// [`Term::holds`]. `false` means at least one signature is bad, and the
/// caller checks each alone to find it. An empty batch holds.
pub fn batch_holds(domain: &[u8], terms: &[&Term]) -> bool {
    if terms.is_empty() {
        return true;
    }
    let mut seed = Sha512::new();
    seed.update((domain.len() as u64).to_le_bytes());
    seed.update(domain);
    for t in terms {
        seed.update(t.r_bytes);
        seed.update(t.key);
        seed.update(t.s.as_bytes());
        seed.update(t.k.as_bytes());
    }
    let seed: [u8; 64] = seed.finalize().into();
    let mut b = WideSum::default();
    let mut scalars = Vec::with_capacity(terms.len() + 2);
    let mut points = Vec::with_capacity(terms.len() + 2);
    // One slot per key, in `scalars`/`points` after the Rs.
    let mut key_slots: HashMap<[u8; 32], usize> = HashMap::new();
    let mut key_scalars: Vec<WideSum> = Vec::new();
    let mut key_points: Vec<EdwardsPoint> = Vec::new();
    let mut last: Option<([u8; 32], usize)> = None;
    // Four 128-bit weights per 64 bytes: the seed, then SHA-512(seed ‖ c).
    for (chunk, group) in terms.chunks(4).enumerate() {
        let bytes: [u8; 64] = if chunk == 0 {
            seed
        } else {
            Sha512::new()
                .chain_update(seed)
                .chain_update((chunk as u64).to_le_bytes())
                .finalize()
                .into()
        };
        for (t, quarter) in group.iter().zip(bytes.chunks_exact(16)) {
            let mut z = [0u8; 16];
            z.copy_from_slice(quarter);
            let z = u128::from_le_bytes(z);
            b.add_product(z, &t.s);
            // The weights stay positive and 128 bits long, which halves
            // the multiscalar work on the `R`s; only `B`'s sum is negated.
            scalars.push(Scalar::from(z));
            points.push(t.r);
            let slot = match last {
                Some((key, slot)) if key == t.key => slot,
                _ => {
                    let slot = *key_slots.entry(t.key).or_insert_with(|| {
                        key_scalars.push(WideSum::default());
                        key_points.push(t.a);
                        key_points.len() - 1
                    });
                    last = Some((t.key, slot));
                    slot
                }
            };
            key_scalars[slot].add_product(z, &t.k);
        }
    }
    scalars.extend(key_scalars.iter().map(WideSum::reduce));
    points.extend(key_points);
    let b = b.reduce();
    let sum = if points.len() >= PIPPENGER_FROM {
        scalars.push(-b);
        points.push(ED25519_BASEPOINT_POINT);
        EdwardsPoint::vartime_multiscalar_mul(scalars, points)
    } else {
        static BASEPOINT: OnceLock<VartimeEdwardsPrecomputation> = OnceLock::new();
        BASEPOINT
            .get_or_init(|| VartimeEdwardsPrecomputation::new([ED25519_BASEPOINT_POINT]))
            .vartime_mixed_multiscalar_mul([-b], scalars, &points)
    };
    sum.mul_by_cofactor().is_identity()
}

/// The test key whose 32 secret bytes are all `b`.
#[cfg(test)]
pub(crate) fn test_key(b: u8) -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[b; 32])
}

/// The term of `key`'s own signature on `message`.
#[cfg(test)]
pub(crate) fn signed_term(key: &ed25519_dalek::SigningKey, message: &[u8]) -> Term {
    use ed25519_dalek::Signer as _;
    Term::new(
        &key.verifying_key(),
        &[message],
        &key.sign(message).to_bytes(),
    )
    .unwrap_or_else(|e| panic!("a fresh signature is a term: {e}"))
}

/// The term of `key`'s real signature on another message than the one
/// checked: well formed, and false.
#[cfg(test)]
pub(crate) fn forged_term(key: &ed25519_dalek::SigningKey) -> Term {
    use ed25519_dalek::Signer as _;
    Term::new(
        &key.verifying_key(),
        &[b"what was signed"],
        &key.sign(b"something else").to_bytes(),
    )
    .unwrap_or_else(|e| panic!("a signature's encoding is a term: {e}"))
}

#[cfg(test)]
/// A signature by `key` on `message` whose `R` carries a point of order
/// 8: it satisfies the cofactored equation, and `verify_strict` refuses
/// it. Only the key's holder can make one.
pub(crate) fn torsion_signature(key: &ed25519_dalek::SigningKey, message: &[u8]) -> [u8; 64] {
    let expanded = Sha512::digest(key.to_bytes());
    let mut a = [0u8; 32];
    a.copy_from_slice(&expanded[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let a = Scalar::from_bytes_mod_order(a);
    let r = Scalar::from_hash(Sha512::new().chain_update(b"r").chain_update(message));
    let big_r =
        (EdwardsPoint::mul_base(&r) + curve25519_dalek::constants::EIGHT_TORSION[1]).compress();
    let k = Scalar::from_hash(
        Sha512::new()
            .chain_update(big_r.as_bytes())
            .chain_update(key.verifying_key().as_bytes())
            .chain_update(message),
    );
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(big_r.as_bytes());
    sig[32..].copy_from_slice((r + k * a).as_bytes());
    sig
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::Signer as _;

    use super::*;

    use super::{forged_term, signed_term as term, test_key as signing};

    #[test]
    fn a_signature_verifies_in_parts_and_whole_and_nothing_else_does() {
        let key = signing(1);
        let sig = key.sign(b"hello world").to_bytes();
        let vk = key.verifying_key();
        assert_eq!(verify(&vk, &[b"hello world"], &sig), Ok(()));
        assert_eq!(verify(&vk, &[b"hello", b" ", b"world"], &sig), Ok(()));
        assert_eq!(
            verify(&vk, &[b"hello world!"], &sig),
            Err(Refusal::Equation)
        );
        assert_eq!(
            verify(&signing(2).verifying_key(), &[b"hello world"], &sig),
            Err(Refusal::Equation)
        );
        assert_eq!(
            verify(&vk, &[b"hello world"], &sig[..63]),
            Err(Refusal::Length)
        );
        let mut high_s = sig;
        high_s[63] |= 0xf0;
        assert_eq!(
            verify(&vk, &[b"hello world"], &high_s),
            Err(Refusal::NonCanonicalS)
        );
        // Every single-bit flip of the signature is refused.
        for bit in 0..512 {
            let mut flipped = sig;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                verify(&vk, &[b"hello world"], &flipped).is_err(),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn a_small_order_component_in_r_is_judged_alike_alone_and_in_every_batch() {
        let holder = signing(2);
        let tweaked = torsion_signature(&holder, b"kb");
        assert!(holder
            .verifying_key()
            .verify_strict(b"kb", &ed25519_dalek::Signature::from_bytes(&tweaked))
            .is_err());
        let own = Term::new(&holder.verifying_key(), &[b"kb"], &tweaked).unwrap();
        assert!(own.holds());
        for others in 0..12u8 {
            let rest: Vec<Term> = (0..others).map(|i| term(&signing(10 + i), &[i])).collect();
            let mut batch: Vec<&Term> = rest.iter().collect();
            batch.insert(usize::from(others / 2), &own);
            assert!(batch_holds(b"test", &batch), "{others} other signature(s)");
        }
    }

    #[test]
    fn a_bad_signature_fails_every_batch_it_is_in() {
        let forged = forged_term(&signing(2));
        assert!(!forged.holds());
        // Small batches (Straus) and large ones (Pippenger), one key and many.
        for n in [1usize, 2, 7, 200, 300] {
            let goods: Vec<Term> = (0..n)
                .map(|i| {
                    term(
                        &signing(u8::try_from(i % 5).unwrap() + 20),
                        &i.to_le_bytes(),
                    )
                })
                .collect();
            let all: Vec<&Term> = goods.iter().collect();
            assert!(batch_holds(b"test", &all), "{n} good");
            let mut with_bad = all.clone();
            with_bad.insert(n / 2, &forged);
            assert!(
                !batch_holds(b"test", &with_bad),
                "{n} good and a forged one"
            );
        }
        assert!(batch_holds(b"test", &[]));
    }

    #[test]
    fn a_wide_sum_of_products_is_the_scalar_sum() {
        let mut wide = WideSum::default();
        let mut sum = Scalar::ZERO;
        // The largest weights and scalars, many times over, then mixed ones.
        let top = Scalar::ZERO - Scalar::ONE;
        for _ in 0..5000 {
            wide.add_product(u128::MAX, &top);
            sum += Scalar::from(u128::MAX) * top;
        }
        assert_eq!(wide.reduce(), sum);
        for i in 0..2000u64 {
            let z = (u128::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15)) << 64) | u128::from(i);
            let x = Scalar::from_hash(Sha512::new().chain_update(i.to_le_bytes()));
            wide.add_product(z, &x);
            sum += Scalar::from(z) * x;
        }
        assert_eq!(wide.reduce(), sum);
        assert_eq!(WideSum::default().reduce(), Scalar::ZERO);
    }

    #[test]
    fn small_order_read_from_the_encoding_is_is_small_order() {
        assert_eq!(small_order_ys().len(), 5);
        // Every torsion point, every point with a torsion component, and
        // both signs of each encoding (where it decompresses).
        let mut points: Vec<EdwardsPoint> = EIGHT_TORSION.to_vec();
        for i in 1..40u64 {
            let p = EdwardsPoint::mul_base(&Scalar::from(i * 7919 + 3));
            points.push(p);
            points.extend(EIGHT_TORSION.iter().map(|t| p + t));
        }
        let mut checked = 0;
        for p in points {
            for flip in [0u8, 0x80] {
                let mut encoding = p.compress().to_bytes();
                encoding[31] ^= flip;
                if !is_canonical(&encoding) {
                    continue;
                }
                let Some(q) = CompressedEdwardsY(encoding).decompress() else {
                    continue;
                };
                assert_eq!(
                    is_small_order_encoding(&encoding),
                    q.is_small_order(),
                    "{encoding:02x?}"
                );
                if let Ok(key) = VerifyingKey::from_bytes(&encoding) {
                    assert_eq!(is_small_order_encoding(&encoding), key.is_weak());
                }
                checked += 1;
            }
        }
        assert!(checked > 600, "{checked}");
    }

    #[test]
    fn non_canonical_and_small_order_encodings_are_refused() {
        let key = signing(3);
        let vk = key.verifying_key();
        let sig = key.sign(b"m").to_bytes();
        // R = the identity, of small order.
        let mut small = sig;
        small[..32].copy_from_slice(&[
            1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            0, 0, 0,
        ]);
        assert_eq!(verify(&vk, &[b"m"], &small), Err(Refusal::SmallOrderR));
        // y = p + 2, which decompresses (to y = 2) in curve25519-dalek.
        let mut beyond_p = [0xffu8; 32];
        beyond_p[0] = 0xef;
        beyond_p[31] = 0x7f;
        assert!(!is_canonical(&beyond_p));
        let mut non_canonical = sig;
        non_canonical[..32].copy_from_slice(&beyond_p);
        assert_eq!(
            verify(&vk, &[b"m"], &non_canonical),
            Err(Refusal::REncoding)
        );
        let mut below_p = beyond_p;
        below_p[0] = 0xec;
        assert!(is_canonical(&below_p));
    }
}

//! Batch checking of entry signatures: one multiscalar equation for many
//! entries.

use super::entry::{Entry, EntryError};

/// Batch-verifies the signatures of `entries`.
///
/// One multiscalar equation for the whole batch, with the terms of each
/// distinct author merged (a chain's entries come from few authors, so this
/// is about half the work of per-signature batching). The random weights are
/// derived from a hash of every signature and message, so the check is
/// deterministic and needs no RNG. Small-order `R` and weak keys are refused
/// as `verify_strict` refuses them.
///
/// # Errors
/// The position and error of the first entry whose signature fails.
pub fn verify_signatures(entries: &[Entry]) -> Result<(), (usize, EntryError)> {
    if entries.is_empty() || batch_equation_holds(entries) {
        return Ok(());
    }
    for (i, e) in entries.iter().enumerate() {
        e.verify_signature().map_err(|err| (i, err))?;
    }
    // Each verifies on its own but the batch does not (a small-order or
    // torsion component somewhere): refuse all the same.
    Err((0, EntryError::BadSignature("batch".into())))
}

fn batch_equation_holds(entries: &[Entry]) -> bool {
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
    use curve25519_dalek::scalar::Scalar;
    use curve25519_dalek::traits::{IsIdentity as _, VartimeMultiscalarMul as _};
    use sha2::{Digest as _, Sha512};

    let n = entries.len();
    let mut r_points = Vec::with_capacity(n);
    let mut s_scalars = Vec::with_capacity(n);
    let mut k_scalars = Vec::with_capacity(n);
    let mut author_of = Vec::with_capacity(n);
    let mut authors: Vec<([u8; 32], EdwardsPoint)> = Vec::new();
    let mut seed = Sha512::new();
    seed.update(b"vouch-entry-batch/v1");
    for e in entries {
        let sig = e.signature.to_bytes();
        let (r_bytes, s_bytes) = sig.split_at(32);
        let Ok(r_bytes) = <[u8; 32]>::try_from(r_bytes) else {
            return false;
        };
        let Ok(s_bytes) = <[u8; 32]>::try_from(s_bytes) else {
            return false;
        };
        let Some(r) = CompressedEdwardsY(r_bytes).decompress() else {
            return false;
        };
        if r.is_small_order() {
            return false;
        }
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let key = e.author.verifying_key();
        let a_bytes = key.to_bytes();
        let slot = match authors.iter().position(|(b, _)| *b == a_bytes) {
            Some(i) => i,
            None => {
                if key.is_weak() {
                    return false;
                }
                authors.push((a_bytes, key.to_edwards()));
                authors.len() - 1
            }
        };
        let [context, unsigned, close] = e.signing_input_parts();
        let k = Scalar::from_hash(
            Sha512::new()
                .chain_update(r_bytes)
                .chain_update(a_bytes)
                .chain_update(context)
                .chain_update(unsigned)
                .chain_update(close),
        );
        seed.update(r_bytes);
        seed.update(s_bytes);
        seed.update(k.as_bytes());
        r_points.push(r);
        s_scalars.push(s);
        k_scalars.push(k);
        author_of.push(slot);
    }
    let seed = seed.finalize();
    let mut b_coeff = Scalar::ZERO;
    let mut a_coeffs = vec![Scalar::ZERO; authors.len()];
    let mut scalars = Vec::with_capacity(1 + n + authors.len());
    scalars.push(Scalar::ZERO);
    for i in 0..n {
        let h = Sha512::new()
            .chain_update(seed)
            .chain_update((i as u64).to_le_bytes())
            .finalize();
        let mut z = [0u8; 32];
        z[..16].copy_from_slice(&h[..16]);
        let z = Scalar::from_bytes_mod_order(z);
        b_coeff -= z * s_scalars[i];
        a_coeffs[author_of[i]] += z * k_scalars[i];
        scalars.push(z);
    }
    scalars[0] = b_coeff;
    scalars.extend(a_coeffs);
    let points = std::iter::once(ED25519_BASEPOINT_POINT)
        .chain(r_points)
        .chain(authors.into_iter().map(|(_, p)| p));
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

//! Batch checking of entry signatures: one multiscalar equation for many
//! entries.

use super::entry::{Entry, EntryError};
use crate::ed25519::{self, Term};

/// Batch-verifies the signatures of `entries`, under the one Ed25519 rule
/// of [`crate::ed25519`].
///
/// One equation for the whole batch ([`ed25519::batch_holds`]), with the
/// terms of each distinct author merged (a chain's entries come from few
/// authors, so this is about half the work of per-signature batching).
/// The rule is the one [`Entry::verify_signature`] applies to an entry
/// alone, so an entry is accepted or refused alike whatever batch it is
/// checked in: nodes, replicas and `vouch-registry verify` agree.
///
/// # Errors
/// The position and error of the first entry whose signature fails.
pub fn verify_signatures(entries: &[Entry]) -> Result<(), (usize, EntryError)> {
    // A signature refused before any equation sends the whole batch to
    // the checks one by one, so the error is always the first bad entry's,
    // as checking each alone would report.
    let mut terms: Vec<Term> = Vec::with_capacity(entries.len());
    for e in entries {
        match Term::new(
            e.author().verifying_key(),
            &e.signing_input_parts(),
            &e.signature.to_bytes(),
        ) {
            Ok(term) => terms.push(term),
            Err(_) => break,
        }
    }
    if terms.len() == entries.len()
        && ed25519::batch_holds(b"vouch-entry-batch/v2", &terms.iter().collect::<Vec<_>>())
    {
        return Ok(());
    }
    for (i, e) in entries.iter().enumerate() {
        e.verify_signature().map_err(|err| (i, err))?;
    }
    // Each verifies on its own but the batch does not: only a chance of
    // about 2⁻¹²⁵ (or a bug) gets here. Refuse all the same.
    Err((0, EntryError::BadSignature("batch".into())))
}

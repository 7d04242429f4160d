//! The revocation chain's entries, their authorization rules, and the state
//! every node, witness and replica derives from them.
//!
//! An entry is one line of canonical JSON, signed by its author's did:key:
//! `{"author":…,"seq":…,"time":…,"action":{"type":…},"sig":…}`. The
//! signature covers `vouch-entry/v1\n` followed by the same JSON without
//! `sig`. The exact bytes are the Merkle leaf, so a parser accepts only the
//! canonical spelling: one spelling, one leaf hash.
//!
//! [`ChainState::apply`] holds the rules; it never checks entry signatures
//! (callers batch-verify them first with [`verify_signatures`]). The one
//! signature it checks is a rotate-key entry's proof that its author holds
//! the new key ([`rotation_message`]), which no batch covers.

mod batch;
mod entry;
mod state;

pub use batch::verify_signatures;
pub use entry::{
    rotation_message, Action, AuthorCache, Entry, EntryError, ListUri, ENTRY_CONTEXT,
    LIST_NAME_SEPARATOR, MAX_ENTRY_BYTES, MAX_LIST_NAME, MAX_LIST_URI, ROTATION_CONTEXT,
    STATUS_PATH,
};
pub(crate) use state::same_issuer;
pub use state::{ChainState, Issuer, ListRecord, Period, RuleError};

/// Keys and DIDs for the chain's unit tests.
#[cfg(test)]
mod test_keys {
    use ed25519_dalek::SigningKey;

    use crate::DidKey;

    /// The key whose 32 bytes are all `b`.
    pub(super) fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    /// The did:key of `k`.
    pub(super) fn id(k: &SigningKey) -> String {
        DidKey::from_public_key(&k.verifying_key())
            .as_str()
            .to_owned()
    }
}

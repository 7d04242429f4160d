//! vouch-wallet: the holder's side of Vouch.
//!
//! - [`archive`]: an issuer's JSON Lines archive (`credentials.jsonl`),
//!   read for import.
//! - [`backup`]: the whole wallet as one age file under a passphrase.
//! - [`store`]: the encrypted record store (sled; XChaCha20-Poly1305 under
//!   a data key wrapped by Argon2id of the passphrase).
//! - [`keys`]: the BIP-39 recovery phrase and SLIP-0010 holder keys
//!   (`m/7652'/0'/n'`).
//! - [`credential`]: what the wallet reads from a credential: facts,
//!   claims with labels, the names `--disclose` takes.
//! - [`share`]: a presentation as a QR code (PNG, SVG, terminal).
//! - [`when`]: Unix seconds as dates (UTC).
//! - [`wallet`]: [`Wallet`]: create, restore, receive, import, list, show,
//!   present, activity, change passphrase.

pub mod archive;
pub mod backup;
pub mod credential;
pub mod keys;
pub mod share;
pub mod store;
pub mod wallet;
pub mod when;

pub use wallet::{Binding, Wallet, WalletError};

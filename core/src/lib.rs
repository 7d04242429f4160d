//! Vouch core: the credential engine every other crate builds on.
//!
//! - [`anchor`]: anchor proofs, a credential's place in an anchored batch.
//! - [`archive`]: the JSON Lines archive of an issued batch (written by the
//!   issuer, imported from by the wallet).
//! - [`did`]: Ed25519 `did:key` — generate, parse, resolve offline.
//! - [`ed25519`]: the one Ed25519 verification rule (cofactored, strict
//!   encodings), alone and in batches.
//! - [`jws`]: compact JWS, EdDSA signing, EdDSA and ES256 verification.
//! - [`sd_jwt`]: RFC 9901 SD-JWT — conceal, present, KB-JWT, verify.
//! - [`vc`]: the SD-JWT VC profile (`typ: dc+sd-jwt`).
//! - [`status_list`]: Token Status List and the Status List Token.
//! - [`presentation`]: a presentation with its optional anchor proof, and
//!   the forms it travels in (compact, `VCH1:` envelope, file).
//! - [`envelope`]: the `VCH1:` QR envelope.
//! - [`qr`]: QR codes (alphanumeric mode) and PNG images of them.
//! - [`verdict`]: `Result<Verdict, VerifyError>`.
//! - [`log`]: RFC 9162 Merkle log maths, blocks as C2SP checkpoints,
//!   witness cosignatures.
//! - [`chain`]: revocation-chain entries, their rules, the derived state.
//! - [`view`]: [`view::ChainView`], what a replica knows as of a block.
//! - [`template`]: credential templates as data (`vct` → kind, labels).
//! - [`verify`]: verification in one call, against a chain view and a policy.
//! - [`seal`]: secrets at rest (Argon2id passphrase keys, XChaCha20-Poly1305).
//! - `scan` (cargo feature `scan`): QR codes read from PNG/JPEG images
//!   (rxing), with size limits before any pixel is decoded.
//! - `sample` (cargo feature `sample`, off by default): the sample
//!   transcript the examples, tests and benchmarks use.
//!
//! Sans-IO: no files, no network, no clock, no global RNG. Time comes in as
//! Unix seconds, randomness as an RNG argument.

pub mod anchor;
pub mod archive;
pub mod b64;
mod base45;
pub mod chain;
pub mod did;
pub mod ed25519;
pub mod envelope;
pub mod jws;
pub mod log;
pub mod manifest;
pub mod path;
pub mod presentation;
pub mod presentation_request;
pub mod qr;
#[cfg(any(test, feature = "sample"))]
pub mod sample;
#[cfg(feature = "scan")]
pub mod scan;
pub mod sd_jwt;
pub mod seal;
pub mod status_list;
pub mod template;
pub mod vc;
pub mod verdict;
pub mod verify;
pub mod view;

pub use anchor::AnchorProof;
pub use did::DidKey;
pub use path::ClaimPath;
pub use sd_jwt::SdJwt;
pub use verdict::{Check, CheckName, Outcome, Verdict, VerifyError};

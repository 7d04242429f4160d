//! SD-JWT (RFC 9901): issuance with object-property and array-element
//! disclosures, nested and with decoys; presentation by claim path; KB-JWT;
//! strict verification.
//!
//! Disclosures are encoded and decoded here, in one pass each, exactly as
//! ssi's SD-JWT primitives (`DisclosureBuf`, `DecodedDisclosure`) do: unit
//! tests hold the two together. The tree walks, the presentation selection
//! and every check ssi leaves to the caller (each digest referenced at most
//! once, reserved names, KB-JWT signature, `aud`, `nonce`, `sd_hash`, holder
//! key, times) are here.

mod compact;
mod conceal;
mod disclosure;
mod reveal;
mod verify;

pub(crate) use compact::DecodedPart;
pub use compact::{SdJwt, SdJwtError};
pub use conceal::{conceal, ConcealError, ConcealPlan, Concealment, IssueBuffers};
pub(crate) use conceal::{issue_compact, issue_planned};
pub use disclosure::{digest, Disclosure, DisclosureError};
pub(crate) use disclosure::{map_sorts_keys, write_json, write_json_str};
pub use reveal::{PresentError, RevealError, Revealed};
pub(crate) use verify::Deferral;
pub use verify::{check_batch, verify, verify_parsed, KeyBinding, Signatures, VerifyOptions};

/// `_sd`: the digests of an object's selectively disclosable properties.
pub const SD: &str = "_sd";
/// `...`: the digest of a selectively disclosable array element.
pub const ELLIPSIS: &str = "...";
/// `_sd_alg`: the digest algorithm.
pub const SD_ALG: &str = "_sd_alg";

/// The only digest algorithm Vouch issues and accepts.
pub const SHA_256: &str = "sha-256";
/// `typ` of a KB-JWT.
pub const KB_JWT_TYP: &str = "kb+jwt";

/// Deepest nesting Vouch accepts. A claim path (object keys and array
/// indexes from the top of the claim set, counted through every disclosure
/// it passes) has at most this many segments, and no JSON value in an SD-JWT
/// (payload, disclosure value) nests more containers than this. Credentials
/// nest 3–5 levels; the bound keeps the recursive walks over claims, and the
/// drop of what they build, far inside a 2 MiB thread stack whatever the
/// input.
pub const MAX_DEPTH: usize = 32;

/// Most disclosures one SD-JWT may carry (issued or parsed).
pub const MAX_DISCLOSURES: usize = 1024;

/// Longest SD-JWT text accepted by [`SdJwt::parse`] and
/// [`SdJwt::from_json_serialization`], in bytes. Everything decoded from it
/// is smaller, and so are the revealed claims: each disclosure is revealed
/// at most once.
pub const MAX_SD_JWT_BYTES: usize = 1024 * 1024;

/// Registered claims whose meaning verification relies on: they must be in
/// the issuer-signed payload itself, never in or beneath a disclosure
/// (SD-JWT VC §3.2.2: `iss`, `nbf`, `exp`, `cnf`, `vct`, `vct#integrity` and
/// `status` must not be selectively disclosed). Otherwise a verifier would
/// take a withheld `exp` or `status` for an absent one. Refused when
/// concealing and when revealing.
pub const NOT_DISCLOSABLE: &[&str] =
    &["iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"];

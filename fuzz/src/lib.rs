//! The checks behind the fuzz targets, one function per parser of outside
//! input. Each takes the raw fuzz input and panics only when an invariant
//! breaks (or the code under test panics).
//!
//! `core_checks`, `issuer_checks`, `relay` and `verifier_checks` use
//! nothing but their crate and its dependencies, so the regression tests of
//! those crates include the same files (`#[path]`) and replay the saved
//! corpus and crash cases through exactly these calls in the normal
//! `cargo test`.

pub mod core_checks;
pub mod issuer_checks;
pub mod relay;
pub mod verifier_checks;

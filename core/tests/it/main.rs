//! vouch-core integration tests: spec vectors, flows, failure cases, mutation.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
mod envelope;
mod fail;
mod flows;
mod fuzz_cases;
mod log;
mod mutation;
mod vectors;

//! vouch-core integration tests: spec vectors, flows, failure cases, mutation.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod chain_rules;
mod common;
mod duplicates;
mod envelope;
mod fail;
mod flows;
mod fuzz_cases;
mod limits;
mod log;
mod mutation;
mod peer_fixture;
mod reveal;
mod vectors;
mod verify;
mod withheld_iat;

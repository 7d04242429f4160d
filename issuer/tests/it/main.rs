//! vouch-issuer tests that run the real binary: help, a valid batch, a bad
//! row, --skip-invalid, revocation seen by a replica, kill -9 mid-batch.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cli;
mod fuzz_cases;

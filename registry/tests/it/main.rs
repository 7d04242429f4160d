//! vouch-registry integration tests: the API's refusals, a node with two
//! witnesses and a replica on loopback, a forked log, kill -9 of the real
//! binary.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod common;
mod crash;
mod fork;
mod fuzz_cases;
mod network;

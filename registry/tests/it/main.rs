//! vouch-registry integration tests: the API's refusals, a node with two
//! witnesses and a replica on loopback, a forked log, kill -9 of the real
//! binary.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod api;
mod client;
mod clock;
mod common;
mod cosign;
mod crash;
mod fork;
mod fuzz_cases;
mod heartbeat;
mod limits;
mod network;
mod relay;
mod replica_crash;
mod replica_tiles;
mod source;
mod view;
mod witness_checks;

//! vouch-verifier integration tests: one binary.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cli;
mod common;
mod fuzz_cases;
mod library;
mod page;
mod pool;
mod service;
#[path = "../support/university.rs"]
mod university;

//! vouch-core integration tests: spec vectors, flows, failure cases, mutation.

mod common;
mod envelope;
mod fail;
mod flows;
mod mutation;
mod vectors;

//! vouch-e2e: end-to-end flows across all crates, the demo and the test vectors.

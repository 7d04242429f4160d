//! vouch-app's views driven headless through Slint's testing backend:
//! elements are found by their accessible labels (build.rs compiles the
//! views with debug info for that).

#![allow(clippy::unwrap_used)]

mod cli;
mod drop;
mod flow;
mod panic;
mod relay;
mod request;
mod restore;
mod sync;
mod views;
mod xvfb;

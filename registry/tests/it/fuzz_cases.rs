//! Replays the relay fuzz corpora and the saved crash cases
//! (fuzz/corpus/{relay,relay_link}/, fuzz/artifacts-kept/…) through the
//! checks the fuzz targets run (fuzz/src/relay.rs, included here: one
//! upload and fetch through the real router; relay links), in the normal
//! `cargo test`.

#[path = "../../../fuzz/src/relay.rs"]
#[allow(dead_code)]
mod checks;

#[path = "../../../fuzz/src/cases.rs"]
mod cases;

use std::sync::Arc;

use vouch_registry::api;
use vouch_registry::node::Node;

use crate::common::{init_node, tempdir};

#[tokio::test]
async fn fuzz_cases_relay() {
    let dir = tempdir("fuzz-relay");
    init_node(dir.path(), vec![], 0);
    let app = api::app(Arc::new(Node::open(dir.path()).unwrap())).unwrap();
    let fuzz = cases::fuzz_dir(env!("CARGO_MANIFEST_DIR"));
    let files = cases::case_files(&fuzz, &["corpus", "artifacts-kept"], "relay");
    assert!(
        !files.is_empty(),
        "no relay corpus under {}",
        fuzz.display()
    );
    for path in files {
        let data = std::fs::read(&path).unwrap();
        // A failing case panics the test after this line names it.
        eprintln!("relay fuzz case {}", path.display());
        checks::relay_case(&app, &data).await;
    }
}

#[test]
fn fuzz_cases_relay_link() {
    let fuzz = cases::fuzz_dir(env!("CARGO_MANIFEST_DIR"));
    let dirs = ["corpus", "artifacts-kept"];
    cases::replay(&fuzz, &dirs, "relay_link", checks::relay_link, true);
}

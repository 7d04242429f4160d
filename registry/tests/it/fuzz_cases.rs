//! Replays the relay fuzz corpus and the saved crash cases
//! (fuzz/corpus/relay/, fuzz/artifacts-kept/relay/) through the check the
//! fuzz target runs (fuzz/src/relay.rs, included here: one upload and fetch
//! through the real router), in the normal `cargo test`.

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

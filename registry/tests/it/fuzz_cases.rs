//! Replays the relay fuzz corpus and the saved crash cases
//! (fuzz/corpus/relay/, fuzz/artifacts-kept/relay/) through the check the
//! fuzz target runs (fuzz/src/relay.rs, included here: one upload and fetch
//! through the real router), in the normal `cargo test`.

#[path = "../../../fuzz/src/relay.rs"]
#[allow(dead_code)]
mod checks;

use std::path::Path;
use std::sync::Arc;

use vouch_registry::api;
use vouch_registry::node::Node;

use crate::common::{init_node, TempDir};

#[tokio::test]
async fn fuzz_cases_relay() {
    let dir = TempDir::new("fuzz-relay");
    init_node(dir.path(), vec![], 0);
    let app = api::app(Arc::new(Node::open(dir.path()).unwrap())).unwrap();
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for sub in ["corpus/relay", "artifacts-kept/relay"] {
        let Ok(listing) = std::fs::read_dir(fuzz.join(sub)) else {
            continue;
        };
        for item in listing {
            let path = item.unwrap().path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if path.is_file() && !hidden {
                files.push(path);
            }
        }
    }
    files.sort();
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

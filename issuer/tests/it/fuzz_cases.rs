//! Replays the csv_row fuzz corpus and the saved crash cases
//! (fuzz/corpus/csv_row/, fuzz/artifacts-kept/csv_row/) through the check the
//! fuzz target runs (fuzz/src/issuer_checks.rs, included here), in the normal
//! `cargo test`.

#[path = "../../../fuzz/src/issuer_checks.rs"]
mod checks;

use std::path::Path;

#[test]
fn fuzz_cases_csv_row() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut files = Vec::new();
    for dir in ["corpus/csv_row", "artifacts-kept/csv_row"] {
        let Ok(listing) = std::fs::read_dir(fuzz.join(dir)) else {
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
        "no csv_row corpus under {}",
        fuzz.display()
    );
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| checks::csv_row(&data));
        assert!(outcome.is_ok(), "fuzz case {} panicked", path.display());
    }
}

//! The saved fuzz inputs of a target, for the replay tests that run them in
//! the normal `cargo test` (core/tests/it/fuzz_cases.rs,
//! issuer/tests/it/fuzz_cases.rs, registry/tests/it/fuzz_cases.rs and
//! verifier/tests/it/fuzz_cases.rs include this file). Not part of the
//! fuzz targets themselves.

use std::path::{Path, PathBuf};

/// The fuzz directory beside a workspace member's manifest directory.
pub fn fuzz_dir(manifest_dir: &str) -> PathBuf {
    Path::new(manifest_dir).join("../fuzz")
}

/// Every file (not hidden) of `fuzz/<dir>/<target>/` for each of `dirs`,
/// sorted; a missing directory has none.
pub fn case_files(fuzz: &Path, dirs: &[&str], target: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in dirs {
        let Ok(listing) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
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
    files
}

/// Runs `check` on every case of `target` under `fuzz/<dir>/` for each of
/// `dirs` ([`case_files`]), and then fails naming each case that panicked;
/// when `required`, it also fails when there is no case at all.
pub fn replay(fuzz: &Path, dirs: &[&str], target: &str, check: fn(&[u8]), required: bool) {
    let files = case_files(fuzz, dirs, target);
    assert!(
        !required || !files.is_empty(),
        "no corpus for fuzz target {target} under {}",
        fuzz.display()
    );
    let mut failed = Vec::new();
    for path in files {
        let data = std::fs::read(&path).unwrap();
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "fuzz cases that panicked: {failed:#?}");
}

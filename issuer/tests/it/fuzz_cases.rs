//! Replays the csv_row fuzz corpus and the saved crash cases
//! (fuzz/corpus/csv_row/, fuzz/artifacts-kept/csv_row/) through the check the
//! fuzz target runs (fuzz/src/issuer_checks.rs, included here), in the normal
//! `cargo test`.

#[path = "../../../fuzz/src/issuer_checks.rs"]
mod checks;

#[path = "../../../fuzz/src/cases.rs"]
mod cases;

#[test]
fn fuzz_cases_csv_row() {
    let fuzz = cases::fuzz_dir(env!("CARGO_MANIFEST_DIR"));
    let files = cases::case_files(&fuzz, &["corpus", "artifacts-kept"], "csv_row");
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

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
    let dirs = ["corpus", "artifacts-kept"];
    cases::replay(&fuzz, &dirs, "csv_row", checks::csv_row, true);
}

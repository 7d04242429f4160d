//! Replays the verifier's fuzz corpora and saved crash cases
//! (fuzz/corpus/<target>/, fuzz/artifacts-kept/<target>/ for `policy_file`,
//! `verifier_input` and `qr_image`) through the checks the fuzz targets run
//! (fuzz/src/verifier_checks.rs, included here), in the normal `cargo test`.

#[path = "../../../fuzz/src/verifier_checks.rs"]
#[allow(dead_code)]
mod checks;

#[path = "../../../fuzz/src/cases.rs"]
mod cases;

/// Every file of the target's corpus and kept artifacts through `check`; a
/// panic names the file.
fn replay(target: &str, check: fn(&[u8])) {
    let fuzz = cases::fuzz_dir(env!("CARGO_MANIFEST_DIR"));
    cases::replay(&fuzz, &["corpus", "artifacts-kept"], target, check, true);
}

#[test]
fn fuzz_cases_policy_file() {
    replay("policy_file", checks::policy_file);
}

#[test]
fn fuzz_cases_verifier_input() {
    replay("verifier_input", checks::verifier_input);
}

#[test]
fn fuzz_cases_qr_image() {
    replay("qr_image", checks::qr_image);
}

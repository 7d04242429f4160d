//! Replays the fuzz corpus and the saved crash cases (fuzz/corpus/<target>/,
//! fuzz/artifacts-kept/<target>/) through the checks the fuzz targets run
//! (fuzz/src/core_checks.rs, included here), so every input the fuzzers
//! kept is a regression test in the normal `cargo test`.

#[path = "../../../fuzz/src/core_checks.rs"]
#[allow(dead_code)]
mod checks;

#[path = "../../../fuzz/src/cases.rs"]
mod cases;

use std::path::PathBuf;

/// A fuzz target's check.
type Check = fn(&[u8]);

fn fuzz_dir() -> PathBuf {
    cases::fuzz_dir(env!("CARGO_MANIFEST_DIR"))
}

/// Every file of the target's corpus and kept artifacts, through `check`.
/// A panic names the file.
fn replay(target: &str, check: Check) {
    replay_from(&["corpus", "artifacts-kept"], target, check, true);
}

fn replay_from(dirs: &[&str], target: &str, check: Check, required: bool) {
    cases::replay(&fuzz_dir(), dirs, target, check, required);
}

/// Crash cases of bugs still open (fuzz/artifacts-open/, see its README):
/// they fail, or abort the process with a stack overflow, until fixed; then
/// they move to artifacts-kept/ and run in every `cargo test`.
#[test]
#[ignore = "open bugs found by fuzzing; run with --ignored"]
fn fuzz_cases_open() {
    let targets: [(&str, Check); 14] = [
        ("sd_jwt_compact", checks::sd_jwt_compact),
        ("sd_jwt_kb", checks::sd_jwt_kb),
        ("envelope", checks::envelope),
        ("chain_entry", checks::chain_entry),
        ("checkpoint", checks::checkpoint),
        ("status_list", checks::status_list),
        ("did_key", checks::did_key),
        ("anchor_proof", checks::anchor_proof),
        ("presentation_request", checks::presentation_request),
        ("manifest", checks::manifest),
        ("envelope_anchor", checks::envelope_anchor),
        ("presentation_file", checks::presentation_file),
        ("archive", checks::archive),
        ("json_object", checks::json_object),
    ];
    for (target, check) in targets {
        replay_from(&["artifacts-open"], target, check, false);
    }
}

#[test]
fn fuzz_cases_sd_jwt_compact() {
    replay("sd_jwt_compact", checks::sd_jwt_compact);
}

#[test]
fn fuzz_cases_sd_jwt_kb() {
    replay("sd_jwt_kb", checks::sd_jwt_kb);
}

#[test]
fn fuzz_cases_envelope() {
    replay("envelope", checks::envelope);
}

#[test]
fn fuzz_cases_chain_entry() {
    replay("chain_entry", checks::chain_entry);
}

#[test]
fn fuzz_cases_checkpoint() {
    replay("checkpoint", checks::checkpoint);
}

#[test]
fn fuzz_cases_status_list() {
    replay("status_list", checks::status_list);
}

#[test]
fn fuzz_cases_did_key() {
    replay("did_key", checks::did_key);
}

#[test]
fn fuzz_cases_anchor_proof() {
    replay("anchor_proof", checks::anchor_proof);
}

#[test]
fn fuzz_cases_presentation_request() {
    replay("presentation_request", checks::presentation_request);
}

#[test]
fn fuzz_cases_manifest() {
    replay("manifest", checks::manifest);
}

#[test]
fn fuzz_cases_archive() {
    replay("archive", checks::archive);
}

#[test]
fn fuzz_cases_json_object() {
    replay("json_object", checks::json_object);
}

#[test]
fn fuzz_cases_envelope_anchor() {
    replay("envelope_anchor", checks::envelope_anchor);
}

#[test]
fn fuzz_cases_presentation_file() {
    replay("presentation_file", checks::presentation_file);
}

/// The generated seeds are worth fuzzing from: Vouch's own presentations in
/// the sd_jwt_kb corpus pass every check (so mutations start deep in the
/// verifier), as fuzz/src/core_checks.rs verifies them.
#[test]
fn fuzz_seed_presentations_verify() {
    let dir = fuzz_dir().join("corpus/sd_jwt_kb");
    let request = vouch_core::vc::PresentationRequest {
        aud: checks::AUD.into(),
        nonce: checks::NONCE.into(),
        max_age: 300,
    };
    let mut seen = 0;
    for item in std::fs::read_dir(&dir).unwrap() {
        let path = item.unwrap().path();
        if !path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("vouch-")
        {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let verdict = vouch_core::vc::verify_presentation(&text, &request, checks::NOW).unwrap();
        assert!(verdict.is_valid(), "{}: {verdict:?}", path.display());
        seen += 1;
    }
    assert!(seen > 0, "no vouch-* seeds in {}", dir.display());
}

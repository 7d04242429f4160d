//! A university that issues 12- or 6-course transcripts to given holders:
//! shared by the verifier's tests (`tests/it/common.rs`) and its HTTP load
//! benchmark (`benches/http_load.rs`), each of which includes this file.

use std::path::Path;

use ed25519_dalek::SigningKey;
use vouch_core::DidKey;
use vouch_issuer::issuer::{self, Issuer, Quiet};
use vouch_issuer::keystore::Cost;
use vouch_issuer::template::Template;

/// The issuer's keystore passphrase.
pub const PASSPHRASE: &str = "pw";

/// The transcript CSV for `holders`, `courses` courses each (grades A and
/// B alternating).
pub fn transcript_csv(holders: &[SigningKey], courses: usize) -> String {
    let mut csv = String::from(
        "holder,institution,student_name,student_id,programme,degree,award_date,gpa,courses\n",
    );
    for (i, h) in holders.iter().enumerate() {
        let list: Vec<String> = (0..courses)
            .map(|c| format!("CS{c:03}|Course {c}|6|{}|2025-S1", ["A", "B"][(i + c) % 2]))
            .collect();
        csv.push_str(&format!(
            "{},University of Example,Student {i},S{i:05},Computer Science,BSc,2025-07-15,3.40,\"{}\"\n",
            DidKey::from_public_key(&h.verifying_key()).as_str(),
            list.join("; ")
        ));
    }
    csv
}

/// Creates the "University of Example" issuer in `dir` and issues each of
/// `holders` a transcript of `courses` courses into `out`, anchored on its
/// embedded registry. Returns the open issuer (drop it before opening the
/// registry's node: the store is locked while it is open), the transcript
/// template and the CSV.
pub async fn issue_transcripts(
    dir: &Path,
    out: &Path,
    holders: &[SigningKey],
    courses: usize,
) -> (Issuer, Template, String) {
    issuer::init(dir, "University of Example", None, PASSPHRASE, Cost::TEST).unwrap();
    let csv = transcript_csv(holders, courses);
    let template = vouch_issuer::template::find("transcript").unwrap();
    let (rows, errors) = vouch_issuer::input::parse(csv.as_bytes(), &template).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let iss = Issuer::open(dir, PASSPHRASE).unwrap();
    let id = issuer::batch_id(&template, csv.as_bytes(), false);
    let report = iss
        .issue(&template, &id, &rows, out, false, &Quiet)
        .await
        .unwrap();
    assert_eq!(report.issued, holders.len());
    (iss, template, csv)
}

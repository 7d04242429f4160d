//! Sample data: a university transcript with 12 courses, as used by the
//! examples, tests and benchmarks. Deterministic from a seed.

use serde_json::{json, Map, Value};

use crate::path::ClaimPath;
use crate::sd_jwt::Concealment;

/// `vct` of the sample transcript.
pub const TRANSCRIPT_VCT: &str = "https://vouch.example/vct/transcript";

const COURSES: [(&str, &str, u64); 12] = [
    ("CS101", "Introduction to Programming", 6),
    ("CS102", "Data Structures", 6),
    ("MA101", "Linear Algebra", 5),
    ("MA102", "Calculus", 5),
    ("CS201", "Algorithms", 6),
    ("CS202", "Operating Systems", 6),
    ("CS203", "Databases", 6),
    ("CS204", "Computer Networks", 5),
    ("CS301", "Distributed Systems", 6),
    ("CS302", "Cryptography", 6),
    ("CS303", "Compilers", 6),
    ("CS399", "Bachelor Thesis", 12),
];

/// The subject claims of a transcript for student number `n`.
pub fn transcript_claims(n: u64) -> Map<String, Value> {
    let grades = ["A", "B", "A", "C", "B", "A"];
    let courses: Vec<Value> = COURSES
        .iter()
        .enumerate()
        .map(|(i, (code, title, credits))| {
            json!({
                "code": code,
                "title": title,
                "credits": credits,
                "grade": grades[(i + n as usize) % grades.len()],
                "term": if i < 6 { "2024-S1" } else { "2025-S1" },
            })
        })
        .collect();
    let Value::Object(map) = json!({
        "institution": "University of Example",
        "student_name": format!("Student {n}"),
        "student_id": format!("S{n:08}"),
        "programme": "Computer Science",
        "degree": "Bachelor of Science",
        "award_date": "2025-07-15",
        "gpa": "3.60",
        "courses": courses,
    }) else {
        unreachable!("json! of an object literal is an object")
    };
    map
}

/// The transcript's selectively disclosable top-level claims.
pub const TRANSCRIPT_SUBJECT_SD: [&str; 6] = [
    "student_name",
    "student_id",
    "programme",
    "degree",
    "award_date",
    "gpa",
];

/// The 18 selectively disclosable paths of the transcript: six top-level
/// claims and each of the 12 courses.
pub fn transcript_concealment() -> Concealment {
    let mut paths: Vec<ClaimPath> = TRANSCRIPT_SUBJECT_SD
        .iter()
        .map(|p| ClaimPath::parse(p).unwrap_or_default())
        .collect();
    paths.extend(
        (0..COURSES.len()).map(|i| ClaimPath::parse(&format!("/courses/{i}")).unwrap_or_default()),
    );
    Concealment {
        paths,
        max_decoys: 0,
    }
}

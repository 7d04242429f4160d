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

/// The key of the sample issuer the tests of the wallet and the app use.
pub fn issuer_key() -> crate::vc::IssuerKey {
    crate::vc::IssuerKey::new(ed25519_dalek::SigningKey::from_bytes(&[42; 32]))
}

/// A 12-course transcript's claims in the shape of the built-in
/// `transcript` template: courses `CS100` … `CS111`, course `i` titled
/// `title(i)` and graded A, B, C in turn.
pub fn template_transcript_claims(
    student: &str,
    student_id: &str,
    title: impl Fn(usize) -> String,
) -> Map<String, Value> {
    let courses: Vec<Value> = (0..12)
        .map(|i| {
            json!({"code": format!("CS{}", 100 + i), "title": title(i),
                   "credits": 6, "grade": (["A", "B", "C"][i % 3]), "term": "2025-S1"})
        })
        .collect();
    let mut claims = Map::new();
    for (name, value) in [
        ("institution", json!("State University")),
        ("student_name", json!(student)),
        ("student_id", json!(student_id)),
        ("programme", json!("Computer Science")),
        ("degree", json!("BSc")),
        ("award_date", json!("2025-07-15")),
        ("gpa", json!(3.4)),
        ("courses", Value::Array(courses)),
    ] {
        claims.insert(name.to_owned(), value);
    }
    claims
}

/// Course titles of 90 letters, different for each `i`, that deflate does
/// not shrink much: every claim of a transcript with them is too dense for
/// one QR code.
pub fn incompressible_title(i: usize) -> String {
    use sha2::{Digest as _, Sha256};
    const LETTERS: &[u8; 30] = b"abcdefghijklmnopqrstuvwxyz .,;";
    (0..3u8)
        .flat_map(|block| Sha256::digest([&(i as u64).to_le_bytes()[..], &[block]].concat()))
        .take(90)
        .map(|b| char::from(LETTERS[usize::from(b) % LETTERS.len()]))
        .collect()
}

/// Issues `claims` as a credential of `template` (with its concealment) to
/// `holder` at `iat`, signed by [`issuer_key`]; the SD-JWT text.
///
/// # Errors
/// [`IssueError`](crate::vc::IssueError) when the claims do not fit the
/// template's concealment.
pub fn issue_as(
    template: &crate::template::Template,
    claims: Map<String, Value>,
    holder: &crate::DidKey,
    iat: i64,
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> Result<String, crate::vc::IssueError> {
    let request = crate::vc::CredentialRequest {
        vct: template.vct.clone(),
        iat,
        exp: None,
        holder: crate::jws::PublicKey::Ed25519(*holder.verifying_key()),
        status: None,
        concealment: template.concealment(&claims),
        claims,
    };
    Ok(crate::vc::issue(request, &issuer_key(), rng)?.serialize())
}

/// `now` of the credential benchmark's fixture.
pub const BENCH_NOW: i64 = 1_780_000_000;
/// Audience of the credential benchmark's presentation.
pub const BENCH_AUD: &str = "https://hr.example.com";
/// Nonce of the credential benchmark's presentation.
pub const BENCH_NONCE: &str = "n-0S6_WzA2Mj";

/// The credential benchmark's fixture (`benches/credential.rs`, and the
/// `credential_ops` example that counts its instructions): the transcript of
/// student 7 issued with a status reference, 3 of its courses presented
/// with a KB-JWT, and the request that presentation answers.
#[derive(Debug)]
pub struct BenchFixture {
    /// The issuer.
    pub issuer: crate::vc::IssuerKey,
    /// The holder's key.
    pub holder: ed25519_dalek::SigningKey,
    /// What is issued.
    pub request: crate::vc::CredentialRequest,
    /// The issued credential.
    pub credential: crate::SdJwt,
    /// The three courses disclosed.
    pub disclose: Vec<ClaimPath>,
    /// The presentation of those, bound to [`BENCH_AUD`] and [`BENCH_NONCE`].
    pub presentation: String,
    /// The request it answers.
    pub verify_request: crate::vc::PresentationRequest,
}

/// Builds [`BenchFixture`], issuing with `rng` (the same every time for
/// the same seeded `rng`).
///
/// # Panics
/// Never: its inputs are constants that issue and present (the
/// benchmark's own checks would fail first).
#[allow(clippy::expect_used)]
pub fn bench_fixture(rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng)) -> BenchFixture {
    let issuer = crate::vc::IssuerKey::new(ed25519_dalek::SigningKey::from_bytes(&[0x11; 32]));
    let holder = ed25519_dalek::SigningKey::from_bytes(&[0x22; 32]);
    let request = crate::vc::CredentialRequest {
        vct: TRANSCRIPT_VCT.into(),
        iat: BENCH_NOW - 86_400,
        exp: Some(BENCH_NOW + 365 * 86_400),
        holder: crate::jws::PublicKey::Ed25519(holder.verifying_key()),
        status: Some(crate::status_list::StatusRef {
            idx: 4711,
            uri: "https://registry.example/status/1".into(),
        }),
        claims: transcript_claims(7),
        concealment: transcript_concealment(),
    };
    let credential =
        crate::vc::issue(request.clone(), &issuer, rng).expect("the sample transcript issues");
    let disclose: Vec<ClaimPath> = ["/courses/0", "/courses/4", "/courses/7"]
        .iter()
        .map(|p| ClaimPath::parse(p).expect("a constant path"))
        .collect();
    let presentation = credential
        .present(&disclose)
        .expect("three of its courses present")
        .bind(&holder, BENCH_AUD, BENCH_NONCE, BENCH_NOW)
        .serialize();
    let verify_request = crate::vc::PresentationRequest {
        aud: BENCH_AUD.into(),
        nonce: BENCH_NONCE.into(),
        max_age: 300,
    };
    BenchFixture {
        issuer,
        holder,
        request,
        credential,
        disclose,
        presentation,
        verify_request,
    }
}

/// `vc::issue_claims` of `request`'s claims borrowed into slices, as the
/// batch issuer borrows a row's cells: the credential benchmark and the
/// `credential_ops` example time it, building the slices inside the timing.
/// Handles the sample's shape (top-level values, and arrays of objects
/// whose members are values).
///
/// # Panics
/// When `request` does not issue (the sample's does).
#[allow(clippy::expect_used)]
pub fn issue_borrowed(
    request: &crate::vc::CredentialRequest,
    issuer: &crate::vc::IssuerKey,
    rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
) -> String {
    use crate::vc::Claim;

    fn leaf(value: &Value) -> Claim<'_> {
        match value {
            Value::String(s) => Claim::Str(s),
            Value::Number(n) if n.is_i64() => n.as_i64().map_or(Claim::Json(value), Claim::Int),
            other => Claim::Json(other),
        }
    }

    // The objects' members in one list, the objects in another, then the top.
    let mut members: Vec<(&str, Claim<'_>)> = Vec::with_capacity(64);
    let mut ends = Vec::with_capacity(16);
    for value in request.claims.values() {
        for item in value.as_array().into_iter().flatten() {
            for (name, v) in item.as_object().into_iter().flatten() {
                members.push((name, leaf(v)));
            }
            ends.push(members.len());
        }
    }
    let items = Claim::objects(&members, &ends);
    let top: Vec<(&str, Claim<'_>)> = request
        .claims
        .iter()
        .map(|(name, v)| match v {
            Value::Array(_) => (name.as_str(), Claim::Array(&items)),
            other => (name.as_str(), leaf(other)),
        })
        .collect();
    let borrowed = request.borrowed(&top, &request.concealment);
    crate::vc::issue_claims(&borrowed, issuer, rng).expect("the sample's claims issue")
}

//! `benches/peer/fixture.json`, the JS peer bench's copy of the credential
//! bench's fixture, is the Rust sample: same claims, disclosures, times,
//! status, request. (The peer's rates compare only if it signs the same
//! transcript.)

use serde_json::{json, Value};
use vouch_core::{sample, ClaimPath};

#[test]
fn the_peer_bench_fixture_is_the_rust_sample() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/peer/fixture.json");
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rust =
        sample::bench_fixture(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1));
    assert_eq!(
        fixture["claims"],
        Value::Object(rust.request.claims.clone())
    );
    assert_eq!(fixture["vct"], json!(rust.request.vct));
    assert_eq!(fixture["iat"], json!(rust.request.iat));
    assert_eq!(fixture["exp"], json!(rust.request.exp));
    assert_eq!(fixture["now"], json!(sample::BENCH_NOW));
    assert_eq!(fixture["aud"], json!(sample::BENCH_AUD));
    assert_eq!(fixture["nonce"], json!(sample::BENCH_NONCE));
    let status = rust.request.status.as_ref().unwrap();
    assert_eq!(
        fixture["status"],
        json!({"status_list": {"idx": status.idx, "uri": status.uri}})
    );
    // The concealed paths: the six top-level claims, then every course.
    let mut concealed: Vec<ClaimPath> = fixture["selectively_disclosable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| ClaimPath::parse(name.as_str().unwrap()).unwrap())
        .collect();
    let courses = fixture["claims"]["courses"].as_array().unwrap().len();
    concealed.extend((0..courses).map(|i| ClaimPath::parse(&format!("/courses/{i}")).unwrap()));
    assert_eq!(concealed, rust.request.concealment.paths);
    let disclosed: Vec<ClaimPath> = fixture["disclosed_courses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| ClaimPath::parse(&format!("/courses/{i}")).unwrap())
        .collect();
    assert_eq!(disclosed, rust.disclose);
}

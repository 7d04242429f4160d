//! The whole path across crates: an issuer batch-issues transcripts on its
//! embedded registry and revokes one; holders present three courses bound to
//! a verifier's nonce, through the QR envelope; the verifier checks each
//! presentation offline and reads accreditation and revocation from its own
//! replica of the chain.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::SeedableRng as _;
use vouch_core::vc::{self, PresentationRequest};
use vouch_core::{envelope, ClaimPath, DidKey, SdJwt};
use vouch_issuer::issuer::{self, Issuer, Quiet};
use vouch_issuer::keystore::Cost;
use vouch_issuer::template;
use vouch_registry::client::NodeClient;
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, Trust};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_present_verify_with_revocation_from_a_replica() {
    let root = std::env::temp_dir().join(format!("vouch-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let dir = root.join("university");
    issuer::init(&dir, "University of Example", None, "pw", Cost::TEST).unwrap();

    // Three holders, one transcript each.
    let holders: Vec<SigningKey> = (0..3)
        .map(|i| SigningKey::generate(&mut rand::rngs::StdRng::seed_from_u64(i)))
        .collect();
    let mut csv = String::from(
        "holder,institution,student_name,student_id,programme,degree,award_date,gpa,courses\n",
    );
    for (i, h) in holders.iter().enumerate() {
        let courses: Vec<String> = (0..12)
            .map(|c| {
                format!(
                    "CS{c:03}|Course {c}|6|{}|2025-S1",
                    ["A", "B", "C"][(i + c) % 3]
                )
            })
            .collect();
        csv.push_str(&format!(
            "{},University of Example,Student {i},S{i:05},Computer Science,BSc,2025-07-15,3.40,\"{}\"\n",
            DidKey::from_public_key(&h.verifying_key()).as_str(),
            courses.join("; ")
        ));
    }
    let template = template::find("transcript").unwrap();
    let (rows, errors) = vouch_issuer::input::parse(csv.as_bytes(), &template).unwrap();
    assert!(errors.is_empty());
    let out = root.join("credentials");
    let (uri, revoked_idx) = {
        let iss = Issuer::open(&dir, "pw").unwrap();
        let id = issuer::batch_id(&template, csv.as_bytes(), false);
        let report = iss
            .issue(&template, &id, &rows, &out, false, &Quiet)
            .await
            .unwrap();
        assert_eq!(report.issued, 3);
        // The second holder's credential is revoked.
        let second = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with("000002-")
            })
            .unwrap();
        let (uri, idx) =
            issuer::status_of_credential(&std::fs::read_to_string(second).unwrap(), iss.did())
                .unwrap();
        iss.set_status(&uri, idx, 1).await.unwrap();
        (uri, idx)
    };

    // The verifier's replica of the (now served) registry.
    let node = Arc::new(Node::open(&dir.join("registry")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = vouch_registry::api::app(node.clone()).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let trust = Trust {
        node_vkey: node.vkey(),
        witnesses: vec![],
        need: 0,
    };
    let mut replica =
        Replica::open(&root.join("verifier-replica"), trust.policy().unwrap()).unwrap();
    replica.sync(&NodeClient::new(&url).unwrap()).await.unwrap();

    let request = PresentationRequest {
        aud: "https://hr.example.com".into(),
        nonce: "n-7Hq2".into(),
        max_age: 300,
    };
    let disclose: Vec<ClaimPath> = ["/courses/0", "/courses/4", "/courses/7"]
        .iter()
        .map(|p| ClaimPath::parse(p).unwrap())
        .collect();
    let mut files: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sd-jwt"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3);
    for (i, file) in files.iter().enumerate() {
        let credential = SdJwt::parse(&std::fs::read_to_string(file).unwrap()).unwrap();
        let presentation = credential
            .present(&disclose)
            .unwrap()
            .bind(&holders[i], &request.aud, &request.nonce, now())
            .serialize();
        // Through the QR envelope and back, byte for byte.
        let qr = envelope::encode(&presentation).unwrap();
        assert!(envelope::qr_code(&qr, qrcode::EcLevel::M).is_ok());
        let received = envelope::decode(&qr).unwrap();
        assert_eq!(received, presentation);

        let verdict = vc::verify_presentation(&received, &request, now()).unwrap();
        assert!(verdict.is_valid(), "holder {i}: {verdict:?}");
        let courses = verdict.claims["courses"].as_array().unwrap();
        assert_eq!(courses.len(), 3, "only the three chosen courses");
        assert!(!verdict.claims.contains_key("student_name"), "withheld");

        // Accreditation and revocation, offline, from the replica.
        let issuer_did = verdict.issuer.clone().unwrap();
        let iat = credential.payload()["iat"].as_i64().unwrap();
        assert!(
            replica
                .accredited(&issuer_did, "transcript", iat)
                .unwrap()
                .value
        );
        let status = verdict.status.clone().unwrap();
        assert_eq!(status.uri, uri);
        let state = replica
            .status(&issuer_did, &status.uri, status.idx, now())
            .unwrap();
        let expect = if status.idx == revoked_idx { 1 } else { 0 };
        assert_eq!(state.value, Some(expect), "holder {i}");
        assert_eq!(i == 1, expect == 1);

        // Another holder's key cannot present this credential.
        let stolen = credential
            .present(&disclose)
            .unwrap()
            .bind(&holders[(i + 1) % 3], &request.aud, &request.nonce, now())
            .serialize();
        assert!(!vc::verify_presentation(&stolen, &request, now())
            .unwrap()
            .is_valid());
    }
    drop(replica);
    let _ = std::fs::remove_dir_all(&root);
}

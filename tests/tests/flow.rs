//! The whole path across crates: an issuer batch-issues transcripts on its
//! embedded registry and revokes one; holders present three courses bound to
//! a verifier's nonce, through the QR envelope; the verifier checks each
//! presentation offline with `verify::verify` against a view of its own
//! replica of the chain (accreditation, key, status, freshness included),
//! with the anchor proof from the issuer's manifest proving when each
//! credential was issued.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use rand::SeedableRng as _;
use vouch_core::template::Templates;
use vouch_core::verify::{verify, Policy, Presentation, Request};
use vouch_core::view::Status;
use vouch_core::{envelope, AnchorProof, CheckName, ClaimPath, DidKey, Outcome, SdJwt};
use vouch_issuer::issuer::{self, Issuer, Quiet};
use vouch_issuer::keystore::Cost;
use vouch_issuer::template;
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, Trust};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_present_verify_with_revocation_from_a_replica() {
    let tmp = tempfile::Builder::new()
        .prefix("vouch-e2e-")
        .tempdir()
        .unwrap();
    let root = tmp.path();
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
    let (uri, revoked_idx, anchored) = {
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
        (uri, idx, (report.anchor_index, report.block_height))
    };
    // Each credential's anchor proof, by file name, from the manifest.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let proofs: std::collections::HashMap<String, AnchorProof> = manifest["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["file"].as_str().unwrap().to_owned(),
                serde_json::from_value(c["anchor_proof"].clone()).unwrap(),
            )
        })
        .collect();

    // The verifier's replica of the (now served) registry.
    let node = Arc::new(Node::open(&dir.join("registry")).unwrap());
    let server = vouch_registry::testkit::serve_node(node.clone())
        .await
        .unwrap();
    let trust = Trust {
        node_vkey: node.vkey(),
        witnesses: vec![],
        need: 0,
    };
    let mut replica =
        Replica::open(&root.join("verifier-replica"), trust.policy().unwrap()).unwrap();
    replica.sync(&server.client()).await.unwrap();

    let disclose: Vec<ClaimPath> = ["/courses/0", "/courses/4", "/courses/7"]
        .iter()
        .map(|p| ClaimPath::parse(p).unwrap())
        .collect();
    let request = Request {
        aud: "https://hr.example.com".into(),
        nonce: Some("n-7Hq2".into()),
        claims: disclose.clone(),
    };
    let nonce = request.nonce.clone().unwrap();
    let view = replica.view().unwrap();
    let record = view.anchor(anchored.0).unwrap().clone();
    assert_eq!(
        record.sealed_height, anchored.1,
        "the block the issuer saw seal it"
    );
    let policy = Policy::new(trust.policy().unwrap(), Templates::builtin().unwrap());
    let mut anchors_required = policy.clone();
    anchors_required.require_anchor = true;
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
            .bind(&holders[i], &request.aud, &nonce, now())
            .serialize();
        // Through the QR envelope and back, byte for byte.
        let qr = envelope::encode(&presentation).unwrap();
        assert!(vouch_core::qr::qr_code(&qr, qrcode::EcLevel::M).is_ok());
        let received = envelope::decode(&qr).unwrap();
        assert_eq!(received, presentation);

        // Everything, offline, against the replica's view: the QR text as
        // scanned.
        let v = verify(&qr, &request, &view, &policy, now()).unwrap();
        let courses = v.claim("courses").unwrap();
        assert_eq!(courses.items.len(), 3, "only the three chosen courses");
        assert!(v.claim("student_name").is_none(), "withheld");
        assert_eq!(
            v.issuer.as_ref().unwrap().name.as_deref(),
            Some("University of Example")
        );
        let status = v.verdict.status.clone().unwrap();
        assert_eq!(status.uri, uri);
        let revoked = status.idx == revoked_idx;
        assert_eq!(i == 1, revoked);
        for name in [
            CheckName::IssuerSignature,
            CheckName::HolderBinding,
            CheckName::Kind,
            CheckName::Accreditation,
            CheckName::IssuerKey,
            CheckName::Freshness,
        ] {
            assert_eq!(v.check(name), Some(&Outcome::Pass), "holder {i}: {name:?}");
        }
        if revoked {
            assert_eq!(v.status, Some(Status::Revoked));
            assert!(!v.is_valid());
        } else {
            assert_eq!(v.status, Some(Status::Valid));
            assert!(v.is_valid(), "holder {i}: {:#?}", v.verdict.checks);
        }

        // With the anchor proof from the manifest: the issuance time is the
        // time of the block that sealed the batch.
        let name = file.file_name().unwrap().to_str().unwrap();
        let proof = &proofs[name];
        let v = verify(
            Presentation::with_anchor(&qr, proof),
            &request,
            &view,
            &anchors_required,
            now(),
        )
        .unwrap();
        assert_eq!(
            v.check(CheckName::Anchor),
            Some(&Outcome::Pass),
            "holder {i}"
        );
        assert_eq!(v.issued_at, Some(record.sealed_time));
        assert_eq!(v.is_valid(), !revoked);
        // Without it, that policy refuses the presentation.
        let v = verify(&qr, &request, &view, &anchors_required, now()).unwrap();
        assert!(matches!(v.check(CheckName::Anchor), Some(Outcome::Fail(_))));

        // Another holder's key cannot present this credential.
        let stolen = credential
            .present(&disclose)
            .unwrap()
            .bind(&holders[(i + 1) % 3], &request.aud, &nonce, now())
            .serialize();
        let v = verify(&stolen, &request, &view, &policy, now()).unwrap();
        assert!(matches!(
            v.check(CheckName::HolderBinding),
            Some(Outcome::Fail(_))
        ));
    }
    drop(replica);
}

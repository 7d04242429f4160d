//! The wallet against a real issuer and chain: transcripts issued to DIDs
//! the wallet handed out, imported with the issuer's manifest (anchor
//! proofs checked), the wallet's replica synced from the registry, each
//! credential's standing read as of a block (one revoked), and a
//! presentation from the wallet that `verify` accepts with anchor proofs
//! required.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;

use rand::SeedableRng as _;
use vouch_core::manifest::Manifest;
use vouch_core::seal::Cost as SealCost;
use vouch_core::template::Templates;
use vouch_core::verify::{verify, Policy, Request};
use vouch_core::ClaimPath;
use vouch_issuer::issuer::{self, Issuer, Quiet};
use vouch_issuer::keystore::Cost;
use vouch_issuer::template;
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::trust::{sync_dir, FirstSync, NodePin};
use vouch_wallet::wallet::Standing;
use vouch_wallet::{Binding, Wallet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_imports_with_anchor_proofs_and_reads_standing_from_its_replica() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let (mut wallet, _) =
        Wallet::create(&root.join("wallet"), "pw", SealCost::TEST, &mut rng).unwrap();
    let dids: Vec<_> = (0..2)
        .map(|_| wallet.receive(now(), &mut rng).unwrap())
        .collect();

    let dir = root.join("university");
    issuer::init(&dir, "State University", None, "pw", Cost::TEST).unwrap();
    let mut csv = String::from(
        "holder,institution,student_name,student_id,programme,degree,award_date,gpa,courses\n",
    );
    for (i, did) in dids.iter().enumerate() {
        let courses: Vec<String> = (0..12)
            .map(|c| format!("CS{c:03}|Course {c}|6|A|2025-S1"))
            .collect();
        csv.push_str(&format!(
            "{},State University,Student {i},S{i:05},Computer Science,BSc,2025-07-15,3.40,\"{}\"\n",
            did.as_str(),
            courses.join("; ")
        ));
    }
    let template = template::find("transcript").unwrap();
    let (rows, errors) = vouch_issuer::input::parse(csv.as_bytes(), &template).unwrap();
    assert!(errors.is_empty());
    let out = root.join("out");
    {
        let iss = Issuer::open(&dir, "pw").unwrap();
        let id = issuer::batch_id(&template, csv.as_bytes(), false);
        iss.issue(&template, &id, &rows, &out, false, &Quiet)
            .await
            .unwrap();
    }
    let manifest =
        Manifest::from_json(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    // A credential the manifest does not list is refused with it, as
    // SD-JWT text and as the `VCH1:` text of a QR code.
    let stranger = wallet_test_transcript(&dids[0]);
    for text in [
        stranger.clone(),
        vouch_core::envelope::encode(&stranger).unwrap(),
    ] {
        assert!(matches!(
            wallet.import_with_manifest(&text, &manifest, now(), &mut rng),
            Err(vouch_wallet::WalletError::NotInManifest)
        ));
    }
    assert!(wallet.list(now()).unwrap().is_empty());
    // The first as its QR code's `VCH1:` text, the second as the file.
    let mut ids = Vec::new();
    for (i, entry) in manifest.entries().iter().enumerate() {
        let mut text = std::fs::read_to_string(out.join(&entry.file)).unwrap();
        if i == 0 {
            text = vouch_core::envelope::encode(&text).unwrap();
        }
        ids.push(
            wallet
                .import_with_manifest(&text, &manifest, now(), &mut rng)
                .unwrap(),
        );
    }
    assert!(wallet.list(now()).unwrap().iter().all(|s| s.anchored));

    // The second is revoked.
    {
        let iss = Issuer::open(&dir, "pw").unwrap();
        let text = std::fs::read_to_string(out.join(&manifest.entries()[1].file)).unwrap();
        let (uri, idx) = issuer::status_of_credential(&text, iss.did()).unwrap();
        iss.set_status(&uri, idx, 1).await.unwrap();
    }

    // Before any sync: unknown, and said so.
    let before = wallet.list(now()).unwrap();
    assert!(before
        .iter()
        .all(|s| s.standing == Standing::Unknown && s.as_of.is_none()));

    let node = Arc::new(Node::open(&dir.join("registry")).unwrap());
    let server = vouch_registry::testkit::serve_node(node.clone())
        .await
        .unwrap();
    let replica_dir = root.join("wallet").join("replica");
    let first = FirstSync {
        pin: NodePin::Key(node.vkey()),
        witnesses: vec![],
        need: 0,
        force_weak_quorum: false,
    };
    sync_dir(&replica_dir, &server.client(), first)
        .await
        .unwrap();
    let p = vouch_registry::trust::policy_of(&replica_dir)
        .unwrap()
        .unwrap();
    let mut replica = vouch_registry::replica::Replica::open(&p.db, p.policy.clone()).unwrap();
    let view = replica.view().unwrap();

    let list = wallet.list_as_of(Some(&view), now()).unwrap();
    let standing = |id: &str| list.iter().find(|s| s.id == id).unwrap().clone();
    assert_eq!(standing(&ids[0]).standing, Standing::Valid);
    assert_eq!(standing(&ids[1]).standing, Standing::Revoked);
    assert_eq!(
        standing(&ids[0]).issuer_name.as_deref(),
        Some("State University")
    );
    assert_eq!(standing(&ids[0]).as_of.unwrap().height, view.height());

    // Three of twelve courses as the wallet's QR code. A transcript from
    // this issuer (its course objects carry their own digests and random
    // decoys) needs about 1,500 envelope characters, around QR version
    // 25's limit at level M: when it is over, the wallet sends it through
    // the registry's relay and the code holds the link. Either way the PNG
    // decodes (rxing, through the verifier's image reader) to what the
    // wallet put in it, which leads back to the same presentation.
    let qr_binding = Binding {
        aud: "https://hr.example".into(),
        nonce: "n-wallet-qr-0001".into(),
        channel: "qr".into(),
    };
    let three: Vec<String> = ["courses[CS001]", "courses[CS004]", "courses[CS007]"]
        .map(String::from)
        .to_vec();
    let shown = wallet.prepare(&ids[0], &three, &qr_binding, now()).unwrap();
    let share = match vouch_wallet::share::QrShare::new(&shown.text) {
        Ok(share) => share,
        Err(vouch_wallet::share::ShareError::TooDense { .. }) => {
            let file = vouch_core::presentation::Presentation {
                sd_jwt: shown.text.clone(),
                anchor_proof: shown.anchor.clone(),
            };
            vouch_wallet::share::relay(&server.client(), &file, &mut rng)
                .await
                .unwrap()
        }
        Err(e) => panic!("{e}"),
    };
    let scanned = vouch_verifier::qr::decode(&share.png().unwrap()).unwrap();
    assert_eq!(scanned, share.text);
    let received = if scanned.starts_with(vouch_core::envelope::PREFIX) {
        vouch_core::envelope::decode(&scanned).unwrap()
    } else {
        let link = vouch_registry::relay_link::RelayLink::parse(&scanned).unwrap();
        let plain = link.fetch().await.unwrap();
        vouch_core::presentation::Presentation::from_file_json(&plain)
            .unwrap()
            .sd_jwt
    };
    assert_eq!(received, shown.text);
    let qr_request = Request {
        aud: qr_binding.aud.clone(),
        nonce: Some(qr_binding.nonce.clone()),
        claims: vec![ClaimPath::parse("/courses").unwrap()],
    };
    let qr_policy = Policy::new(p.policy.clone(), Templates::builtin().unwrap());
    let v = verify(received.as_str(), &qr_request, &view, &qr_policy, now()).unwrap();
    assert!(v.is_valid(), "{:?}", v.verdict.first_failure());
    assert_eq!(v.claim("courses").unwrap().items.len(), 3);
    for hidden in ["Course 0", "Course 2", "Course 11"] {
        assert!(
            !format!("{:?}", v.claim("courses")).contains(hidden),
            "{hidden}"
        );
    }

    // The wallet's presentation carries its anchor proof; verify requires
    // and checks it.
    let binding = Binding {
        aud: "https://hr.example".into(),
        nonce: "n-wallet-status".into(),
        channel: "file".into(),
    };
    let names = vec!["degree".to_owned(), "courses[CS003]".to_owned()];
    let presented = wallet
        .present(&ids[0], &names, &binding, now(), &mut rng)
        .unwrap();
    let file = vouch_core::presentation::Presentation {
        sd_jwt: presented.text.clone(),
        anchor_proof: presented.anchor.clone(),
    };
    assert!(file.anchor_proof.is_some());
    let request = Request {
        aud: binding.aud.clone(),
        nonce: Some(binding.nonce.clone()),
        claims: vec![ClaimPath::parse("/degree").unwrap()],
    };
    let mut policy = Policy::new(p.policy, Templates::builtin().unwrap());
    policy.require_anchor = true;
    let v = verify(&file, &request, &view, &policy, now()).unwrap();
    assert!(v.is_valid(), "{:?}", v.verdict.first_failure());

    // Accredited and not rotated: a QR code need not carry the proof. Once
    // the authority withdraws the issuer, it must (the wallet then puts it
    // in the envelope, or sends the presentation through the relay).
    let issuer = standing(&ids[0]).issuer;
    assert!(!vouch_wallet::share::needs_anchor(&view, &issuer));
    let authority =
        vouch_registry::keys::read(&dir.join("registry").join("authority.key")).unwrap();
    let client = server.client();
    client
        .sign_and_submit(
            &authority,
            vouch_core::chain::Action::Withdraw {
                issuer: issuer.clone(),
                reason: "closed (test)".into(),
            },
        )
        .await
        .unwrap();
    client.seal().await.unwrap();
    replica.sync(&client).await.unwrap();
    let after = replica.view().unwrap();
    assert!(vouch_wallet::share::needs_anchor(&after, &issuer));
    drop(server);
}

/// A transcript for `holder` that no batch of this test issued.
fn wallet_test_transcript(holder: &vouch_core::DidKey) -> String {
    let templates = vouch_core::template::Templates::builtin().unwrap();
    let claims =
        vouch_core::sample::template_transcript_claims("Eve", "S99999", |i| format!("Course {i}"));
    vouch_core::sample::issue_as(
        templates.by_name("transcript").unwrap(),
        claims,
        holder,
        now(),
        &mut rand::rngs::StdRng::seed_from_u64(5),
    )
    .unwrap()
}

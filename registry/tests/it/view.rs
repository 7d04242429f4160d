//! `Replica::view()` feeds `vouch_core::verify::verify`: a credential
//! checked against a replica synced from a node on loopback.

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::jws::PublicKey;
use vouch_core::path::ClaimPath;
use vouch_core::sample;
use vouch_core::status_list::StatusRef;
use vouch_core::template::Templates;
use vouch_core::vc::{self, CredentialRequest, IssuerKey};
use vouch_core::verify::{verify, Policy, Request};
use vouch_core::view::Status;
use vouch_core::{CheckName, Outcome};
use vouch_registry::client::NodeClient;
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, ReplicaError, Trust};

use crate::common::{accredit, did, init_node, key, serve, status, uni_list, TempDir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_view_verifies_credentials_and_their_status() {
    let root = TempDir::new("view");
    let node_dir = root.path().join("node");
    let authority = init_node(&node_dir, vec![], 0);
    let node = Arc::new(Node::open(&node_dir).unwrap());
    let uni = key(2);
    let clock = now();
    node.submit(
        accredit(&authority, 1, &uni, &["transcript"]).as_bytes(),
        clock,
    )
    .unwrap();
    node.submit(status(&uni, 0, 1, &uni_list(), &[5]).as_bytes(), clock)
        .unwrap();
    node.seal(clock).unwrap().unwrap();

    let trust = Trust {
        node_vkey: node.vkey(),
        witnesses: vec![],
        need: 0,
    };
    let mut replica = Replica::open(&root.path().join("replica"), trust.policy().unwrap()).unwrap();
    assert!(matches!(replica.view(), Err(ReplicaError::NotSynced)));
    let client = NodeClient::new(&serve(node.clone()).await).unwrap();
    replica.sync_at(&client, clock).await.unwrap();
    let view = replica.view().unwrap();
    assert_eq!(view.block(), &replica.head().unwrap().block);

    let holder = key(9);
    let request = Request {
        aud: "https://hr.example".into(),
        nonce: Some("n-1".into()),
        claims: vec![ClaimPath::parse("/student_name").unwrap()],
    };
    let policy = Policy::new(trust.policy().unwrap(), Templates::builtin().unwrap());
    let present = |idx: u64| {
        let req = CredentialRequest {
            vct: sample::TRANSCRIPT_VCT.into(),
            iat: clock,
            exp: None,
            holder: PublicKey::Ed25519(holder.verifying_key()),
            status: Some(StatusRef {
                idx,
                uri: uni_list(),
            }),
            claims: sample::transcript_claims(1),
            concealment: sample::transcript_concealment(),
        };
        vc::issue(
            req,
            &IssuerKey::new(uni.clone()),
            &mut StdRng::seed_from_u64(idx),
        )
        .unwrap()
        .present(&[ClaimPath::parse("/student_name").unwrap()])
        .unwrap()
        .bind(&holder, &request.aud, "n-1", clock)
        .serialize()
    };

    let good = verify(&present(6), &request, &view, &policy, clock).unwrap();
    assert!(good.is_valid(), "{:#?}", good.verdict.checks);
    assert_eq!(
        good.issuer.as_ref().unwrap().name.as_deref(),
        Some("Test University")
    );
    assert_eq!(good.claim("student_name").unwrap().label, "Student name");
    assert_eq!(good.as_of.height, replica.head().unwrap().block.height);

    let revoked = verify(&present(5), &request, &view, &policy, clock).unwrap();
    assert_eq!(revoked.status, Some(Status::Revoked));
    assert!(matches!(
        revoked.check(CheckName::Status),
        Some(Outcome::Fail(why)) if why.starts_with("revoked")
    ));
    assert_eq!(did(&uni), revoked.issuer.unwrap().did);
}

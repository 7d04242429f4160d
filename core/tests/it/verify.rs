//! `verify::verify` end to end: real chain entries applied to a
//! `ChainState`, a real signed and cosigned block, real credentials from
//! `vc::issue`; one test per check that must fail, and one valid case.

use ed25519_dalek::SigningKey;
use vouch_core::anchor::{self, AnchorProof};
use vouch_core::chain::{Action, ChainState, Entry, ListUri};
use vouch_core::did::DidKey;
use vouch_core::jws::PublicKey;
use vouch_core::log::{
    cosign, prove_record, record_hash, sign_block, Block, Hash, MemoryHashes, TrustPolicy,
};
use vouch_core::sample;
use vouch_core::status_list::{StatusList, StatusListClaims, StatusRef};
use vouch_core::template::Templates;
use vouch_core::vc::{self, CredentialRequest, IssuerKey};
use vouch_core::verify::{
    check_batch, prepare, prepare_sd_jwt, verify, verify_sd_jwt, Policy, Prepared, Presentation,
    Request, Signatures, Verification,
};
use vouch_core::view::{ChainView, Status, StatusError};
use vouch_core::{envelope, CheckName, ClaimPath, Outcome};

use crate::common::{holder, issuer, paths, rng, AUD, NONCE, NOW};

const ORIGIN: &str = "registry.example/vouch";
const BASE: &str = "https://registry.example";
const DAY: i64 = 86_400;
const IDX: u64 = 5;

fn key(b: u8) -> SigningKey {
    SigningKey::from_bytes(&[b; 32])
}

fn id(k: &SigningKey) -> String {
    DidKey::from_public_key(&k.verifying_key())
        .as_str()
        .to_owned()
}

fn authority() -> SigningKey {
    key(0x01)
}

fn node() -> SigningKey {
    key(0x02)
}

fn witnesses() -> Vec<(String, SigningKey)> {
    (0..3)
        .map(|i| (format!("w{i}.example"), key(0x30 + i)))
        .collect()
}

fn list_uri(k: &SigningKey) -> String {
    ListUri::format(BASE, &id(k), "l1")
}

/// A chain being written: the state, the Merkle tree of its entries, and
/// the blocks sealed so far (below the view's block, height 7).
struct World {
    state: ChainState,
    hashes: MemoryHashes,
    entries: Vec<Entry>,
    blocks: Vec<Block>,
}

impl World {
    /// Genesis and the accreditation of `issuer()` for `kinds`, at NOW - 30 days.
    fn new(kinds: &[&str]) -> Self {
        let mut w = Self {
            state: ChainState::new(),
            hashes: MemoryHashes::new(),
            entries: Vec::new(),
            blocks: Vec::new(),
        };
        let t0 = NOW - 30 * DAY;
        w.write(
            &authority(),
            t0,
            Action::Genesis {
                origin: ORIGIN.into(),
                authorities: vec![id(&authority())],
            },
        );
        w.write(
            &authority(),
            t0,
            Action::Accredit {
                issuer: issuer().did().as_str().to_owned(),
                name: "University of Example".into(),
                kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            },
        );
        w
    }

    fn write(&mut self, k: &SigningKey, time: i64, action: Action) {
        let seq = self.state.authors.get(&id(k)).map_or(0, |(s, _)| s + 1);
        let what = format!("{action:?}");
        let e = Entry::sign(k, seq, time, action);
        self.state
            .apply(&e)
            .unwrap_or_else(|err| panic!("{what}: {err}"));
        self.hashes.append(e.leaf_hash()).unwrap();
        self.entries.push(e);
    }

    /// A block sealing every entry so far, at `time`.
    fn seal(&mut self, time: i64) {
        let height = self.blocks.len() as u64 + 1;
        assert!(height < 7, "the view's block is at height 7");
        self.blocks.push(Block {
            origin: ORIGIN.into(),
            height,
            time,
            prev: Hash([0; 32]),
            size: self.hashes.size(),
            root: self.hashes.root().unwrap(),
        });
    }

    /// `k` anchors `presentations` as one batch on its list at `time`, and
    /// a block seals it at `time + 10`. Returns each one's anchor proof.
    fn anchor(&mut self, k: &SigningKey, time: i64, presentations: &[&str]) -> Vec<AnchorProof> {
        let mut tree = MemoryHashes::new();
        for p in presentations {
            tree.append(record_hash(anchor::leaf(p).as_bytes()))
                .unwrap();
        }
        let n = tree.size();
        let entry = self.hashes.size();
        self.write(
            k,
            time,
            Action::Anchor {
                list: list_uri(k),
                root: hex::encode(tree.root().unwrap().0),
                count: n,
                first: IDX,
                last: IDX + n - 1,
            },
        );
        self.seal(time + 10);
        (0..n)
            .map(|i| AnchorProof::new(entry, i, n, prove_record(n, i, &tree).unwrap()).unwrap())
            .collect()
    }

    /// `k` anchors a batch on its list and publishes the list with `statuses`.
    fn publish(&mut self, k: &SigningKey, time: i64, sequence: u64, statuses: &[(u64, u8)]) {
        let uri = list_uri(k);
        if sequence == 1 {
            self.write(
                k,
                time,
                Action::Anchor {
                    list: uri.clone(),
                    root: "ab".repeat(32),
                    count: 1,
                    first: IDX,
                    last: IDX,
                },
            );
        }
        let mut list = StatusList::new(2, 64).unwrap();
        for &(i, v) in statuses {
            list.set(i, v).unwrap();
        }
        let token = StatusListClaims {
            sub: uri.clone(),
            iss: Some(id(k)),
            iat: time,
            exp: None,
            ttl: None,
            list,
        }
        .sign(&id(k), k)
        .as_str()
        .to_owned();
        self.write(
            k,
            time,
            Action::Status {
                list: uri,
                sequence,
                token,
            },
        );
    }

    /// The view at a block sealed at `time`, cosigned by the first
    /// `cosigners` witnesses.
    fn view(&self, time: i64, cosigners: usize) -> ChainView {
        let mut view = self.view_without_anchors(time, cosigners);
        view.add_anchors(
            self.entries.iter().enumerate().map(|(i, e)| (i as u64, e)),
            &self.blocks,
        );
        view
    }

    /// As [`World::view`], but the replica recorded no anchors.
    fn view_without_anchors(&self, time: i64, cosigners: usize) -> ChainView {
        let block = Block {
            origin: ORIGIN.into(),
            height: 7,
            time,
            prev: Hash([0; 32]),
            size: self.hashes.size(),
            root: self.hashes.root().unwrap(),
        };
        let mut note = sign_block(&block, &node()).unwrap();
        for (name, k) in witnesses().iter().take(cosigners) {
            note = cosign(&note, name, k, time as u64).unwrap();
        }
        // What a replica does with a block it fetched.
        let signed = trust(0).verify(note.as_bytes()).unwrap();
        ChainView::new(&self.state, signed).unwrap()
    }
}

fn trust(need: usize) -> TrustPolicy {
    TrustPolicy::new(
        (ORIGIN.into(), node().verifying_key()),
        witnesses()
            .iter()
            .map(|(n, k)| (n.clone(), k.verifying_key()))
            .collect(),
        need,
        true,
    )
    .unwrap()
}

fn policy(need: usize) -> Policy {
    Policy::new(trust(need), Templates::builtin().unwrap())
}

fn request() -> Request {
    Request {
        aud: AUD.into(),
        nonce: Some(NONCE.into()),
        claims: paths(&["/student_name"]),
    }
}

/// The sample transcript from `signer`, issued at `iat`, on `signer`'s list.
fn presentation_from(signer: &SigningKey, iat: i64) -> String {
    presentation_with(signer, iat, |_| {}, AUD, NONCE)
}

/// The sample transcript from `signer`, issued at `iat`, on `signer`'s
/// list, changed by `edit`, bound to `aud` and `nonce`.
fn presentation_with(
    signer: &SigningKey,
    iat: i64,
    edit: impl FnOnce(&mut CredentialRequest),
    aud: &str,
    nonce: &str,
) -> String {
    let mut req = CredentialRequest {
        vct: sample::TRANSCRIPT_VCT.into(),
        iat,
        exp: Some(NOW + 365 * DAY),
        holder: PublicKey::Ed25519(holder().verifying_key()),
        status: Some(StatusRef {
            idx: IDX,
            uri: list_uri(signer),
        }),
        claims: sample::transcript_claims(7),
        concealment: sample::transcript_concealment(),
    };
    edit(&mut req);
    vc::issue(req, &IssuerKey::new(signer.clone()), &mut rng(9))
        .unwrap()
        .present(&paths(&["/student_name", "/courses/0", "/courses/4"]))
        .unwrap()
        .bind(&holder(), aud, nonce, NOW)
        .serialize()
}

fn presentation(iat: i64) -> String {
    presentation_from(issuer().signing_key(), iat)
}

/// A chain where `issuer()` is accredited for transcripts and published its
/// list (index IDX at `status`) a week ago.
fn world_with_status(status: u8) -> World {
    let mut w = World::new(&["transcript"]);
    w.publish(issuer().signing_key(), NOW - 7 * DAY, 1, &[(IDX, status)]);
    w
}

fn failure(v: &Verification, name: CheckName) -> String {
    match v.check(name) {
        Some(Outcome::Fail(why)) => why.clone(),
        other => panic!(
            "{name:?} should fail, is {other:?}; {:#?}",
            v.verdict.checks
        ),
    }
}

fn only_failure(v: &Verification, name: CheckName) -> String {
    let failed: Vec<CheckName> = v
        .verdict
        .checks
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Fail(_)))
        .map(|c| c.name)
        .collect();
    assert_eq!(failed, [name], "{:#?}", v.verdict.checks);
    failure(v, name)
}

#[test]
fn a_valid_presentation_passes_every_check_and_is_labelled() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let text = presentation(NOW - DAY);
    assert_eq!(
        view.decoded_lists(),
        0,
        "lists inflate at their first lookup"
    );
    let v = verify(&text, &request(), &view, &policy(2), NOW).unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);
    for name in [
        CheckName::IssuerSignature,
        CheckName::Format,
        CheckName::Disclosures,
        CheckName::Validity,
        CheckName::HolderBinding,
        CheckName::Audience,
        CheckName::Nonce,
        CheckName::RequestedClaims,
        CheckName::Kind,
        CheckName::Accreditation,
        CheckName::IssuerKey,
        CheckName::Status,
        CheckName::Freshness,
        CheckName::Cosignatures,
    ] {
        assert_eq!(v.check(name), Some(&Outcome::Pass), "{name:?}");
    }
    match v.check(CheckName::Anchor) {
        Some(Outcome::NotChecked(why)) => assert!(why.contains("no anchor proof"), "{why}"),
        other => panic!("anchor: {other:?}"),
    }

    // What a page shows: the issuer's accredited name, the template, the
    // disclosed claims with their labels, the holder apart.
    let issuer_info = v.issuer.clone().unwrap();
    assert_eq!(issuer_info.name.as_deref(), Some("University of Example"));
    assert_eq!(issuer_info.did, issuer().did().as_str());
    let template = v.template.clone().unwrap();
    assert_eq!(
        (template.kind.as_str(), template.title.as_str()),
        ("transcript", "Academic transcript")
    );
    assert_eq!(v.claim("student_name").unwrap().label, "Student name");
    assert_eq!(v.claim("institution").unwrap().label, "Institution");
    assert!(v.claim("gpa").is_none(), "withheld");
    let courses = v.claim("courses").unwrap();
    assert_eq!(courses.label, "Courses");
    assert_eq!(courses.items.len(), 2, "only the two chosen courses");
    let grade = courses.items[0].iter().find(|c| c.name == "grade").unwrap();
    assert_eq!(grade.label, "Grade");
    assert_eq!(v.claims[0].name, "institution", "template order");
    for internal in [
        "iss", "vct", "cnf", "status", "iat", "exp", "_sd", "_sd_alg",
    ] {
        assert!(
            v.claim(internal).is_none(),
            "{internal} is not a disclosed claim"
        );
    }
    for internal in ["iss", "vct", "cnf", "status", "iat"] {
        assert!(v.internal.contains_key(internal), "{internal} shown apart");
    }
    assert_eq!(
        v.holder.as_deref(),
        Some(DidKey::from_public_key(&holder().verifying_key()).as_str())
    );
    assert_eq!(v.status, Some(Status::Valid));
    assert_eq!(v.issued_at, Some(NOW - DAY));
    assert_eq!((v.as_of.height, v.as_of.age), (7, 60));
    assert_eq!(v.as_of.cosigned_by, ["w0.example", "w1.example"]);
    assert_eq!(view.anchors().len(), 1);

    // The same through the QR envelope.
    let qr = envelope::encode(&text).unwrap();
    let again = verify(&qr, &request(), &view, &policy(2), NOW).unwrap();
    assert_eq!(again, v);
    assert_eq!(view.decoded_lists(), 1, "and only once");

    // What a web page receives.
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["issuer"]["name"], "University of Example");
    assert_eq!(json["claims"][0]["label"], "Institution");
    assert_eq!(json["status"]["status"], "valid");
    assert!(json["verdict"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "freshness" && c["outcome"] == "pass"));

    // A broken envelope cannot be checked at all.
    let mut bad = qr.clone();
    bad.truncate(qr.len() / 2);
    assert!(matches!(
        verify(&bad, &request(), &view, &policy(2), NOW),
        Err(vouch_core::VerifyError::Envelope(_))
    ));
}

#[test]
fn an_issuer_not_accredited_for_the_kind_fails_accreditation() {
    let mut w = World::new(&["employment"]);
    w.publish(issuer().signing_key(), NOW - 7 * DAY, 1, &[]);
    let v = verify(
        &presentation(NOW - DAY),
        &request(),
        &w.view(NOW - 60, 2),
        &policy(2),
        NOW,
    )
    .unwrap();
    let why = only_failure(&v, CheckName::Accreditation);
    assert!(
        why.contains("not accredited for \"transcript\"") && why.contains("employment"),
        "{why}"
    );
    // The chain knows the issuer's name, but a page must not show it
    // beside a failed accreditation.
    let issuer_info = v.issuer.clone().unwrap();
    assert_eq!(issuer_info.did, issuer().did().as_str());
    assert_eq!(issuer_info.name, None);
}

#[test]
fn a_kind_the_verifier_does_not_accept_or_know_fails_the_kind_check() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let mut p = policy(2);
    p.accepted_kinds = vec!["employment".into()];
    let v = verify(&presentation(NOW - DAY), &request(), &view, &p, NOW).unwrap();
    assert!(only_failure(&v, CheckName::Kind).contains("not accepted"));
    assert!(matches!(
        v.check(CheckName::Accreditation),
        Some(Outcome::NotChecked(_))
    ));

    let mut p = policy(2);
    p.templates = Templates::new(Vec::new()).unwrap();
    let v = verify(&presentation(NOW - DAY), &request(), &view, &p, NOW).unwrap();
    assert!(only_failure(&v, CheckName::Kind).contains("not a kind this verifier knows"));
    assert_eq!(v.claim("student_name").unwrap().label, "student_name");
}

#[test]
fn an_untrusted_accreditation_authority_fails_accreditation() {
    let w = world_with_status(0);
    let mut p = policy(2);
    p.trusted_authorities = vec![id(&key(0x77))];
    let v = verify(
        &presentation(NOW - DAY),
        &request(),
        &w.view(NOW - 60, 2),
        &p,
        NOW,
    )
    .unwrap();
    assert!(only_failure(&v, CheckName::Accreditation).contains("not one this verifier trusts"));
    p.trusted_authorities = vec![id(&authority())];
    let v = verify(
        &presentation(NOW - DAY),
        &request(),
        &w.view(NOW - 60, 2),
        &p,
        NOW,
    )
    .unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);
}

#[test]
fn a_credential_issued_after_withdrawal_fails_accreditation() {
    let mut w = world_with_status(0);
    w.write(
        &authority(),
        NOW - 2 * DAY,
        Action::Withdraw {
            issuer: issuer().did().as_str().to_owned(),
            reason: "closed".into(),
        },
    );
    let view = w.view(NOW - 60, 2);
    let v = verify(&presentation(NOW - DAY), &request(), &view, &policy(2), NOW).unwrap();
    let why = only_failure(&v, CheckName::Accreditation);
    assert!(why.contains(&format!("until {}", NOW - 2 * DAY)), "{why}");
    // Dated while accredited, with no anchor proof: the date is only the
    // withdrawn issuer's word.
    let v = verify(
        &presentation(NOW - 3 * DAY),
        &request(),
        &view,
        &policy(2),
        NOW,
    )
    .unwrap();
    let why = only_failure(&v, CheckName::Accreditation);
    assert!(
        why.contains("only an anchor proof sealed before")
            && why.contains(&(NOW - 2 * DAY).to_string()),
        "{why}"
    );
}

#[test]
fn a_withdrawn_issuer_passes_only_with_an_anchor_sealed_before_the_withdrawal() {
    let mut w = world_with_status(0);
    let issued = NOW - 3 * DAY;
    let text = presentation(issued);
    let other = presentation_from(issuer().signing_key(), issued - 1);
    let proofs = w.anchor(issuer().signing_key(), issued, &[&other, &text]);
    let withdrawn = NOW - 2 * DAY;
    w.write(
        &authority(),
        withdrawn,
        Action::Withdraw {
            issuer: issuer().did().as_str().to_owned(),
            reason: "closed".into(),
        },
    );
    let view = w.view(NOW - 60, 2);
    let record = view.anchor(proofs[1].entry_index()).unwrap().clone();
    assert_eq!((record.sealed_height, record.sealed_time), (1, issued + 10));

    // Without the proof: refused, as above.
    let v = verify(&text, &request(), &view, &policy(2), NOW).unwrap();
    only_failure(&v, CheckName::Accreditation);
    assert_eq!(v.issued_at, Some(issued));

    // With it: issued no later than the block that sealed the anchor,
    // before the withdrawal.
    let v = verify(
        Presentation::with_anchor(&text, &proofs[1]),
        &request(),
        &view,
        &policy(2),
        NOW,
    )
    .unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);
    assert_eq!(v.check(CheckName::Anchor), Some(&Outcome::Pass));
    assert_eq!(v.check(CheckName::Accreditation), Some(&Outcome::Pass));
    assert_eq!(v.issued_at, Some(issued + 10));
    assert_eq!(v.anchor.as_ref(), Some(&record));
    // Through the QR envelope, and under a policy that requires anchors.
    let qr = envelope::encode(&text).unwrap();
    let mut p = policy(2);
    p.require_anchor = true;
    let again = verify(
        Presentation::with_anchor(&qr, &proofs[1]),
        &request(),
        &view,
        &p,
        NOW,
    )
    .unwrap();
    assert_eq!(again, v);

    // A credential the withdrawn issuer backdates now cannot use that
    // batch's proofs: they are for other credentials.
    let backdated = presentation_from(issuer().signing_key(), issued + 5);
    for proof in &proofs {
        let v = verify(
            Presentation::with_anchor(&backdated, proof),
            &request(),
            &view,
            &policy(2),
            NOW,
        )
        .unwrap();
        assert!(
            failure(&v, CheckName::Anchor).contains("not in the batch of anchor entry"),
            "{:#?}",
            v.verdict.checks
        );
        failure(&v, CheckName::Accreditation);
        assert_eq!(v.anchor, None);
    }
}

#[test]
fn a_key_rotated_out_before_issuance_fails_and_a_backdated_iat_needs_an_anchor() {
    let mut w = world_with_status(0);
    let old = issuer().signing_key().clone();
    let new = key(0x55);
    let seq = w.state.authors[&id(&old)].0 + 1;
    let rotated_at = NOW - 2 * DAY;
    w.write(
        &old,
        rotated_at,
        Action::rotate_key(ORIGIN, &id(&old), &new, seq),
    );
    let view = w.view(NOW - 60, 2);
    assert_eq!(view.rotation(&id(&old)).unwrap().time, rotated_at);

    // Signed with the old key after the rotation, honestly dated.
    let v = verify(
        &presentation_from(&old, NOW - DAY),
        &request(),
        &view,
        &policy(2),
        NOW,
    )
    .unwrap();
    let why = failure(&v, CheckName::IssuerKey);
    assert!(
        why.contains("rotated out") && why.contains(&id(&new)),
        "{why}"
    );
    failure(&v, CheckName::Accreditation);

    // The same key, iat backdated to before the rotation: without an
    // anchor proof the date is only the key holder's word, so it fails ...
    let backdated = presentation_from(&old, rotated_at - DAY);
    let v = verify(&backdated, &request(), &view, &policy(2), NOW).unwrap();
    let why = failure(&v, CheckName::IssuerKey);
    assert!(why.contains("only an anchor proof sealed before"), "{why}");
    assert!(matches!(
        v.check(CheckName::Anchor),
        Some(Outcome::NotChecked(why)) if why.contains("own iat")
    ));
    // ... and a policy that requires anchor proofs says so too.
    let mut p = policy(2);
    p.require_anchor = true;
    let v = verify(&backdated, &request(), &view, &p, NOW).unwrap();
    failure(&v, CheckName::Anchor);

    // The new key carries on, with the list it inherited.
    let v = verify(
        &presentation_from(&new, NOW - DAY),
        &request(),
        &view,
        &policy(2),
        NOW,
    )
    .unwrap();
    // The new key's list URI names the new DID, which has no list yet.
    assert!(failure(&v, CheckName::Status).contains("unknown"));
    assert_eq!(v.check(CheckName::IssuerKey), Some(&Outcome::Pass));
    assert_eq!(v.check(CheckName::Accreditation), Some(&Outcome::Pass));
}

#[test]
fn a_revoked_credential_fails_status() {
    let w = world_with_status(1);
    let v = verify(
        &presentation(NOW - DAY),
        &request(),
        &w.view(NOW - 60, 2),
        &policy(2),
        NOW,
    )
    .unwrap();
    let why = only_failure(&v, CheckName::Status);
    assert!(
        why.starts_with("revoked") && why.contains("height 7"),
        "{why}"
    );
    assert_eq!(v.status, Some(Status::Revoked));
}

#[test]
fn a_suspended_credential_fails_status() {
    let w = world_with_status(2);
    let v = verify(
        &presentation(NOW - DAY),
        &request(),
        &w.view(NOW - 60, 2),
        &policy(2),
        NOW,
    )
    .unwrap();
    assert!(only_failure(&v, CheckName::Status).starts_with("suspended"));
    assert_eq!(v.status, Some(Status::Suspended));
}

#[test]
fn a_list_without_a_token_is_unknown() {
    let w = World::new(&["transcript"]);
    let v = verify(
        &presentation(NOW - DAY),
        &request(),
        &w.view(NOW - 60, 2),
        &policy(2),
        NOW,
    )
    .unwrap();
    assert!(only_failure(&v, CheckName::Status).starts_with("unknown"));
    assert_eq!(v.status, Some(Status::UnknownList));
}

#[test]
fn a_stale_replica_fails_freshness_with_its_age() {
    let w = world_with_status(0);
    let mut p = policy(2);
    p.max_replica_age = 3600;
    let v = verify(
        &presentation(NOW - DAY),
        &request(),
        &w.view(NOW - 7200, 2),
        &p,
        NOW,
    )
    .unwrap();
    let why = only_failure(&v, CheckName::Freshness);
    assert!(
        why.contains("7200 s old") && why.contains("3600 s"),
        "{why}"
    );
    assert_eq!(v.as_of.age, 7200);
}

#[test]
fn too_few_cosignatures_fail() {
    let w = world_with_status(0);
    let v = verify(
        &presentation(NOW - DAY),
        &request(),
        &w.view(NOW - 60, 1),
        &policy(2),
        NOW,
    )
    .unwrap();
    let why = only_failure(&v, CheckName::Cosignatures);
    assert!(
        why.contains("1 valid witness cosignature(s) (w0.example); 2 needed"),
        "{why}"
    );

    // A node key the verifier does not trust.
    let other =
        TrustPolicy::new((ORIGIN.into(), key(0x66).verifying_key()), vec![], 0, false).unwrap();
    let p = Policy::new(other, Templates::builtin().unwrap());
    let v = verify(
        &presentation(NOW - DAY),
        &request(),
        &w.view(NOW - 60, 2),
        &p,
        NOW,
    )
    .unwrap();
    assert!(only_failure(&v, CheckName::Cosignatures).contains("does not verify"));
}

#[test]
fn wrong_audience_nonce_or_missing_claims_fail() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let text = presentation(NOW - DAY);
    let mut r = request();
    r.aud = "https://other.example".into();
    let v = verify(&text, &r, &view, &policy(2), NOW).unwrap();
    assert!(only_failure(&v, CheckName::Audience).contains("other.example"));

    let mut r = request();
    r.nonce = Some("another".into());
    let v = verify(&text, &r, &view, &policy(2), NOW).unwrap();
    only_failure(&v, CheckName::Nonce);

    let mut r = request();
    r.nonce = None;
    let v = verify(&text, &r, &view, &policy(2), NOW).unwrap();
    assert!(only_failure(&v, CheckName::Nonce).contains("requires a nonce"));
    let mut p = policy(2);
    p.require_nonce = false;
    let v = verify(&text, &r, &view, &p, NOW).unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);
    assert!(matches!(
        v.check(CheckName::Nonce),
        Some(Outcome::NotChecked(_))
    ));

    let mut r = request();
    // Indexes as issued: courses 0 and 4 are disclosed, 1 is not (though
    // the disclosed list has a second item).
    r.claims = paths(&[
        "/student_name",
        "/gpa",
        "/degree",
        "/courses",
        "/courses/4/grade",
        "/courses/1",
        "/institution",
    ]);
    let v = verify(&text, &r, &view, &policy(2), NOW).unwrap();
    let why = only_failure(&v, CheckName::RequestedClaims);
    assert_eq!(why, "not disclosed: /gpa, /degree, /courses/1");
    r.claims = paths(&["/courses/0", "/courses/4/grade", "/institution"]);
    let v = verify(&text, &r, &view, &policy(2), NOW).unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);
}

#[test]
fn a_forged_signature_skips_the_chain_checks_and_says_why() {
    let w = world_with_status(0);
    let text = presentation_from(&key(0x44), NOW - DAY);
    let v = verify(&text, &request(), &w.view(NOW - 60, 2), &policy(2), NOW).unwrap();
    // Signed by an unknown key under its own did:key: the signature holds,
    // but the chain knows no such issuer.
    assert!(failure(&v, CheckName::Accreditation).contains("not an issuer on the chain"));
    assert!(v.issuer.clone().unwrap().name.is_none());

    // A presentation whose issuer signature is broken.
    let mut parts: Vec<String> = text.split('~').map(str::to_owned).collect();
    let mut jwt: Vec<char> = parts[0].chars().collect();
    let at = jwt.len() - 10;
    jwt[at] = if jwt[at] == 'A' { 'B' } else { 'A' };
    parts[0] = jwt.into_iter().collect();
    let broken = parts.join("~");
    let v = verify(&broken, &request(), &w.view(NOW - 60, 2), &policy(2), NOW).unwrap();
    failure(&v, CheckName::IssuerSignature);
    assert!(matches!(
        v.check(CheckName::Status),
        Some(Outcome::NotChecked(why)) if why.contains("signature")
    ));
}

#[test]
fn a_view_of_another_state_is_refused() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 0);
    let mut other = w.state.clone();
    other.size += 1;
    let signed = trust(0).verify(view.note().as_bytes()).unwrap();
    assert!(ChainView::new(&other, signed).is_err());
}

#[test]
fn a_backdated_iat_after_rotation_passes_only_with_an_anchor_sealed_before() {
    let mut w = world_with_status(0);
    let old = issuer().signing_key().clone();
    let new = key(0x55);
    let issued = NOW - 5 * DAY;
    let honest = presentation_from(&old, issued);
    let proofs = w.anchor(&old, issued, &[&honest]);
    let seq = w.state.authors[&id(&old)].0 + 1;
    let rotated_at = NOW - 2 * DAY;
    w.write(
        &old,
        rotated_at,
        Action::rotate_key(ORIGIN, &id(&old), &new, seq),
    );
    let view = w.view(NOW - 60, 2);

    // Issued and anchored before the rotation: it passes with its proof ...
    let v = verify(
        Presentation::with_anchor(&honest, &proofs[0]),
        &request(),
        &view,
        &policy(2),
        NOW,
    )
    .unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);
    assert_eq!(v.check(CheckName::IssuerKey), Some(&Outcome::Pass));
    assert_eq!(v.issued_at, Some(issued + 10));
    // ... and not without it.
    let v = verify(&honest, &request(), &view, &policy(2), NOW).unwrap();
    assert!(failure(&v, CheckName::IssuerKey).contains("own word"));

    // Signed with the old key after the rotation and backdated: no proof
    // of its own, and the honest credential's proof does not fit it.
    let backdated = presentation_from(&old, issued + 1);
    let v = verify(&backdated, &request(), &view, &policy(2), NOW).unwrap();
    failure(&v, CheckName::IssuerKey);
    let v = verify(
        Presentation::with_anchor(&backdated, &proofs[0]),
        &request(),
        &view,
        &policy(2),
        NOW,
    )
    .unwrap();
    assert!(failure(&v, CheckName::Anchor).contains("not in the batch"));
    failure(&v, CheckName::IssuerKey);
}

#[test]
fn an_anchor_proof_for_another_credential_entry_size_or_issuer_fails() {
    let mut w = world_with_status(0);
    let a = presentation(NOW - 3 * DAY);
    let b = presentation(NOW - 3 * DAY + 1);
    let proofs = w.anchor(issuer().signing_key(), NOW - 3 * DAY, &[&a, &b]);
    // Another accredited issuer anchors a batch holding `a` too.
    let other = key(0x66);
    w.write(
        &authority(),
        NOW - 4 * DAY,
        Action::Accredit {
            issuer: id(&other),
            name: "Other College".into(),
            kinds: vec!["transcript".into()],
        },
    );
    let theirs = w.anchor(&other, NOW - 3 * DAY, &[&a]);
    let view = w.view(NOW - 60, 2);
    let anchored = |text: &str, proof: &AnchorProof| {
        verify(
            Presentation::with_anchor(text, proof),
            &request(),
            &view,
            &policy(2),
            NOW,
        )
        .unwrap()
    };
    assert!(anchored(&a, &proofs[0]).is_valid());
    assert!(anchored(&b, &proofs[1]).is_valid());

    // The other credential's proof.
    let why = only_failure(&anchored(&a, &proofs[1]), CheckName::Anchor);
    assert!(why.contains("not in the batch"), "{why}");
    // Another entry: not an anchor, or beyond the view.
    for entry in [1, 10_000] {
        let moved = AnchorProof::new(entry, 0, 2, proofs[0].path().to_vec()).unwrap();
        let why = only_failure(&anchored(&a, &moved), CheckName::Anchor);
        assert!(why.contains("is not an anchor this view knows"), "{why}");
    }
    // Another batch size with a path of the same shape.
    let resized = AnchorProof::new(proofs[0].entry_index(), 0, 3, {
        let mut path = proofs[0].path().to_vec();
        path.push(Hash([0; 32]));
        path
    })
    .unwrap();
    let why = only_failure(&anchored(&a, &resized), CheckName::Anchor);
    assert!(why.contains("batch of 3"), "{why}");
    // A flipped hash.
    let mut path = proofs[0].path().to_vec();
    path[0].0[0] ^= 1;
    let flipped = AnchorProof::new(proofs[0].entry_index(), 0, 2, path).unwrap();
    only_failure(&anchored(&a, &flipped), CheckName::Anchor);
    // Another issuer's anchor over the same credential.
    let why = only_failure(&anchored(&a, &theirs[0]), CheckName::Anchor);
    assert!(why.contains("written by"), "{why}");
    // A failed proof leaves the issuance time at iat.
    assert_eq!(anchored(&a, &theirs[0]).issued_at, Some(NOW - 3 * DAY));
    // The proof from outside, as JSON.
    let parsed = AnchorProof::from_json(&proofs[1].to_json()).unwrap();
    assert!(anchored(&b, &parsed).is_valid());
}

#[test]
fn a_credential_without_a_status_list_fails_unless_the_policy_allows_it() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let text = presentation_with(
        issuer().signing_key(),
        NOW - DAY,
        |r| r.status = None,
        AUD,
        NONCE,
    );
    let v = verify(&text, &request(), &view, &policy(2), NOW).unwrap();
    assert_eq!(
        only_failure(&v, CheckName::Status),
        "no status list: cannot be revoked"
    );
    assert_eq!(v.status, None);

    let mut p = policy(2);
    p.require_status = false;
    let v = verify(&text, &request(), &view, &p, NOW).unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);
    assert!(matches!(
        v.check(CheckName::Status),
        Some(Outcome::NotChecked(_))
    ));
}

#[test]
fn an_empty_requested_path_is_never_disclosed() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let text = presentation(NOW - DAY);
    let mut r = request();
    r.claims = vec![ClaimPath::from_segments(Vec::new())];
    let v = verify(&text, &r, &view, &policy(2), NOW).unwrap();
    assert_eq!(
        only_failure(&v, CheckName::RequestedClaims),
        "not disclosed: (the empty path)"
    );
}

#[test]
fn an_empty_nonce_counts_as_none_and_an_empty_audience_fails() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let text = presentation_with(issuer().signing_key(), NOW - DAY, |_| {}, "", "");
    let r = Request {
        aud: String::new(),
        nonce: Some(String::new()),
        claims: paths(&["/student_name"]),
    };
    let v = verify(&text, &r, &view, &policy(2), NOW).unwrap();
    assert!(!v.is_valid());
    assert!(failure(&v, CheckName::Nonce).contains("requires a nonce"));
    assert!(failure(&v, CheckName::Audience).contains("aud is empty"));

    let mut p = policy(2);
    p.require_nonce = false;
    let v = verify(&text, &r, &view, &p, NOW).unwrap();
    assert!(matches!(
        v.check(CheckName::Nonce),
        Some(Outcome::NotChecked(_))
    ));
    assert!(only_failure(&v, CheckName::Audience).contains("aud is empty"));
}

#[test]
fn claims_the_template_does_not_list_are_kept_apart() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let text = presentation_with(
        issuer().signing_key(),
        NOW - DAY,
        |r| {
            r.claims
                .insert("honorary_doctorate".into(), serde_json::json!("yes"));
        },
        AUD,
        NONCE,
    );
    let v = verify(&text, &request(), &view, &policy(2), NOW).unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);
    assert!(
        v.claim("honorary_doctorate").is_none(),
        "not among the template's claims"
    );
    let extra = v.unlisted_claim("honorary_doctorate").unwrap();
    assert_eq!(
        (extra.label.as_str(), &extra.value),
        ("honorary_doctorate", &serde_json::json!("yes"))
    );
    assert_eq!(v.unlisted_claims.len(), 1);
    assert_eq!(v.claim("student_name").unwrap().label, "Student name");
    let json = serde_json::to_value(&v).unwrap();
    assert_eq!(json["unlisted_claims"][0]["name"], "honorary_doctorate");
    assert!(json["claims"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["name"] != "honorary_doctorate"));
}

#[test]
fn a_status_list_uri_is_quoted_and_cut_in_messages() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let uri = format!(
        "https://evil.example/\n<b>ok</b>\u{202e}{}",
        "a".repeat(5000)
    );
    let text = presentation_with(
        issuer().signing_key(),
        NOW - DAY,
        |r| {
            r.status = Some(StatusRef {
                idx: IDX,
                uri: uri.clone(),
            })
        },
        AUD,
        NONCE,
    );
    let v = verify(&text, &request(), &view, &policy(2), NOW).unwrap();
    let why = only_failure(&v, CheckName::Status);
    assert!(why.contains("\"https://evil.example/\\n<b>"), "{why}");
    assert!(!why.contains('\n') && !why.contains('\u{202e}'), "{why}");
    assert!(why.len() < 400, "{} bytes: {why}", why.len());

    let e = StatusError::Index {
        list: uri.clone(),
        idx: 9,
        len: 8,
    }
    .to_string();
    assert!(
        e.starts_with("status list \"https://evil.example/\\n"),
        "{e}"
    );
    assert!(!e.contains('\n') && e.len() < 400, "{e}");
}

#[test]
fn requested_claims_that_cannot_be_checked_fail() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let text = presentation(NOW - DAY);
    // A well-formed disclosure the issuer never made: the disclosures do
    // not process, so whether the claims asked for are there is unknown.
    let stray = vouch_core::b64::encode(br#"["c2FsdHNhbHRzYWx0","gpa","4.0"]"#);
    let mut parts: Vec<&str> = text.split('~').collect();
    parts.insert(1, &stray);
    let forged = parts.join("~");
    let v = verify(&forged, &request(), &view, &policy(2), NOW).unwrap();
    failure(&v, CheckName::Disclosures);
    assert!(
        failure(&v, CheckName::RequestedClaims).contains("cannot be checked"),
        "{:#?}",
        v.verdict.checks
    );
}

#[test]
fn templates_built_from_values_are_checked() {
    let good = Templates::builtin()
        .unwrap()
        .iter()
        .next()
        .cloned()
        .unwrap();
    assert!(Templates::new(vec![good.clone()]).is_ok());

    // A field claiming a reserved claim would label the issuer's `status`
    // (or `iss`, …) as a subject claim.
    let mut reserved = good.clone();
    reserved.fields[0].claim = "status".into();
    let e = Templates::new(vec![reserved]).unwrap_err();
    assert!(e.why.contains("reserved"), "{e}");

    let mut no_vct = good.clone();
    no_vct.vct = String::new();
    let e = Templates::new(vec![no_vct]).unwrap_err();
    assert!(e.why.contains("vct is empty"), "{e}");

    let mut no_fields = good;
    no_fields.fields.clear();
    assert!(Templates::new(vec![no_fields]).is_err());
}

#[test]
fn a_status_index_outside_every_anchored_batch_fails() {
    // The list's one anchor covers index IDX only.
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let outside = presentation_with(
        issuer().signing_key(),
        NOW - DAY,
        |r| {
            r.status = Some(StatusRef {
                idx: IDX + 10,
                uri: list_uri(issuer().signing_key()),
            })
        },
        AUD,
        NONCE,
    );
    let v = verify(&outside, &request(), &view, &policy(2), NOW).unwrap();
    assert_eq!(v.status, Some(Status::Valid), "the bit reads valid");
    let why = only_failure(&v, CheckName::Status);
    assert!(
        why.contains(&format!("index {} of list", IDX + 10))
            && why.contains(&format!("{IDX}..={IDX}")),
        "{why}"
    );

    // Inside the anchored range: passes, as before.
    let v = verify(&presentation(NOW - DAY), &request(), &view, &policy(2), NOW).unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);

    // A view without the list's anchors cannot tie the index to a batch,
    // and says so.
    let bare = w.view_without_anchors(NOW - 60, 2);
    let v = verify(&outside, &request(), &bare, &policy(2), NOW).unwrap();
    assert!(v.is_valid(), "{:#?}", v.verdict.checks);
    match v.check(CheckName::Anchor) {
        Some(Outcome::NotChecked(why)) => {
            assert!(why.contains("holds no anchor of list"), "{why}")
        }
        other => panic!("anchor: {other:?}"),
    }
}

#[test]
fn an_anchor_proof_whose_batch_range_misses_the_status_index_fails() {
    let mut w = World::new(&["transcript"]);
    let k = issuer().signing_key().clone();
    let issued = NOW - 3 * DAY;
    // The batch claims index IDX, but the credential points at IDX + 40.
    let text = presentation_with(
        &k,
        issued,
        |r| {
            r.status = Some(StatusRef {
                idx: IDX + 40,
                uri: list_uri(&k),
            })
        },
        AUD,
        NONCE,
    );
    let proofs = w.anchor(&k, issued, &[&text]);
    w.publish(&k, NOW - DAY, 1, &[]);
    let view = w.view(NOW - 60, 2);
    let v = verify(
        Presentation::with_anchor(&text, &proofs[0]),
        &request(),
        &view,
        &policy(2),
        NOW,
    )
    .unwrap();
    assert!(
        failure(&v, CheckName::Anchor).contains("outside the batch of anchor entry"),
        "{:#?}",
        v.verdict.checks
    );
    assert_eq!(v.anchor, None);
}

/// A withdrawn issuer's credential anchored before the withdrawal: valid only
/// with its anchor proof.
fn withdrawn_after_anchoring() -> (String, AnchorProof, ChainView) {
    let mut w = world_with_status(0);
    let issued = NOW - 3 * DAY;
    let text = presentation(issued);
    let other = presentation_from(issuer().signing_key(), issued - 1);
    let proofs = w.anchor(issuer().signing_key(), issued, &[&other, &text]);
    w.write(
        &authority(),
        NOW - 2 * DAY,
        Action::Withdraw {
            issuer: issuer().did().as_str().to_owned(),
            reason: "closed".into(),
        },
    );
    (text, proofs[1].clone(), w.view(NOW - 60, 2))
}

#[test]
fn an_envelope_or_file_carrying_the_anchor_proof_verifies_with_the_anchor_checked() {
    let (text, proof, view) = withdrawn_after_anchoring();
    let mut p = policy(2);
    p.require_anchor = true;
    let carried = vouch_core::presentation::Presentation {
        sd_jwt: text.clone(),
        anchor_proof: Some(proof.clone()),
    };
    let apart = verify(
        Presentation::with_anchor(&text, &proof),
        &request(),
        &view,
        &p,
        NOW,
    )
    .unwrap();
    assert!(apart.is_valid(), "{:#?}", apart.verdict.checks);

    let qr = envelope::encode_presentation(&carried).unwrap();
    assert_eq!(envelope::decode_presentation(&qr).unwrap(), carried);
    assert_eq!(envelope::decode(&qr).unwrap(), text);
    let file = carried.to_file_json();
    for input in [&qr, &file] {
        let v = verify(input, &request(), &view, &p, NOW).unwrap();
        assert_eq!(v, apart, "{input}");
        assert_eq!(v.check(CheckName::Anchor), Some(&Outcome::Pass));
        assert_eq!(v.check(CheckName::Accreditation), Some(&Outcome::Pass));
        assert_eq!(v.issued_at, Some(NOW - 3 * DAY + 10));
    }
    // The owned value converts, too.
    assert_eq!(verify(&carried, &request(), &view, &p, NOW).unwrap(), apart);

    // Without a proof, in each form: the withdrawn issuer fails, and the
    // policy's requirement says why.
    let bare = vouch_core::presentation::Presentation::new(text.clone());
    for input in [
        text.clone(),
        envelope::encode(&text).unwrap(),
        envelope::encode_presentation(&bare).unwrap(),
        bare.to_file_json(),
    ] {
        let v = verify(&input, &request(), &view, &p, NOW).unwrap();
        assert!(
            failure(&v, CheckName::Anchor).contains("requires an anchor proof"),
            "{:#?}",
            v.verdict.checks
        );
        failure(&v, CheckName::Accreditation);
        assert_eq!(v.issued_at, Some(NOW - 3 * DAY));
    }

    // A proof given apart wins over a carried one: a wrong one given apart
    // fails even though the envelope carries the right one.
    let wrong = AnchorProof::new(proof.entry_index(), 0, 2, proof.path().to_vec()).unwrap();
    let v = verify(
        Presentation::with_anchor(&qr, &wrong),
        &request(),
        &view,
        &p,
        NOW,
    )
    .unwrap();
    assert!(failure(&v, CheckName::Anchor).contains("not in the batch"));
}

#[test]
fn fail_a_truncated_garbage_or_oversize_anchor_part_is_refused() {
    use vouch_core::envelope::{EnvelopeError, MAX_ANCHOR_PART};
    let (text, proof, view) = withdrawn_after_anchoring();
    let plain = envelope::encode(&text).unwrap();
    let carried = envelope::encode_presentation(&vouch_core::presentation::Presentation {
        sd_jwt: text.clone(),
        anchor_proof: Some(proof),
    })
    .unwrap();
    assert!(carried.len() > plain.len());
    let body = |env: &str| base45_decode(&env[envelope::PREFIX.len()..]);
    let plain_body = body(&plain);
    let carried_body = body(&carried);
    // The anchor part is the carried body's prefix before the plain body.
    let split = carried_body.len() - plain_body.len();
    assert_eq!(carried_body[split..], plain_body[..]);
    let anchor = &carried_body[..split];
    assert_eq!(anchor[0], 0);
    let (part_len, head) = if anchor[1] & 0x80 == 0 {
        (usize::from(anchor[1]), 2)
    } else {
        (
            usize::from(anchor[1] & 0x7f) | usize::from(anchor[2]) << 7,
            3,
        )
    };
    let part = &anchor[head..];
    assert_eq!(part.len(), part_len);
    let with_part = |declared: usize, part: &[u8]| {
        let mut b = vec![0u8];
        push_varint(&mut b, declared);
        b.extend_from_slice(part);
        b.extend_from_slice(&plain_body);
        format!("{}{}", envelope::PREFIX, base45_encode(&b))
    };
    let refused = |env: &str| {
        let err = verify(env, &request(), &view, &policy(2), NOW).unwrap_err();
        match err {
            vouch_core::VerifyError::Envelope(e) => e,
            other => panic!("{other:?}"),
        }
    };
    // Rebuilt as it was, it verifies.
    assert!(verify(
        &with_part(part.len(), part),
        &request(),
        &view,
        &policy(2),
        NOW
    )
    .unwrap()
    .is_valid());
    // Truncated: the part declared longer than it is reads into the
    // presentation and is refused as it stands; every shorter part is
    // refused by its fields.
    for end in 0..part.len() {
        let e = refused(&with_part(end, &part[..end]));
        assert!(
            matches!(e, EnvelopeError::AnchorPart(_) | EnvelopeError::Anchor(_)),
            "cut at {end}: {e:?}"
        );
        assert!(e.to_string().contains("anchor part"), "{e}");
    }
    // A whole envelope cut inside its anchor part.
    let cut = {
        let mut b = carried_body[..head + part_len / 2].to_vec();
        b[0] = 0;
        format!("{}{}", envelope::PREFIX, base45_encode(&b))
    };
    assert_eq!(refused(&cut), EnvelopeError::AnchorPart("truncated"));
    // Garbage of the right length.
    let garbage = vec![0xA5u8; part.len()];
    let e = refused(&with_part(garbage.len(), &garbage));
    assert!(
        matches!(e, EnvelopeError::AnchorPart(_) | EnvelopeError::Anchor(_)),
        "{e:?}"
    );
    // Oversize: refused by the declared length alone, before the part or
    // the presentation (here: deflate garbage) is decoded.
    let mut b = vec![0u8];
    push_varint(&mut b, MAX_ANCHOR_PART + 1);
    b.extend_from_slice(&[0xFF; 64]);
    let e = refused(&format!("{}{}", envelope::PREFIX, base45_encode(&b)));
    assert_eq!(
        e,
        EnvelopeError::AnchorTooLarge {
            len: MAX_ANCHOR_PART + 1,
            max: MAX_ANCHOR_PART
        }
    );
    assert!(e.to_string().contains("anchor part"), "{e}");
    // And a part of exactly the limit is read (and refused by its fields).
    let e = refused(&with_part(MAX_ANCHOR_PART, &vec![0xFF; MAX_ANCHOR_PART]));
    assert!(matches!(e, EnvelopeError::AnchorPart(_)), "{e:?}");
}

#[test]
fn fail_a_broken_presentation_file_is_an_error() {
    let (text, proof, view) = withdrawn_after_anchoring();
    let file = vouch_core::presentation::Presentation {
        sd_jwt: text,
        anchor_proof: Some(proof),
    }
    .to_file_json();
    for broken in [
        file[..file.len() / 2].to_owned(),
        file.replace("\"batch_size\":2", "\"batch_size\":0"),
        file.replace("vouch-presentation/v1", "vouch-presentation/v9"),
        "{}".to_owned(),
    ] {
        let err = verify(&broken, &request(), &view, &policy(2), NOW).unwrap_err();
        assert!(
            matches!(err, vouch_core::VerifyError::PresentationFile(_)),
            "{broken}: {err:?}"
        );
    }
}

/// Base45 (RFC 9285), written out here so the tests build envelopes
/// independently of the crate's encoder.
fn base45_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let mut out = String::new();
    for pair in bytes.chunks(2) {
        let (mut n, digits) = match *pair {
            [a, b] => (usize::from(a) * 256 + usize::from(b), 3),
            [a] => (usize::from(a), 2),
            _ => unreachable!(),
        };
        for _ in 0..digits {
            out.push(char::from(ALPHABET[n % 45]));
            n /= 45;
        }
    }
    out
}

fn base45_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 45] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
    let value = |c: u8| ALPHABET.iter().position(|&a| a == c).unwrap();
    let mut out = Vec::new();
    for chunk in text.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .rev()
            .fold(0usize, |acc, &c| acc * 45 + value(c));
        if chunk.len() == 3 {
            out.extend_from_slice(&[(n / 256) as u8, (n % 256) as u8]);
        } else {
            out.push(n as u8);
        }
    }
    out
}

fn push_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `text` with one character of its `part`-th `~`-separated part's
/// signature (10 from the end) changed.
fn broken_signature(text: &str, part: usize) -> String {
    let mut parts: Vec<String> = text.split('~').map(str::to_owned).collect();
    let mut jws: Vec<char> = parts[part].chars().collect();
    let at = jws.len() - 10;
    jws[at] = if jws[at] == 'A' { 'B' } else { 'A' };
    parts[part] = jws.into_iter().collect();
    parts.join("~")
}

#[test]
fn presentations_checked_as_one_batch_get_the_verdicts_each_gets_alone() {
    let w = world_with_status(0);
    let view = w.view(NOW - 60, 2);
    let (request, policy) = (request(), policy(2));
    let good = presentation(NOW - DAY);
    let last = good.split('~').count() - 1;
    let texts = [
        good.clone(),
        presentation(NOW - 2 * DAY),
        // The issuer's signature broken; the KB-JWT's; a signature that
        // holds by a key the chain does not know.
        broken_signature(&good, 0),
        broken_signature(&good, last),
        presentation_from(&key(0x44), NOW - DAY),
        presentation(NOW - 3 * DAY),
    ];
    let alone: Vec<Verification> = texts
        .iter()
        .map(|t| verify(t, &request, &view, &policy, NOW).unwrap())
        .collect();
    assert!(alone[0].is_valid() && alone[1].is_valid() && alone[5].is_valid());
    failure(&alone[2], CheckName::IssuerSignature);
    failure(&alone[3], CheckName::HolderBinding);
    failure(&alone[4], CheckName::Accreditation);

    // `texts[i]` for each `i` of `indexes`, prepared, and their signatures.
    let prepare_batch = |indexes: &[usize]| -> (Vec<Prepared<'_>>, Vec<Signatures>) {
        let prepared: Vec<Prepared<'_>> = indexes
            .iter()
            .map(|&i| prepare(&texts[i], &request, &view, &policy, NOW).unwrap())
            .collect();
        let sets = prepared
            .iter()
            .map(|p| p.signatures().unwrap().clone())
            .collect();
        (prepared, sets)
    };

    // All in one batch: it does not hold, and each is then checked alone.
    let all: Vec<usize> = (0..texts.len()).collect();
    let (prepared, sets) = prepare_batch(&all);
    assert!(!check_batch(&sets));
    assert!(sets.iter().all(|s| !s.verified()));
    for (i, p) in prepared.into_iter().enumerate() {
        assert_eq!(p.finish().unwrap(), alone[i], "presentation {i}");
    }

    // One bad among eight: the batch does not hold, and is narrowed down
    // to it: the other seven are marked (by the halves that held), the bad
    // one is not, and each finishes as verify says.
    let eight = [0, 1, 5, 4, 0, 2, 1, 5];
    let (prepared, sets) = prepare_batch(&eight);
    assert!(!check_batch(&sets));
    let marked: Vec<bool> = sets.iter().map(Signatures::verified).collect();
    assert_eq!(
        marked,
        [true, true, true, true, true, false, true, true],
        "only the bad set is left to be checked alone"
    );
    for (p, &i) in prepared.into_iter().zip(&eight) {
        assert_eq!(p.finish().unwrap(), alone[i], "presentation {i}");
    }

    // The good ones (and the one by an unknown key, whose signatures
    // hold) in one batch: it holds, and marks each.
    let good_ones = [0, 1, 4, 5];
    let (prepared, sets) = prepare_batch(&good_ones);
    assert!(check_batch(&sets));
    assert!(sets.iter().all(Signatures::verified));
    for (p, &i) in prepared.into_iter().zip(&good_ones) {
        assert_eq!(p.finish().unwrap(), alone[i], "presentation {i}");
    }

    // Unbatched: finishing checks the two signatures alone.
    for (i, t) in texts.iter().enumerate() {
        let p = prepare(t, &request, &view, &policy, NOW).unwrap();
        assert_eq!(p.finish().unwrap(), alone[i], "presentation {i} alone");
    }
    // Input that cannot be checked is refused by prepare as by verify.
    assert_eq!(
        prepare("not a presentation", &request, &view, &policy, NOW).unwrap_err(),
        verify("not a presentation", &request, &view, &policy, NOW).unwrap_err()
    );
}

#[test]
fn the_cosignature_check_is_the_same_when_remembered_for_each_view_and_policy() {
    let w = world_with_status(0);
    let text = presentation(NOW - DAY);
    let other_node =
        TrustPolicy::new((ORIGIN.into(), key(0x66).verifying_key()), vec![], 0, false).unwrap();
    let other_node = Policy::new(other_node, Templates::builtin().unwrap());
    let (two, one) = (w.view(NOW - 60, 2), w.view(NOW - 60, 1));
    let cases: [(&ChainView, Policy, Option<&str>); 5] = [
        (&two, policy(2), None),
        (
            &two,
            policy(3),
            Some("2 valid witness cosignature(s) (w0.example, w1.example); 3 needed"),
        ),
        (
            &one,
            policy(2),
            Some("1 valid witness cosignature(s) (w0.example); 2 needed"),
        ),
        (
            &two,
            other_node,
            Some("does not verify under this verifier's trust"),
        ),
        (&one, policy(1), None),
    ];
    // Twice round, interleaved: what one view and policy gave is never
    // what another gets.
    let mut first = Vec::new();
    for round in 0..2 {
        for (i, (view, policy, fails)) in cases.iter().enumerate() {
            let v = verify(&text, &request(), view, policy, NOW).unwrap();
            match fails {
                None => assert_eq!(v.check(CheckName::Cosignatures), Some(&Outcome::Pass)),
                Some(why) => assert!(
                    only_failure(&v, CheckName::Cosignatures).contains(why),
                    "case {i}: {:?}",
                    v.check(CheckName::Cosignatures)
                ),
            }
            if round == 0 {
                first.push(v);
            } else {
                assert_eq!(v, first[i], "case {i}");
            }
        }
    }
}

/// An envelope decoded straight into its SD-JWT
/// (`envelope::decode_sd_jwt`) and checked by `verify_sd_jwt`, or by
/// `prepare_sd_jwt` and a batch, gives exactly the verification `verify`
/// gives for the envelope's text: valid, anchored, bound to another
/// nonce, signed by a key the chain does not know, or with a forged
/// issuer signature.
#[test]
fn a_presentation_parsed_from_its_envelope_verifies_as_its_text_does() {
    let mut w = world_with_status(0);
    let issued = NOW - 3 * DAY;
    let text = presentation(issued);
    let other = presentation_from(issuer().signing_key(), issued - 1);
    let proofs = w.anchor(issuer().signing_key(), issued, &[&other, &text]);
    let view = w.view(NOW - 60, 2);
    // The issuer signature of `other` on `text`'s JWT: a forgery that
    // parses.
    let forged = {
        let (jwt, rest) = text.split_once('~').unwrap();
        let (signed, _) = jwt.rsplit_once('.').unwrap();
        let other_sig = other.split_once('~').unwrap().0.rsplit_once('.').unwrap().1;
        format!("{signed}.{other_sig}~{rest}")
    };
    let cases = [
        (text.clone(), None),
        (text.clone(), Some(proofs[1].clone())),
        (text.clone(), Some(proofs[0].clone())),
        (
            presentation_with(issuer().signing_key(), issued, |_| {}, AUD, "another"),
            None,
        ),
        (presentation_from(&key(77), issued), None),
        (forged, None),
    ];
    let (request, policy) = (request(), policy(2));
    let mut sets = Vec::new();
    let mut prepared = Vec::new();
    let mut expected = Vec::new();
    let decoded: Vec<_> = cases
        .iter()
        .map(|(text, proof)| {
            let packed = vouch_core::presentation::Presentation {
                sd_jwt: text.clone(),
                anchor_proof: proof.clone(),
            };
            envelope::decode_sd_jwt(&envelope::encode_presentation(&packed).unwrap()).unwrap()
        })
        .collect();
    for ((text, proof), decoded) in cases.iter().zip(&decoded) {
        let input = match proof {
            Some(p) => Presentation::with_anchor(text, p),
            None => Presentation::from(text),
        };
        let want = verify(input, &request, &view, &policy, NOW).unwrap();
        let sd_jwt = decoded.sd_jwt.as_ref().unwrap();
        assert_eq!(sd_jwt, &vouch_core::SdJwt::parse(text).unwrap());
        assert_eq!(decoded.anchor_proof.as_ref(), proof.as_ref());
        let anchor = decoded.anchor_proof.as_ref();
        let got = verify_sd_jwt(sd_jwt, anchor, &request, &view, &policy, NOW).unwrap();
        assert_eq!(got, want);
        let p = prepare_sd_jwt(sd_jwt, anchor, &request, &view, &policy, NOW).unwrap();
        sets.extend(p.signatures().cloned());
        prepared.push(p);
        expected.push(want);
    }
    // The forgery fails the batch; each is then finished as verify says.
    assert!(!check_batch(&sets));
    for (p, want) in prepared.into_iter().zip(&expected) {
        assert_eq!(&p.finish().unwrap(), want);
    }
    assert!(expected[0].is_valid() && expected[1].is_valid());
    failure(&expected[2], CheckName::Anchor);
    failure(&expected[3], CheckName::Nonce);
    failure(&expected[5], CheckName::IssuerSignature);
}

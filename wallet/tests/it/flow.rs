//! The wallet library end to end: create, receive a DID, import a
//! transcript bound to it, list, show, present three of twelve courses,
//! verify; and every refusal, each changing nothing.

use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::seal::Cost;
use vouch_core::vc::{self, PresentationRequest};
use vouch_core::SdJwt;
use vouch_wallet::keys::RecoveryPhrase;
use vouch_wallet::store::StoreError;
use vouch_wallet::{Binding, Wallet, WalletError};

use crate::common::{course_title, transcript};

const NOW: i64 = 1_780_000_000;

fn binding() -> Binding {
    Binding {
        aud: "https://verifier.example".into(),
        nonce: "n-0123456789".into(),
        channel: "text".into(),
    }
}

/// What the verifier of [`binding`] expects of the KB-JWT.
fn request() -> PresentationRequest {
    PresentationRequest {
        aud: binding().aud,
        nonce: binding().nonce,
        max_age: 300,
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn import_list_show_and_present_three_of_twelve_courses() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let (mut wallet, phrase) = Wallet::create(dir.path(), "pw", Cost::TEST, &mut rng).unwrap();
    assert_eq!(phrase.words().len(), 24);
    let did = wallet.receive(NOW, &mut rng).unwrap();
    let id = wallet
        .import(
            &transcript(&did, "Ada Lovelace", NOW - 100, 1),
            None,
            NOW,
            &mut rng,
        )
        .unwrap();

    let list = wallet.list(NOW).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    assert_eq!(list[0].title, "BSc Computer Science — State University");
    assert_eq!(list[0].kind.as_deref(), Some("transcript"));
    assert!(!list[0].expired);

    let (_, lines, facts) = wallet.show(&id, NOW).unwrap();
    assert_eq!(facts.holder, did);
    let shown: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    for name in [
        "degree",
        "gpa",
        "courses",
        "courses[CS100]",
        "courses[CS111]",
    ] {
        assert!(shown.contains(&name), "{name} in {shown:?}");
    }
    assert!(
        !shown.contains(&"cnf") && !shown.contains(&"iss"),
        "internal fields are not claims"
    );
    let degree = lines.iter().find(|l| l.name == "degree").unwrap();
    assert_eq!(degree.label, "Degree");

    let chosen = names(&["degree", "courses[CS101]", "courses[CS104]", "/courses/7"]);
    let p = wallet
        .present(&id, &chosen, &binding(), NOW, &mut rng)
        .unwrap();
    assert_eq!(
        p.disclosed,
        names(&[
            "degree",
            "courses[CS101]",
            "courses[CS104]",
            "courses[CS107]"
        ])
    );
    assert!(p.withheld.contains(&"courses[CS100]".to_owned()));
    assert!(p.withheld.contains(&"student_name".to_owned()) || !p.withheld.is_empty());

    let request = request();
    let verdict = vc::verify_presentation(&p.text, &request, NOW + 5).unwrap();
    assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
    let revealed = SdJwt::parse(&p.text).unwrap().reveal().unwrap();
    assert_eq!(revealed.claims["courses"].as_array().unwrap().len(), 3);
    // The nine other courses are nowhere in the presentation: not their
    // titles, not their codes, in any disclosure.
    let decoded: String = SdJwt::parse(&p.text)
        .unwrap()
        .disclosures()
        .iter()
        .map(|d| d.value().to_string())
        .collect();
    for i in (0..12).filter(|i| ![1, 4, 7].contains(i)) {
        assert!(!decoded.contains(&course_title(i)), "course {i} leaked");
        assert!(
            !decoded.contains(&format!("CS{}", 100 + i)),
            "course {i} leaked"
        );
    }
    // Recorded in the activity log.
    let activity = wallet.activity().unwrap();
    assert_eq!(activity.len(), 1);
    assert_eq!(activity[0].audience, "https://verifier.example");
    assert_eq!(activity[0].disclosed.len(), 4);
}

#[test]
fn fail_every_refused_import_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(2);
    let (mut wallet, _) = Wallet::create(dir.path(), "pw", Cost::TEST, &mut rng).unwrap();
    let ours = wallet.receive(NOW, &mut rng).unwrap();
    let good = transcript(&ours, "Ada", NOW, 2);
    let id = wallet.import(&good, None, NOW, &mut rng).unwrap();

    // Bound to a key the wallet never handed out (nor could derive).
    let stranger = vouch_core::DidKey::from_public_key(
        &ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key(),
    );
    let err = wallet
        .import(&transcript(&stranger, "Eve", NOW, 3), None, NOW, &mut rng)
        .unwrap_err();
    assert!(
        matches!(err, WalletError::NotOurKey(ref d) if d == stranger.as_str()),
        "{err}"
    );
    // The same credential twice.
    let err = wallet.import(&good, None, NOW, &mut rng).unwrap_err();
    assert!(
        matches!(err, WalletError::Duplicate(ref d) if *d == id),
        "{err}"
    );
    // A presentation instead of a credential.
    let p = wallet
        .present(&id, &names(&["degree"]), &binding(), NOW, &mut rng)
        .unwrap();
    assert!(matches!(
        wallet.import(&p.text, None, NOW, &mut rng),
        Err(WalletError::Credential(
            vouch_wallet::credential::CredentialError::Presentation
        ))
    ));
    // A changed signature, garbage, nothing.
    let (jwt, rest) = good.split_once('~').unwrap();
    let mut sig = jwt.rsplit_once('.').unwrap().1.to_owned();
    sig.replace_range(0..1, if sig.starts_with('A') { "B" } else { "A" });
    let forged = format!("{}.{sig}~{rest}", jwt.rsplit_once('.').unwrap().0);
    assert!(matches!(
        wallet.import(&forged, None, NOW, &mut rng),
        Err(WalletError::Credential(
            vouch_wallet::credential::CredentialError::Invalid(_)
        ))
    ));
    for junk in ["", "~~~", "not a credential", "a.b.c~"] {
        assert!(
            wallet.import(junk, None, NOW, &mut rng).is_err(),
            "{junk:?}"
        );
    }
    assert_eq!(wallet.list(NOW).unwrap().len(), 1);
    // Presenting what is not there.
    assert!(matches!(
        wallet.present("ffffffff", &names(&["degree"]), &binding(), NOW, &mut rng),
        Err(WalletError::NoSuchCredential(_))
    ));
    assert!(matches!(
        wallet.present(&id, &names(&["courses[CS999]"]), &binding(), NOW, &mut rng),
        Err(WalletError::Disclose(_))
    ));
    assert!(matches!(
        wallet.present(&id, &names(&["cnf"]), &binding(), NOW, &mut rng),
        Err(WalletError::Disclose(_))
    ));
    assert_eq!(
        wallet.activity().unwrap().len(),
        1,
        "only the one presentation made"
    );
}

#[test]
fn fail_wrong_passphrase_then_passphrase_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    {
        let (mut wallet, _) = Wallet::create(dir.path(), "first", Cost::TEST, &mut rng).unwrap();
        let did = wallet.receive(NOW, &mut rng).unwrap();
        wallet
            .import(&transcript(&did, "Ada", NOW, 4), None, NOW, &mut rng)
            .unwrap();
    }
    let err = Wallet::open(dir.path(), "wrong").unwrap_err();
    assert!(
        matches!(err, WalletError::Store(StoreError::WrongPassphrase)),
        "{err}"
    );
    let wallet = Wallet::open(dir.path(), "first").unwrap();
    wallet
        .change_passphrase("second", Cost::TEST, &mut rng)
        .unwrap();
    drop(wallet);
    assert!(Wallet::open(dir.path(), "first").is_err());
    let wallet = Wallet::open(dir.path(), "second").unwrap();
    assert_eq!(wallet.list(NOW).unwrap().len(), 1);
    assert!(matches!(
        Wallet::create(dir.path(), "x", Cost::TEST, &mut rng),
        Err(WalletError::Store(StoreError::Exists(_)))
    ));
}

#[test]
fn phrase_restore_recovers_the_keys_so_reimport_works() {
    let original = tempfile::tempdir().unwrap();
    let restored = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let (mut wallet, phrase) = Wallet::create(original.path(), "pw", Cost::TEST, &mut rng).unwrap();
    let dids: Vec<_> = (0..3)
        .map(|_| wallet.receive(NOW, &mut rng).unwrap())
        .collect();
    assert_ne!(dids[0], dids[1], "one fresh key per credential");
    let issued = transcript(&dids[2], "Ada", NOW, 5);
    drop(wallet);

    let typed = RecoveryPhrase::parse(&phrase.to_line()).unwrap();
    let mut back =
        Wallet::restore(restored.path(), "new pw", Cost::TEST, &typed, &mut rng).unwrap();
    let id = back.import(&issued, None, NOW, &mut rng).unwrap();
    let p = back
        .present(&id, &names(&["degree"]), &binding(), NOW, &mut rng)
        .unwrap();
    let request = request();
    assert!(vc::verify_presentation(&p.text, &request, NOW)
        .unwrap()
        .is_valid());
    // The next DID handed out after the restore is not one already used.
    let next = back.receive(NOW, &mut rng).unwrap();
    assert!(!dids.contains(&next));
    assert!(matches!(
        Wallet::restore(restored.path(), "pw", Cost::TEST, &typed, &mut rng),
        Err(WalletError::NotEmpty(_))
    ));
}

#[test]
fn no_plaintext_claim_key_or_did_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let (mut wallet, phrase) = Wallet::create(dir.path(), "pw", Cost::TEST, &mut rng).unwrap();
    let did = wallet.receive(NOW, &mut rng).unwrap();
    let text = transcript(&did, "Grace Hopper", NOW, 6);
    let id = wallet.import(&text, None, NOW, &mut rng).unwrap();
    wallet
        .present(
            &id,
            &names(&["degree", "courses[CS100]"]),
            &binding(),
            NOW,
            &mut rng,
        )
        .unwrap();
    drop(wallet);
    let issuer = crate::common::issuer();
    let needles: Vec<String> = vec![
        "Grace Hopper".into(),
        "State University".into(),
        course_title(3),
        did.as_str().to_owned(),
        did.method_specific_id().to_owned(),
        issuer.did().as_str().to_owned(),
        issuer.did().method_specific_id().to_owned(),
        text.split('~').next().unwrap()[..40].to_owned(),
        phrase.words()[..3].join(" "),
        "verifier.example".into(),
    ];
    let mut files = 0;
    let mut stack = vec![dir.path().to_owned()];
    while let Some(p) = stack.pop() {
        for entry in std::fs::read_dir(&p).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).unwrap();
            for needle in &needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle:?} in {}",
                    path.display()
                );
            }
        }
    }
    assert!(files > 0);
}

#[test]
fn backup_restores_an_identical_wallet() {
    let original = tempfile::tempdir().unwrap();
    let restored = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(6);
    let (mut wallet, _) = Wallet::create(original.path(), "pw", Cost::TEST, &mut rng).unwrap();
    let did = wallet.receive(NOW, &mut rng).unwrap();
    let id = wallet
        .import(&transcript(&did, "Ada", NOW, 7), None, NOW, &mut rng)
        .unwrap();
    wallet
        .present(&id, &names(&["degree"]), &binding(), NOW, &mut rng)
        .unwrap();
    let bytes = wallet.backup("backup pass").unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1\n"));
    assert!(!bytes.windows(3).any(|w| w == b"Ada"));

    let err =
        Wallet::restore_backup(restored.path(), &bytes, "wrong", Cost::TEST, &mut rng).unwrap_err();
    assert!(
        matches!(
            err,
            WalletError::Backup(vouch_wallet::backup::BackupError::WrongPassphrase)
        ),
        "{err}"
    );
    assert!(
        !restored.path().join("store").exists(),
        "a refused restore creates nothing"
    );
    for broken in [&bytes[..bytes.len() / 2], b"not age at all".as_slice(), &[]] {
        assert!(Wallet::restore_backup(
            restored.path(),
            broken,
            "backup pass",
            Cost::TEST,
            &mut rng
        )
        .is_err());
        assert!(!restored.path().join("store").exists());
    }

    let mut back =
        Wallet::restore_backup(restored.path(), &bytes, "backup pass", Cost::TEST, &mut rng)
            .unwrap();
    let a = wallet.list(NOW).unwrap();
    let b = back.list(NOW).unwrap();
    assert_eq!(
        a.iter().map(|s| (&s.id, &s.title)).collect::<Vec<_>>(),
        b.iter().map(|s| (&s.id, &s.title)).collect::<Vec<_>>()
    );
    assert_eq!(back.activity().unwrap(), wallet.activity().unwrap());
    let p = back
        .present(&id, &names(&["courses[CS105]"]), &binding(), NOW, &mut rng)
        .unwrap();
    let request = request();
    assert!(vc::verify_presentation(&p.text, &request, NOW)
        .unwrap()
        .is_valid());
    assert_eq!(
        back.activity().unwrap().len(),
        2,
        "new activity appends after the restored"
    );
    // The restored wallet hands out a key not handed out before.
    assert_ne!(back.receive(NOW, &mut rng).unwrap(), did);
    drop(back);
    assert!(Wallet::open(restored.path(), "backup pass").is_ok());
}

#[test]
fn restoring_from_the_phrase_never_hands_out_a_did_given_out_before() {
    let original = tempfile::tempdir().unwrap();
    let restored = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(11);
    let (mut wallet, phrase) = Wallet::create(original.path(), "pw", Cost::TEST, &mut rng).unwrap();
    // Given to issuers, no credential back yet.
    let given: Vec<_> = (0..3)
        .map(|_| wallet.receive(NOW, &mut rng).unwrap())
        .collect();
    let late = transcript(&given[1], "Ada", NOW, 12);
    drop(wallet);

    let back = Wallet::restore(restored.path(), "pw", Cost::TEST, &phrase, &mut rng).unwrap();
    drop(back);
    // Reopened before any key is handed out: the floor is stored.
    let mut back = Wallet::open(restored.path(), "pw").unwrap();
    let next = back.receive(NOW, &mut rng).unwrap();
    assert!(!given.contains(&next), "{next:?} was given out before");
    // A credential for a DID handed out before the restore still imports.
    back.import(&late, None, NOW, &mut rng).unwrap();
}

#[test]
fn fail_a_backup_with_a_record_no_wallet_writes_creates_nothing() {
    use vouch_wallet::backup::{seal, RecordCopy, Snapshot};
    let original = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(13);
    let (mut wallet, phrase) = Wallet::create(original.path(), "pw", Cost::TEST, &mut rng).unwrap();
    let did = wallet.receive(NOW, &mut rng).unwrap();
    let key = |id: &str, did: &str| RecordCopy {
        table: 'k',
        id: id.into(),
        value: serde_json::json!({"did": did, "created": NOW}),
    };
    let cases = [
        ("4 bytes", key("00", did.as_str())),
        ("out of range", key("7fffffff", did.as_str())),
        ("not this phrase's key", key("00000001", did.as_str())),
        (
            "8 bytes",
            RecordCopy {
                table: 'a',
                id: "0001".into(),
                value: serde_json::json!({"at": NOW, "credential": "x", "title": "t",
                    "audience": "a", "disclosed": [], "channel": "text"}),
            },
        ),
        (
            "the key floor is not a key index",
            RecordCopy {
                table: 's',
                id: hex::encode("key-floor"),
                value: serde_json::json!(u32::MAX),
            },
        ),
        (
            "the registry setting is not text",
            RecordCopy {
                table: 's',
                id: hex::encode("registry"),
                value: serde_json::json!({"url": 1}),
            },
        ),
    ];
    for (what, record) in cases {
        let snapshot = Snapshot {
            format: vouch_wallet::backup::FORMAT.into(),
            phrase: phrase.to_line().to_string(),
            records: vec![key("00000000", did.as_str()), record],
        };
        let bytes = seal(&snapshot, "backup pass").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let err = Wallet::restore_backup(dir.path(), &bytes, "backup pass", Cost::TEST, &mut rng)
            .unwrap_err();
        assert!(
            matches!(err, WalletError::BackupRecordRefused { why, .. } if why.contains(what)),
            "{what}: {err}"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{what}: a refused restore leaves the directory empty"
        );
    }
}

#[test]
fn a_backup_restored_hands_out_no_did_given_out_after_it_was_made() {
    let original = tempfile::tempdir().unwrap();
    let restored = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(17);
    let (mut wallet, _) = Wallet::create(original.path(), "pw", Cost::TEST, &mut rng).unwrap();
    let mut given = vec![wallet.receive(NOW, &mut rng).unwrap()];
    let bytes = wallet.backup("backup pass").unwrap();
    // Handed out after the backup: the backup cannot know them.
    given.extend((0..2).map(|_| wallet.receive(NOW, &mut rng).unwrap()));
    let mut back =
        Wallet::restore_backup(restored.path(), &bytes, "backup pass", Cost::TEST, &mut rng)
            .unwrap();
    let next = back.receive(NOW, &mut rng).unwrap();
    assert!(!given.contains(&next), "{next:?} was given out before");
}

#[test]
fn fail_a_wallet_hands_out_no_more_than_its_most_dids() {
    use vouch_wallet::backup::{seal, RecordCopy, Snapshot};
    let mut rng = StdRng::seed_from_u64(18);
    let phrase = RecoveryPhrase::generate(&mut rng);
    // A backup whose floor is the most a wallet hands out.
    let snapshot = Snapshot {
        format: vouch_wallet::backup::FORMAT.into(),
        phrase: phrase.to_line().to_string(),
        records: vec![RecordCopy {
            table: 's',
            id: hex::encode("key-floor"),
            value: serde_json::json!(vouch_wallet::wallet::MAX_HANDED_OUT),
        }],
    };
    let bytes = seal(&snapshot, "backup pass").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut wallet =
        Wallet::restore_backup(dir.path(), &bytes, "backup pass", Cost::TEST, &mut rng).unwrap();
    assert!(matches!(
        wallet.receive(NOW, &mut rng),
        Err(WalletError::KeysExhausted)
    ));
}

#[test]
fn a_title_made_of_long_claims_is_clipped_and_the_wallet_still_lists() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(14);
    let (mut wallet, _) = Wallet::create(dir.path(), "pw", Cost::TEST, &mut rng).unwrap();
    let did = wallet.receive(NOW, &mut rng).unwrap();
    let mut claims = crate::common::transcript_claims("Ada");
    claims.insert("degree".into(), "D".repeat(200_000).into());
    claims.insert("programme".into(), "P".repeat(200_000).into());
    let id = wallet
        .import(
            &crate::common::transcript_of(&did, claims, NOW, 15),
            None,
            NOW,
            &mut rng,
        )
        .unwrap();
    let listed = wallet.list(NOW).unwrap();
    assert_eq!(listed[0].id, id);
    assert_eq!(
        listed[0].title.chars().count(),
        vouch_wallet::credential::MAX_TITLE_CHARS
    );
    assert!(listed[0].title.ends_with('…'));
}

/// Every claim of a 12-course transcript does not fit QR version 25: it
/// goes through the registry's relay, encrypted, and the code holds the
/// link; fetched once and opened with the link's key it verifies, and the
/// relay never had the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_presentation_too_dense_for_a_qr_code_goes_through_the_relay() {
    use vouch_registry::relay_link::RelayLink;
    use vouch_wallet::share::{self, QrShare, ShareError};

    let root = tempfile::tempdir().unwrap();
    let node = vouch_registry::testkit::LoopbackNode::start(root.path(), &[], 0)
        .await
        .unwrap();
    let mut rng = StdRng::seed_from_u64(8);
    let (mut wallet, _) =
        Wallet::create(&root.path().join("w"), "pw", Cost::TEST, &mut rng).unwrap();
    let did = wallet.receive(NOW, &mut rng).unwrap();
    // Long course titles that do not compress: the envelope deflates
    // repeated text well and packs base64url tokens as raw bytes.
    let mut claims = crate::common::transcript_claims("Ada");
    for c in claims["courses"].as_array_mut().unwrap() {
        let title: String = (0..90)
            .map(|_| {
                char::from(b"abcdefghijklmnopqrstuvwxyz .,;"[rand::Rng::gen_range(&mut rng, 0..30)])
            })
            .collect();
        c["title"] = title.into();
    }
    let text = crate::common::transcript_of(&did, claims, NOW, 12);
    let id = wallet.import(&text, None, NOW, &mut rng).unwrap();
    let all: Vec<String> = wallet
        .show(&id, NOW)
        .unwrap()
        .1
        .iter()
        .filter(|l| l.selective)
        .map(|l| l.name.clone())
        .collect();
    let p = wallet.prepare(&id, &all, &binding(), NOW).unwrap();
    assert!(matches!(
        QrShare::new(&p.text),
        Err(ShareError::TooDense { version, .. }) if version > 25
    ));
    let file = vouch_core::presentation::Presentation {
        sd_jwt: p.text.clone(),
        anchor_proof: None,
    };
    let share = share::relay(&node.client(), &file, &mut rng).await.unwrap();
    assert!(share.version() <= 25);
    let link = RelayLink::parse(&share.text).unwrap();
    let key_part = share.text.split_once('#').unwrap().1;
    assert!(
        !link.fetch_url().contains(key_part),
        "the key never goes to the relay"
    );
    let plain = link.fetch().await.unwrap();
    let back = vouch_core::presentation::Presentation::from_file_json(&plain).unwrap();
    assert_eq!(back.sd_jwt, p.text);
    let request = request();
    assert!(vc::verify_presentation(&back.sd_jwt, &request, NOW)
        .unwrap()
        .is_valid());
    // Served once.
    assert!(link.fetch().await.is_err());
}

#[test]
fn a_credential_imports_from_the_vch1_text_of_an_issuers_qr_code() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(9);
    let (mut wallet, _) = Wallet::create(dir.path(), "pw", Cost::TEST, &mut rng).unwrap();
    let did = wallet.receive(NOW, &mut rng).unwrap();
    let text = transcript(&did, "Ada", NOW, 13);
    let envelope = vouch_core::envelope::encode(&text).unwrap();
    let id = wallet
        .import(&format!("{envelope}\n"), None, NOW, &mut rng)
        .unwrap();
    assert_eq!(wallet.credential(&id).unwrap().sd_jwt, text);
    // The same credential as SD-JWT text is a duplicate; a broken
    // envelope is refused with its reason and stores nothing.
    assert!(matches!(
        wallet.import(&text, None, NOW, &mut rng),
        Err(WalletError::Duplicate(_))
    ));
    let broken = &envelope[..envelope.len() - 7];
    assert!(matches!(
        wallet.import(broken, None, NOW, &mut rng),
        Err(WalletError::Envelope(_))
    ));
    assert_eq!(wallet.list(NOW).unwrap().len(), 1);
}

/// A relay whose answer names an id that is not 32 hex digits (the id goes
/// into the link ahead of the key) is refused: no link is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_a_relay_id_that_is_not_32_hex_digits_makes_no_link() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use vouch_wallet::share::{self, RelayShareError};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // Answers one request, whatever it was, with a hostile id.
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 64 << 10];
        // The headers, then as much body as they announce.
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if seen.len() >= end + 4 + length {
                    break;
                }
            }
            assert!(n > 0, "the client closed early");
        }
        let body = r##"{"id":"0123456789abcdef#key=evil/../x","expires":1}"##;
        let reply = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(reply.as_bytes()).await.unwrap();
    });
    let client = vouch_registry::client::NodeClient::new(&base).unwrap();
    let presentation = vouch_core::presentation::Presentation {
        sd_jwt: "a.b.c~".into(),
        anchor_proof: None,
    };
    let mut rng = StdRng::seed_from_u64(16);
    let err = share::relay(&client, &presentation, &mut rng)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(matches!(err, RelayShareError::RelayId(_)), "{err}");
    server.await.unwrap();
}

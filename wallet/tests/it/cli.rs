//! The `vouch-wallet` binary: help, the happy path from init to a QR code,
//! and its error paths (each a one-line reason and a non-zero exit).

use std::path::Path;
use std::process::{Command, Output};

use vouch_core::vc::{self, PresentationRequest};
use vouch_core::DidKey;

use crate::common::transcript;

const PASS: &str = "correct horse battery";

fn wallet(dir: &Path, args: &[&str]) -> Output {
    // Wallets made here use a 1 MiB KDF so the many commands stay quick;
    // every later command reads the cost from the wallet.
    let mut args = args.to_vec();
    if matches!(args.first(), Some(&"init" | &"restore")) {
        args.extend(["--kdf-memory-mib", "1"]);
    }
    Command::new(env!("CARGO_BIN_EXE_vouch-wallet"))
        .args(&args)
        .arg("--dir")
        .arg(dir)
        .env("VOUCH_PASSPHRASE", PASS)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("vouch-wallet: "),
        "one-line reason last: {err}"
    );
    err
}

#[test]
fn help_names_every_command() {
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-wallet"))
        .arg("--help")
        .output()
        .unwrap();
    let text = ok(&out);
    for cmd in [
        "init", "restore", "backup", "receive", "import", "list", "show", "present", "activity",
        "passwd",
    ] {
        assert!(text.contains(cmd), "{cmd} in {text}");
    }
}

#[test]
fn init_receive_import_present_as_qr_and_file() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("w");
    let init: serde_json::Value =
        serde_json::from_str(&ok(&wallet(&dir, &["init", "--json"]))).unwrap();
    assert_eq!(init["recovery_phrase"].as_array().unwrap().len(), 24);
    failed(&wallet(&dir, &["init"]));

    let did = ok(&wallet(&dir, &["receive"])).trim().to_owned();
    let did = DidKey::parse(&did).unwrap();
    let good = root.path().join("ada.sd-jwt");
    std::fs::write(
        &good,
        transcript(&did, "Ada Lovelace", vouch_registry::now() - 60, 9),
    )
    .unwrap();
    let junk = root.path().join("junk.sd-jwt");
    std::fs::write(&junk, "not a credential").unwrap();

    // One good file and one bad: the good one is imported, the bad one is
    // named with its reason, and the exit says not everything went in.
    let out = wallet(
        &dir,
        &["import", good.to_str().unwrap(), junk.to_str().unwrap()],
    );
    let err = failed(&out);
    assert!(err.contains("1 of 2 files refused"), "{err}");
    let stderr_all = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr_all.contains("refused") && stderr_all.contains("junk.sd-jwt"),
        "{stderr_all}"
    );

    let list: serde_json::Value =
        serde_json::from_str(&ok(&wallet(&dir, &["list", "--json"]))).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["title"], "BSc Computer Science — State University");
    let show = ok(&wallet(&dir, &["show", &id]));
    assert!(show.contains("courses[CS103]"), "{show}");

    let png = root.path().join("share.png");
    let file = root.path().join("share.txt");
    let out = wallet(
        &dir,
        &[
            "present",
            &id,
            "--disclose",
            "degree,courses[CS101],courses[CS102],courses[CS103]",
            "--aud",
            "https://hr.example",
            "--nonce",
            "nonce-77",
            "--qr",
            png.to_str().unwrap(),
            "--out",
            file.to_str().unwrap(),
        ],
    );
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("QR code version"), "{err}");
    assert!(std::fs::read(&png)
        .unwrap()
        .starts_with(b"\x89PNG\r\n\x1a\n"));
    let text = std::fs::read_to_string(&file).unwrap();
    let request = PresentationRequest {
        aud: "https://hr.example".into(),
        nonce: "nonce-77".into(),
        max_age: 300,
    };
    let text = vouch_core::presentation::Presentation::from_file_json(&text)
        .unwrap()
        .sd_jwt;
    let verdict = vc::verify_presentation(&text, &request, vouch_registry::now()).unwrap();
    assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
    // Never overwrites an output.
    failed(&wallet(
        &dir,
        &[
            "present",
            &id,
            "--disclose",
            "degree",
            "--aud",
            "a",
            "--nonce",
            "n",
            "--out",
            file.to_str().unwrap(),
        ],
    ));

    let activity = ok(&wallet(&dir, &["activity"]));
    assert!(activity.contains("https://hr.example"), "{activity}");
    assert_eq!(
        activity.lines().count(),
        1,
        "the refused presentation is not recorded: {activity}"
    );
}

#[test]
fn fail_wrong_passphrase_unknown_id_and_bad_disclosure() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("w");
    ok(&wallet(&dir, &["init"]));
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-wallet"))
        .args(["list", "--dir"])
        .arg(&dir)
        .env("VOUCH_PASSPHRASE", "wrong")
        .output()
        .unwrap();
    let err = failed(&out);
    assert!(err.contains("wrong passphrase"), "{err}");
    let err = failed(&wallet(&root.path().join("none"), &["list"]));
    assert!(err.contains("no wallet"), "{err}");
    let err = failed(&wallet(&dir, &["show", "deadbeef"]));
    assert!(err.contains("no credential deadbeef"), "{err}");
    let err = failed(&wallet(
        &dir,
        &[
            "present",
            "deadbeef",
            "--disclose",
            "x",
            "--aud",
            "a",
            "--nonce",
            "n",
        ],
    ));
    assert!(err.contains("no credential"), "{err}");
}

#[test]
fn passwd_then_restore_from_phrase() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("w");
    let init: serde_json::Value =
        serde_json::from_str(&ok(&wallet(&dir, &["init", "--json"]))).unwrap();
    let words: Vec<&str> = init["recovery_phrase"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let new_pass = root.path().join("new-pass");
    std::fs::write(&new_pass, "another passphrase\n").unwrap();
    ok(&wallet(
        &dir,
        &[
            "passwd",
            "--new-passphrase-file",
            new_pass.to_str().unwrap(),
        ],
    ));
    failed(&wallet(&dir, &["list"]));
    let out = Command::new(env!("CARGO_BIN_EXE_vouch-wallet"))
        .args([
            "list",
            "--passphrase-file",
            new_pass.to_str().unwrap(),
            "--dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    ok(&out);

    let did = ok(&wallet(
        &dir,
        &["receive", "--passphrase-file", new_pass.to_str().unwrap()],
    ));
    let did = DidKey::parse(did.trim()).unwrap();
    let file = root.path().join("c.sd-jwt");
    std::fs::write(&file, transcript(&did, "Ada", vouch_registry::now(), 10)).unwrap();

    let restored = root.path().join("r");
    let phrase_file = root.path().join("phrase");
    std::fs::write(&phrase_file, words.join(" ")).unwrap();
    ok(&wallet(
        &restored,
        &[
            "restore",
            "--phrase",
            "--phrase-file",
            phrase_file.to_str().unwrap(),
        ],
    ));
    let out = ok(&wallet(
        &restored,
        &["import", root.path().to_str().unwrap()],
    ));
    assert!(out.contains("imported"), "{out}");
    // A backup restores the credential too, under the backup's passphrase.
    let backup = root.path().join("wallet.age");
    ok(&wallet(
        &restored,
        &["backup", "--out", backup.to_str().unwrap()],
    ));
    failed(&wallet(
        &restored,
        &["backup", "--out", backup.to_str().unwrap()],
    ));
    let from_backup = root.path().join("b");
    let out = ok(&wallet(
        &from_backup,
        &["restore", "--from", backup.to_str().unwrap()],
    ));
    assert!(out.contains("1 credentials"), "{out}");
    let list = ok(&wallet(&from_backup, &["list"]));
    assert!(list.contains("BSc Computer Science"), "{list}");
    std::fs::write(&phrase_file, words[..23].join(" ")).unwrap();
    let err = failed(&wallet(
        &root.path().join("r2"),
        &[
            "restore",
            "--phrase",
            "--phrase-file",
            phrase_file.to_str().unwrap(),
        ],
    ));
    assert!(err.contains("recovery phrase"), "{err}");
}

#[test]
fn present_answers_a_verifiers_request_and_writes_the_file_form() {
    use vouch_core::presentation_request::PresentationRequest;
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("w");
    ok(&wallet(&dir, &["init"]));
    let did = DidKey::parse(ok(&wallet(&dir, &["receive"])).trim()).unwrap();
    let file = root.path().join("c.sd-jwt");
    std::fs::write(
        &file,
        transcript(&did, "Ada", vouch_registry::now() - 60, 11),
    )
    .unwrap();
    ok(&wallet(&dir, &["import", file.to_str().unwrap()]));
    let list: serde_json::Value =
        serde_json::from_str(&ok(&wallet(&dir, &["list", "--json"]))).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_owned();

    let now = vouch_registry::now();
    let wanted = vec![
        vouch_core::ClaimPath::parse("/degree").unwrap(),
        vouch_core::ClaimPath::parse("/courses/2").unwrap(),
    ];
    let request = PresentationRequest::new(
        "https://hr.example",
        "-starts-with-a-dash-0123",
        now + 300,
        wanted,
    )
    .unwrap();
    let out = root.path().join("p.json");
    ok(&wallet(
        &dir,
        &[
            "present",
            &id,
            "--request",
            &request.to_text(),
            "--out",
            out.to_str().unwrap(),
        ],
    ));
    let text = std::fs::read_to_string(&out).unwrap();
    let file = vouch_core::presentation::Presentation::from_file_json(&text).unwrap();
    assert!(file.anchor_proof.is_none(), "imported without a manifest");
    let verdict = vc::verify_presentation(
        &file.sd_jwt,
        &vc::PresentationRequest {
            aud: request.aud().into(),
            nonce: request.nonce().into(),
            max_age: 300,
        },
        now,
    )
    .unwrap();
    assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
    let claims = vouch_core::SdJwt::parse(&file.sd_jwt)
        .unwrap()
        .reveal()
        .unwrap()
        .claims;
    assert!(claims.contains_key("degree"));
    assert_eq!(claims["courses"].as_array().unwrap().len(), 1);
    assert!(!claims.contains_key("gpa"), "only what was asked");

    // An expired request, and one that is not a request.
    let old = PresentationRequest::new("https://hr.example", "0123456789abcdefgh", now - 1, vec![])
        .unwrap();
    let err = failed(&wallet(
        &dir,
        &[
            "present",
            &id,
            "--disclose",
            "degree",
            "--request",
            &old.to_text(),
        ],
    ));
    assert!(err.contains("expired"), "{err}");
    let err = failed(&wallet(&dir, &["present", &id, "--request", "VCHR1:%%%"]));
    assert!(err.contains("request"), "{err}");
}

/// `kill -9` of `vouch-wallet import` half-way through a directory: every
/// credential stored before (and every one it acknowledged) is still there
/// and whole, and the wallet opens.
#[test]
fn kill_9_during_import_loses_nothing_stored() {
    use std::io::BufRead as _;
    use vouch_wallet::Wallet;

    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("w");
    ok(&wallet(&dir, &["init"]));
    let files = root.path().join("incoming");
    std::fs::create_dir(&files).unwrap();
    let first;
    {
        let mut w = Wallet::open(&dir, PASS).unwrap();
        let mut rng = rand::rngs::OsRng;
        let did = w.receive(vouch_registry::now(), &mut rng).unwrap();
        first = w
            .import(
                &transcript(&did, "Kept", vouch_registry::now(), 30),
                None,
                vouch_registry::now(),
                &mut rng,
            )
            .unwrap();
        for i in 0..400u64 {
            let did = w.receive(vouch_registry::now(), &mut rng).unwrap();
            let text = transcript(&did, &format!("S{i}"), vouch_registry::now(), 100 + i);
            std::fs::write(files.join(format!("{i:04}.sd-jwt")), text).unwrap();
        }
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_vouch-wallet"))
        .args(["import", "--dir"])
        .arg(&dir)
        .arg(&files)
        .env("VOUCH_PASSPHRASE", PASS)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut acknowledged = Vec::new();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while acknowledged.len() < 20 {
        let line = lines
            .next()
            .expect("import prints a line per file")
            .unwrap();
        let id = line
            .split(" as ")
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .to_owned();
        acknowledged.push(id);
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let w = Wallet::open(&dir, PASS).unwrap();
    let list = w.list(vouch_registry::now()).unwrap();
    let held: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
    assert!(
        held.contains(&first.as_str()),
        "the credential stored before survives"
    );
    for id in &acknowledged {
        assert!(held.contains(&id.as_str()), "acknowledged {id} survives");
    }
    assert!(
        list.len() < 401,
        "killed before the end ({} held)",
        list.len()
    );
    for s in &list {
        w.show(&s.id, vouch_registry::now()).unwrap();
    }
}

#[test]
fn import_reads_an_issuers_qr_code_image_and_refuses_a_broken_one() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("w");
    ok(&wallet(&dir, &["init"]));
    let did = DidKey::parse(ok(&wallet(&dir, &["receive"])).trim()).unwrap();
    let text = transcript(&did, "Ada", vouch_registry::now() - 60, 31);
    let envelope = vouch_core::envelope::encode(&text).unwrap();
    let code = vouch_core::qr::qr_code(&envelope, vouch_core::qr::EcLevel::M).unwrap();
    let image = root.path().join("credential.png");
    std::fs::write(&image, vouch_core::qr::png(&code, 4, 4).unwrap()).unwrap();
    let broken = root.path().join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\nnot really").unwrap();

    let out = wallet(
        &dir,
        &["import", image.to_str().unwrap(), broken.to_str().unwrap()],
    );
    let err = failed(&out);
    assert!(err.contains("1 of 2 files refused"), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("imported") && stdout.contains("credential.png"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.png") && stderr.contains("QR code"),
        "{stderr}"
    );
    let list: serde_json::Value =
        serde_json::from_str(&ok(&wallet(&dir, &["list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

/// One line of an issuer's `credentials.jsonl` for `sd_jwt`, leaf `leaf`
/// of a batch of 4.
fn archive_line(row: u64, holder: &str, sd_jwt: &str) -> String {
    let proof =
        vouch_core::AnchorProof::new(3, row - 1, 4, vec![vouch_core::log::record_hash(b"x"); 2])
            .unwrap();
    let line = serde_json::json!({
        "row": row,
        "credential_id": vouch_core::manifest::credential_id(sd_jwt),
        "file": format!("{row:06}-x.sd-jwt"),
        "holder": holder,
        "sd_jwt": sd_jwt,
        "anchor_proof": proof,
    });
    format!("{line}\n")
}

#[test]
fn import_takes_this_wallets_lines_of_an_issuers_archive_and_refuses_a_broken_one() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("w");
    ok(&wallet(&dir, &["init"]));
    let mine = DidKey::parse(ok(&wallet(&dir, &["receive"])).trim()).unwrap();
    let other =
        DidKey::from_public_key(&ed25519_dalek::SigningKey::from_bytes(&[9; 32]).verifying_key());
    let iat = vouch_registry::now() - 60;
    let archive = root.path().join("credentials.jsonl");
    std::fs::write(
        &archive,
        archive_line(1, mine.as_str(), &transcript(&mine, "Ada", iat, 1))
            + &archive_line(2, other.as_str(), &transcript(&other, "Bob", iat, 2))
            + &archive_line(3, mine.as_str(), &transcript(&mine, "Ada", iat, 3)),
    )
    .unwrap();
    let out = ok(&wallet(&dir, &["import", archive.to_str().unwrap()]));
    assert_eq!(out.matches("imported").count(), 2, "{out}");
    assert!(
        out.contains("line 1 as") && out.contains("line 3 as"),
        "{out}"
    );
    assert!(out.contains("skipped 1 line(s)"), "{out}");
    let list: serde_json::Value =
        serde_json::from_str(&ok(&wallet(&dir, &["list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|c| c["anchored"] == true),
        "{list}"
    );

    // Cut short in its second line: refused naming the line, nothing of it
    // imported (its first line is a new credential of this wallet).
    let broken = root.path().join("broken.jsonl");
    let whole = archive_line(1, mine.as_str(), &transcript(&mine, "Ada", iat, 4))
        + &archive_line(2, mine.as_str(), &transcript(&mine, "Ada", iat, 5));
    std::fs::write(&broken, &whole[..whole.len() - 10]).unwrap();
    let err = failed(&wallet(&dir, &["import", broken.to_str().unwrap()]));
    assert!(err.contains("broken.jsonl: line 2: cut short"), "{err}");
    let list: serde_json::Value =
        serde_json::from_str(&ok(&wallet(&dir, &["list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);

    // A line routed to this wallet whose credential is bound to another
    // holder's key: that line is refused, by number, and the next imports.
    let mixed = root.path().join("mixed.jsonl");
    std::fs::write(
        &mixed,
        archive_line(1, mine.as_str(), &transcript(&other, "Eve", iat, 6))
            + &archive_line(2, mine.as_str(), &transcript(&mine, "Ada", iat, 7)),
    )
    .unwrap();
    let run = wallet(&dir, &["import", mixed.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    let err = failed(&run);
    assert!(err.contains("mixed.jsonl line 1:"), "{err}");
    assert!(err.contains("1 of 2 refused"), "{err}");
    assert!(out.contains("mixed.jsonl line 2 as"), "{out}");
    let list: serde_json::Value =
        serde_json::from_str(&ok(&wallet(&dir, &["list", "--json"]))).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 3);
}

#[test]
fn fail_escape_sequences_an_issuer_put_in_claims_never_reach_the_terminal() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("w");
    ok(&wallet(&dir, &["init"]));
    let did = DidKey::parse(ok(&wallet(&dir, &["receive"])).trim()).unwrap();
    let mut claims = crate::common::transcript_claims("Ada");
    // Clear the screen, a one-byte CSI, a bidi override.
    claims.insert("degree".into(), "BSc\u{1b}[2J".into());
    claims.insert("programme".into(), "Law\u{9b}31m\u{202e}evil".into());
    let file = root.path().join("escape.sd-jwt");
    let text = crate::common::transcript_of(&did, claims, vouch_registry::now() - 60, 21);
    std::fs::write(&file, text).unwrap();
    ok(&wallet(&dir, &["import", file.to_str().unwrap()]));
    let list = ok(&wallet(&dir, &["list"]));
    let id = list.split_whitespace().next().unwrap().to_owned();
    let show = ok(&wallet(&dir, &["show", &id]));
    for out in [&list, &show] {
        assert!(!out.contains(['\u{1b}', '\u{9b}', '\u{202e}']), "{out:?}");
        assert!(out.contains("BSc\u{fffd}[2J"), "{out:?}");
    }
}

#[test]
fn fail_restore_from_a_backup_larger_than_any_backup_reads_no_further() {
    let root = tempfile::tempdir().unwrap();
    let huge = root.path().join("huge.age");
    // Sparse: the size without the disk.
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(vouch_wallet::backup::MAX_BACKUP_BYTES + 1)
        .unwrap();
    let dir = root.path().join("w");
    let err = failed(&wallet(
        &dir,
        &["restore", "--from", huge.to_str().unwrap()],
    ));
    // Said by the bounded read (the whole file read first said "the
    // backup is larger than").
    assert!(err.contains("huge.age is larger than"), "{err}");
    assert!(!dir.join("store").exists());
}

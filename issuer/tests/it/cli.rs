use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use rand::{Rng as _, SeedableRng as _};
use serde_json::Value;
use vouch_core::DidKey;
use vouch_registry::node::Node;
use vouch_registry::replica::{Replica, Trust};
use vouch_registry::testkit;

const BIN: &str = env!("CARGO_BIN_EXE_vouch-issuer");
const PASS: &str = "test passphrase";

/// A temporary directory named after the test, removed when dropped.
fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("vouch-iss-{name}-"))
        .tempdir()
        .unwrap()
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .env("VOUCH_PASSPHRASE", PASS)
        .stdin(Stdio::null());
    c
}

/// Runs `args` with the failpoint `point`, which kills the run there as
/// `kill -9` would (exit 137).
fn killed_at(args: &[&str], point: &str) {
    let r = cmd(args).env("VOUCH_FAILPOINT", point).output().unwrap();
    assert_eq!(r.status.code(), Some(137), "{point}: {args:?}");
}

fn run(args: &[&str]) -> Output {
    cmd(args).output().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn init(root: &Path) -> PathBuf {
    let dir = root.join("uni");
    ok(&["init", "--dir", s(&dir), "--name", "University of Example"]);
    dir
}

fn holder(seed: u64) -> String {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let key = SigningKey::generate(&mut rng);
    DidKey::from_public_key(&key.verifying_key())
        .as_str()
        .to_owned()
}

/// A transcript CSV of `n` rows; row `bad` (1-based) gets grade "A++".
fn transcripts(path: &Path, n: usize, bad: Option<usize>) {
    let mut text = String::from(
        "holder,institution,student_name,student_id,programme,degree,award_date,gpa,courses\n",
    );
    for i in 1..=n {
        let grade = if bad == Some(i) { "A++" } else { "B" };
        let courses: Vec<String> = (0..12)
            .map(|c| {
                format!(
                    "C{c:03}|Course {c}|5|{}|2025-S1",
                    if c == 3 { grade } else { "A" }
                )
            })
            .collect();
        text.push_str(&format!(
            "{},University of Example,Student {i},S{i:07},Computer Science,BSc,2025-07-15,3.50,\"{}\"\n",
            holder(i as u64),
            courses.join("; ")
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// `text` parsed as an SD-JWT that verifies now (no key binding needed).
fn verified(text: &str) -> vouch_core::SdJwt {
    let sd = vouch_core::SdJwt::parse(text).unwrap();
    let v = vouch_core::sd_jwt::verify_parsed(
        &sd,
        &vouch_core::sd_jwt::VerifyOptions::new(
            vouch_registry::now(),
            vouch_core::sd_jwt::KeyBinding::Optional,
        ),
    )
    .unwrap();
    assert!(v.is_valid());
    sd
}

fn manifest(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn help_and_templates() {
    for args in [
        vec!["--help"],
        vec!["init", "--help"],
        vec!["issue", "--help"],
        vec!["revoke", "--help"],
        vec!["templates", "--help"],
    ] {
        let out = ok(&args);
        assert!(out.contains("Usage"), "{args:?}: {out}");
    }
    assert!(ok(&["issue", "--help"]).contains("--skip-invalid"));
    let t = ok(&["templates"]);
    for name in [
        "transcript",
        "employment",
        "insurance-policy",
        "code|title|credits|grade|term",
    ] {
        assert!(t.contains(name), "{t}");
    }
    let json: Value = serde_json::from_str(&ok(&["templates", "--json"])).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 3);
    // Errors are one line and non-zero.
    let out = run(&[
        "issue",
        "--dir",
        "/nonexistent",
        "--template",
        "nope",
        "--input",
        "x",
        "--out",
        "y",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no template \"nope\""));
}

#[test]
fn a_valid_batch_verifies_and_is_anchored() {
    let root = tempdir("valid");
    let dir = init(root.path());
    let keystore = std::fs::read_to_string(dir.join("issuer.keystore")).unwrap();
    assert!(keystore.contains("argon2id") && keystore.contains("xchacha20poly1305"));
    let csv = root.path().join("t.csv");
    transcripts(&csv, 5, None);
    let out = root.path().join("out");
    let text = ok(&[
        "issue",
        "--dir",
        s(&dir),
        "--template",
        "transcript",
        "--input",
        s(&csv),
        "--out",
        s(&out),
        "--qr",
    ]);
    assert!(text.contains("issued 5 credentials"), "{text}");
    let m = manifest(&out);
    assert_eq!(m["count"], 5);
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), 5);
    let issuer = m["issuer"].as_str().unwrap();
    let mut indexes = std::collections::HashSet::new();
    for (i, c) in m["credentials"].as_array().unwrap().iter().enumerate() {
        let text = std::fs::read_to_string(out.join(c["file"].as_str().unwrap())).unwrap();
        let sd = verified(&text);
        assert_eq!(sd.payload()["iss"], issuer);
        assert_eq!(sd.payload()["vct"], "https://vouch.example/vct/transcript");
        // 6 claims and 12 courses are selectively disclosable.
        assert_eq!(sd.disclosures().len(), 18);
        assert_eq!(c["holder"], holder(i as u64 + 1));
        assert!(indexes.insert(c["status"]["idx"].as_u64().unwrap()));
        // Its anchor proof: this batch's anchor entry, its own leaf, and a
        // path from its issuer-signed JWT to the batch root, which a
        // presentation disclosing one claim (with a KB-JWT) still matches.
        let proof: vouch_core::AnchorProof =
            serde_json::from_value(c["anchor_proof"].clone()).unwrap();
        assert_eq!(
            (proof.entry_index(), proof.leaf_index(), proof.batch_size()),
            (m["anchor"]["entry_index"].as_u64().unwrap(), i as u64, 5)
        );
        let root = vouch_core::anchor::root_from_hex(m["batch_root"].as_str().unwrap()).unwrap();
        let holder_key = SigningKey::from_bytes(&[i as u8 + 1; 32]);
        let shown = sd
            .present(&[vouch_core::ClaimPath::parse("/student_name").unwrap()])
            .unwrap()
            .bind(&holder_key, "https://hr.example", "n", 1)
            .serialize();
        assert!(shown.len() < text.len());
        proof
            .verify(vouch_core::anchor::leaf(&shown).as_bytes(), root)
            .unwrap();
        // Not another credential's proof, nor the whole file as the leaf.
        assert!(proof.verify(text.as_bytes(), root).is_err());
        // The QR code PNG beside it.
        let png = std::fs::read(out.join(c["qr"].as_str().unwrap())).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(png, vouch_issuer::issuer::qr_png(&text).unwrap());
    }
    // A proof swapped between two credentials, or moved to another leaf,
    // fails the manifest check.
    let path = out.join("manifest.json");
    let good = std::fs::read(&path).unwrap();
    let mut swapped = m.clone();
    let first = swapped["credentials"][0]["anchor_proof"].clone();
    swapped["credentials"][0]["anchor_proof"] = swapped["credentials"][1]["anchor_proof"].clone();
    swapped["credentials"][1]["anchor_proof"] = first;
    std::fs::write(&path, serde_json::to_vec(&swapped).unwrap()).unwrap();
    let err = vouch_issuer::issuer::check_manifest(&out, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("leaf 1 of 5, not entry"), "{err}");
    let mut moved = m.clone();
    moved["credentials"][2]["anchor_proof"]["path"][0] =
        moved["credentials"][3]["anchor_proof"]["path"][0].clone();
    std::fs::write(&path, serde_json::to_vec(&moved).unwrap()).unwrap();
    let err = vouch_issuer::issuer::check_manifest(&out, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not in the batch root"), "{err}");
    std::fs::write(&path, good).unwrap();
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), 5);
    // A rerun finds the batch done and issues nothing new.
    let again = ok(&[
        "issue",
        "--dir",
        s(&dir),
        "--template",
        "transcript",
        "--input",
        s(&csv),
        "--out",
        s(&out),
    ]);
    assert!(again.contains("already issued"), "{again}");
    // The wrong passphrase opens nothing.
    let wrong = cmd(&["revoke", "--dir", s(&dir), "--status-index", "1"])
        .env("VOUCH_PASSPHRASE", "nope")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));
}

#[test]
fn one_bad_row_issues_nothing_unless_skipped() {
    let root = tempdir("bad");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    transcripts(&csv, 4, Some(3));
    let out = root.path().join("out");
    let args = [
        "issue",
        "--dir",
        s(&dir),
        "--template",
        "transcript",
        "--input",
        s(&csv),
        "--out",
        s(&out),
    ];
    let r = run(&args);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("row 3, column courses: item 4 field grade: \"A++\""),
        "{err}"
    );
    assert!(err.contains("nothing was issued"), "{err}");
    assert!(!out.exists());
    let node = Node::open(&dir.join("registry")).unwrap();
    assert_eq!(node.size(), 1, "only genesis: nothing reached the chain");
    drop(node);

    let mut skip = args.to_vec();
    skip.push("--skip-invalid");
    let r = run(&skip);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert!(String::from_utf8_lossy(&r.stderr).contains("skipped:"));
    let m = manifest(&out);
    assert_eq!(m["count"], 3);
    let rows: Vec<u64> = m["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["row"].as_u64().unwrap())
        .collect();
    assert_eq!(rows, [1, 2, 4]);

    // A CSV missing a column is refused as a whole.
    std::fs::write(&csv, "holder,institution\nx,y\n").unwrap();
    let r = run(&args);
    assert!(String::from_utf8_lossy(&r.stderr).contains("missing column(s)"));
}

/// The library path other crates use: rows parsed up front and given to
/// `Issuer::issue` (`BatchRows::Rows`), as the end-to-end tests do; and
/// `Issuer::issue_batch` from the CSV (`BatchRows::Csv`, as the CLI)
/// into a JSON Lines archive gives the same rows and holders, whether the
/// reader was scanned by another reader (every row checked again while
/// signing) or by itself (`CsvRows::scan`, checked once).
#[tokio::test(flavor = "multi_thread")]
async fn parsed_rows_and_a_streamed_csv_issue_the_same_batch() {
    use vouch_issuer::issuer::{self, BatchRows, Issuer, OutputFormat, OutputOptions, Quiet};
    let root = tempdir("rows");
    let template = vouch_issuer::template::find("transcript").unwrap();
    let csv = root.path().join("t.csv");
    transcripts(&csv, 600, None);
    let bytes = std::fs::read(&csv).unwrap();
    let mut manifests = Vec::new();
    for (name, streamed, own_scan) in [("a", false, false), ("b", true, false), ("c", true, true)] {
        let dir = root.path().join(name);
        issuer::init(&dir, "Uni", None, PASS, vouch_issuer::keystore::Cost::TEST).unwrap();
        let iss = Issuer::open(&dir, PASS).unwrap();
        let id = issuer::batch_id(&template, &bytes, false);
        let out = root.path().join(format!("out-{name}"));
        let report = if streamed {
            let rows = vouch_issuer::input::CsvRows::new(&bytes, &template).unwrap();
            let scan = if own_scan {
                rows.scan(&Quiet).unwrap()
            } else {
                vouch_issuer::input::scan(&bytes, &template, &Quiet).unwrap()
            };
            let options = OutputOptions {
                out: out.clone(),
                qr: false,
                format: OutputFormat::Jsonl,
            };
            let batch = BatchRows::Csv {
                csv: &rows,
                valid: &scan.valid,
            };
            iss.issue_batch(&template, &id, batch, &options, &Quiet)
                .await
                .unwrap()
        } else {
            let (rows, errors) = vouch_issuer::input::parse(&bytes, &template).unwrap();
            assert!(errors.is_empty());
            iss.issue(&template, &id, &rows, &out, false, &Quiet)
                .await
                .unwrap()
        };
        assert_eq!(report.issued, 600);
        assert_eq!(report.archive.is_some(), streamed);
        assert_eq!(issuer::check_manifest(&out, true).unwrap(), 600);
        manifests.push(manifest(&out));
    }
    let rows_and_holders = |m: &Value| -> Vec<(u64, String)> {
        m["credentials"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["row"].as_u64().unwrap(),
                    c["holder"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let a = rows_and_holders(&manifests[0]);
    assert_eq!(a, rows_and_holders(&manifests[1]));
    assert_eq!(a, rows_and_holders(&manifests[2]));
    assert_eq!(a[599], (600, holder(600)));
}

#[test]
fn a_jsonl_batch_is_one_file_that_checks_and_a_broken_one_does_not() {
    let root = tempdir("jsonl");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    transcripts(&csv, 6, Some(4));
    let out = root.path().join("out");
    let text = ok(&[
        "issue",
        "--dir",
        s(&dir),
        "--template",
        "transcript",
        "--input",
        s(&csv),
        "--out",
        s(&out),
        "--output-format",
        "jsonl",
        "--skip-invalid",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["issued"], 5);
    assert_eq!(report["skipped"], serde_json::json!([4]));
    let archive = out.join(vouch_issuer::archive::FILE_NAME);
    assert_eq!(report["archive"], s(&archive));
    // Only the archive and the manifest: no credential files, no temporary
    // files left behind.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["credentials.jsonl", "manifest.json"]);
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), 5);
    // Line n is manifest entry n, and each line holds what a holder needs:
    // the credential, which verifies, and its anchor proof.
    let m = manifest(&out);
    let lines: Vec<vouch_issuer::archive::ArchiveLine> = vouch_issuer::archive::read(&archive)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(lines.len(), 5);
    let root_hash = vouch_core::anchor::root_from_hex(m["batch_root"].as_str().unwrap()).unwrap();
    for (line, entry) in lines.iter().zip(m["credentials"].as_array().unwrap()) {
        assert_eq!(line.row, entry["row"].as_u64().unwrap());
        assert_eq!(line.file, entry["file"].as_str().unwrap());
        assert_eq!(line.credential_id, entry["credential_id"].as_str().unwrap());
        assert_eq!(line.holder, entry["holder"].as_str().unwrap());
        assert_eq!(line.holder, holder(line.row));
        verified(&line.sd_jwt);
        line.anchor_proof
            .verify(vouch_core::anchor::leaf(&line.sd_jwt).as_bytes(), root_hash)
            .unwrap();
    }
    assert_eq!(
        lines.iter().map(|l| l.row).collect::<Vec<_>>(),
        [1, 2, 3, 5, 6]
    );
    // An archive cut short, or with a line swapped, fails the check and
    // names the archive.
    let good = std::fs::read(&archive).unwrap();
    std::fs::write(&archive, &good[..good.len() - 10]).unwrap();
    let err = vouch_issuer::issuer::check_manifest(&out, true)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("{}: line 5: cut short", archive.display())),
        "{err}"
    );
    let text = String::from_utf8(good.clone()).unwrap();
    let mut swapped: Vec<&str> = text.lines().collect();
    swapped.swap(0, 1);
    std::fs::write(&archive, swapped.join("\n") + "\n").unwrap();
    let err = vouch_issuer::issuer::check_manifest(&out, true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("differs from its manifest entry"), "{err}");
    // A line more than the manifest lists (here the first, repeated).
    let mut longer = good.clone();
    longer.extend_from_slice(text.lines().next().unwrap().as_bytes());
    longer.push(b'\n');
    std::fs::write(&archive, &longer).unwrap();
    let err = vouch_issuer::issuer::check_manifest(&out, true)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("more lines than the manifest's 5 entries"),
        "{err}"
    );
    std::fs::write(&archive, &good).unwrap();
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_sees_the_revocation() {
    let root = tempdir("revoke");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    transcripts(&csv, 4, None);
    let out = root.path().join("out");
    ok(&[
        "issue",
        "--dir",
        s(&dir),
        "--template",
        "transcript",
        "--input",
        s(&csv),
        "--out",
        s(&out),
    ]);
    let m = manifest(&out);
    let creds = m["credentials"].as_array().unwrap().clone();
    let file = |i: usize| out.join(creds[i]["file"].as_str().unwrap());
    let idx = |i: usize| creds[i]["status"]["idx"].as_u64().unwrap();
    let uri = creds[0]["status"]["uri"].as_str().unwrap().to_owned();
    ok(&["revoke", "--dir", s(&dir), "--credential", s(&file(1))]);
    ok(&[
        "revoke",
        "--dir",
        s(&dir),
        "--status-index",
        &idx(2).to_string(),
        "--suspend",
    ]);
    let r = run(&[
        "revoke",
        "--dir",
        s(&dir),
        "--credential",
        s(&file(1)),
        "--reinstate",
    ]);
    assert!(String::from_utf8_lossy(&r.stderr).contains("revocation is final"));
    let r = run(&["revoke", "--dir", s(&dir), "--status-index", "3"]);
    assert!(!r.status.success());

    // Serve the embedded registry; a replica syncs and reads the statuses.
    let node = Arc::new(Node::open(&dir.join("registry")).unwrap());
    let server = testkit::serve_node(node.clone()).await.unwrap();
    let trust = Trust {
        node_vkey: node.vkey(),
        witnesses: vec![],
        need: 0,
    };
    let mut replica = Replica::open(&root.path().join("replica"), trust.policy().unwrap()).unwrap();
    replica.sync(&server.client()).await.unwrap();
    let issuer = m["issuer"].as_str().unwrap();
    assert!(
        replica
            .accredited(issuer, "transcript", vouch_registry::now())
            .unwrap()
            .value
    );
    assert_eq!(
        replica
            .status(issuer, &uri, idx(0), vouch_registry::now())
            .unwrap()
            .value,
        Some(0)
    );
    assert_eq!(
        replica
            .status(issuer, &uri, idx(1), vouch_registry::now())
            .unwrap()
            .value,
        Some(1)
    );
    assert_eq!(
        replica
            .status(issuer, &uri, idx(2), vouch_registry::now())
            .unwrap()
            .value,
        Some(2)
    );
    assert_eq!(
        replica
            .status(issuer, &uri, idx(3), vouch_registry::now())
            .unwrap()
            .value,
        Some(0)
    );
}

#[test]
fn kill_9_mid_batch_then_rerun_issues_each_row_once() {
    let root = tempdir("kill");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    let n = 1500;
    transcripts(&csv, n, None);
    let out = root.path().join("out");
    let args = [
        "issue",
        "--dir",
        s(&dir),
        "--template",
        "transcript",
        "--input",
        s(&csv),
        "--out",
        s(&out),
    ];
    let mut rng = rand::thread_rng();
    let mut finished = false;
    for _ in 0..4 {
        let mut child = cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(200..2500)));
        if child.try_wait().unwrap().is_some() {
            finished = true;
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let text = ok(&args);
    assert!(text.contains(&format!("issued {n} credentials")), "{text}");
    let m = manifest(&out);
    assert_eq!(m["count"], n);
    let files = std::fs::read_dir(&out)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sd-jwt")
        })
        .count();
    assert_eq!(files, n, "every row exactly once");
    let idx: std::collections::HashSet<u64> = m["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"]["idx"].as_u64().unwrap())
        .collect();
    assert_eq!(idx.len(), n, "status indexes are never handed out twice");
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), n);
    let node = Node::open(&dir.join("registry")).unwrap();
    let issuer = m["issuer"].as_str().unwrap();
    let (anchors, credentials) = node.with_state(|st| {
        let i = &st.issuers[issuer];
        (i.anchors, i.credentials)
    });
    assert_eq!(
        (anchors, credentials),
        (1, n as u64),
        "anchored exactly once (finished early: {finished})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_registry_must_accredit_first() {
    let root = tempdir("remote");
    let node_dir = root.path().join("node");
    let authority = testkit::init_node(&node_dir, vec![], 0).unwrap();
    let node = Arc::new(Node::open(&node_dir).unwrap());
    let server = testkit::serve_node(node.clone()).await.unwrap();
    let url = server.url().to_owned();

    let dir = root.path().join("hr");
    let text = ok(&[
        "init",
        "--dir",
        s(&dir),
        "--name",
        "ACME HR",
        "--registry",
        &url,
    ]);
    assert!(
        text.contains("vouch-registry accredit --registry"),
        "{text}"
    );
    let did = vouch_issuer::keystore::did_of(&dir.join("issuer.keystore")).unwrap();
    let out = root.path().join("out");
    let args: Vec<String> = [
        "issue",
        "--dir",
        s(&dir),
        "--template",
        "employment",
        "--input",
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/employment.csv"),
        "--out",
        s(&out),
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    let issue = move || {
        let args = args.clone();
        move || run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Blocking calls go to the blocking pool; the server keeps running.
    let r = tokio::task::spawn_blocking(issue()).await.unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("is not accredited for \"employment\""),
        "{err}"
    );

    let client = server.client();
    let accredit = vouch_core::chain::Entry::sign(
        &authority,
        1,
        vouch_registry::now(),
        vouch_core::chain::Action::Accredit {
            issuer: did.clone(),
            name: "ACME HR".into(),
            kinds: vec!["employment".into()],
        },
    );
    client.submit(accredit.as_bytes()).await.unwrap();
    let r = tokio::task::spawn_blocking(issue()).await.unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let m = manifest(&out);
    assert_eq!(m["count"], 3);
    assert!(m["credentials"][0]["status"]["uri"]
        .as_str()
        .unwrap()
        .starts_with(&format!("{url}/v1/status/")));
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), 3);
    // The status list is served where credentials point.
    let uri = m["credentials"][0]["status"]["uri"].as_str().unwrap();
    let token = reqwest::get(uri).await.unwrap().text().await.unwrap();
    assert!(token.starts_with("ey"), "{token}");
}

#[test]
fn a_stale_saved_anchor_is_signed_again_on_resume() {
    let root = tempdir("stale");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    transcripts(&csv, 3, None);
    let out = root.path().join("out");
    let args = [
        "issue",
        "--dir",
        s(&dir),
        "--template",
        "transcript",
        "--input",
        s(&csv),
        "--out",
        s(&out),
    ];
    // Die right after the anchor entry is saved, before it is submitted.
    killed_at(&args, "after-signed");
    assert!(!out.join("manifest.json").exists());
    // A revocation takes the saved entry's sequence number meanwhile.
    let lists = {
        let iss = vouch_issuer::issuer::Issuer::open(&dir, PASS).unwrap();
        iss.lists().unwrap()
    };
    let archive = std::fs::read_dir(dir.join("batches"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let first = std::fs::read_to_string(&archive)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let (uri, idx) = vouch_issuer::issuer::status_of_credential(
        &first,
        &vouch_issuer::keystore::did_of(&dir.join("issuer.keystore")).unwrap(),
    )
    .unwrap();
    assert_eq!(lists, vec![uri.clone()]);
    ok(&[
        "revoke",
        "--dir",
        s(&dir),
        "--status-index",
        &idx.to_string(),
    ]);
    // The rerun signs the anchor again and finishes.
    let text = ok(&args);
    assert!(text.contains("resumed interrupted batch"), "{text}");
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), 3);
    let node = Node::open(&dir.join("registry")).unwrap();
    let m = manifest(&out);
    let issuer = m["issuer"].as_str().unwrap();
    assert_eq!(node.with_state(|st| st.issuers[issuer].anchors), 1);
    assert_eq!(
        node.with_state(|st| st.status_of(issuer, &uri, idx, vouch_registry::now())),
        Ok(Some(1))
    );
}

#[test]
fn revoke_refuses_a_credential_file_with_an_edited_index() {
    let root = tempdir("forged");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    transcripts(&csv, 2, None);
    let out = root.path().join("out");
    ok(&[
        "issue",
        "--dir",
        s(&dir),
        "--template",
        "transcript",
        "--input",
        s(&csv),
        "--out",
        s(&out),
    ]);
    let m = manifest(&out);
    let creds = m["credentials"].as_array().unwrap().clone();
    let issuer = m["issuer"].as_str().unwrap().to_owned();
    let uri = creds[0]["status"]["uri"].as_str().unwrap().to_owned();
    let (mine, victim) = (
        creds[0]["status"]["idx"].as_u64().unwrap(),
        creds[1]["status"]["idx"].as_u64().unwrap(),
    );
    // A copy of credential 0 whose status index now names credential 1.
    let text = std::fs::read_to_string(out.join(creds[0]["file"].as_str().unwrap())).unwrap();
    let (jwt, rest) = text.split_once('~').unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let payload = String::from_utf8(vouch_core::b64::decode(parts[1]).unwrap()).unwrap();
    let edited = payload.replace(&format!("\"idx\":{mine}"), &format!("\"idx\":{victim}"));
    assert_ne!(edited, payload);
    let forged = format!(
        "{}.{}.{}~{rest}",
        parts[0],
        vouch_core::b64::encode(edited.as_bytes()),
        parts[2]
    );
    let file = root.path().join("forged.sd-jwt");
    std::fs::write(&file, forged).unwrap();
    let size = Node::open(&dir.join("registry")).unwrap().size();

    let r = run(&["revoke", "--dir", s(&dir), "--credential", s(&file)]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("signature does not verify under this issuer's key"),
        "{err}"
    );
    let node = Node::open(&dir.join("registry")).unwrap();
    assert_eq!(node.size(), size, "nothing reached the chain");
    for idx in [mine, victim] {
        assert_eq!(
            node.with_state(|st| st.status_of(&issuer, &uri, idx, vouch_registry::now())),
            Ok(Some(0))
        );
    }
    drop(node);
    // Nothing was saved locally either: the real file still revokes its own
    // index, and the victim's stays valid.
    ok(&[
        "revoke",
        "--dir",
        s(&dir),
        "--credential",
        s(&out.join(creds[0]["file"].as_str().unwrap())),
    ]);
    let node = Node::open(&dir.join("registry")).unwrap();
    let read = |idx| node.with_state(|st| st.status_of(&issuer, &uri, idx, vouch_registry::now()));
    assert_eq!((read(mine), read(victim)), (Ok(Some(1)), Ok(Some(0))));
}

#[test]
fn an_edited_keystore_cost_is_refused_before_deriving() {
    let root = tempdir("cost");
    let dir = init(root.path());
    let path = dir.join("issuer.keystore");
    let text = std::fs::read_to_string(&path).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    for (field, value, bounds) in [
        ("t", u64::from(u32::MAX), "1..=10"),
        ("m_kib", u64::from(u32::MAX), "256..=1048576"),
        ("p", 0, "1..=8"),
    ] {
        let mut edited = file.clone();
        edited["cost"][field] = value.into();
        std::fs::write(&path, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
        let r = run(&["revoke", "--dir", s(&dir), "--status-index", "1"]);
        assert!(!r.status.success());
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.contains(&format!(
                "keystore cost {field} = {value} is outside {bounds}"
            )),
            "{err}"
        );
        assert!(matches!(
            vouch_issuer::keystore::open(&path, PASS),
            Err(vouch_issuer::keystore::KeystoreError::Cost { field: f, .. }) if f == field
        ));
    }
    // The unedited file still opens.
    std::fs::write(&path, &text).unwrap();
    vouch_issuer::keystore::open(&path, PASS).unwrap();
}

/// The names in `out`, sorted.
fn names(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The one pending JSON Lines file in `out`, named by its batch.
fn pending_file(out: &Path) -> PathBuf {
    let pending: Vec<String> = names(out)
        .into_iter()
        .filter(|n| n.starts_with(".credentials.") && n.ends_with(".jsonl.tmp"))
        .collect();
    assert_eq!(pending.len(), 1, "{pending:?}");
    out.join(&pending[0])
}

/// The `issue` arguments of `csv` into `out` as `format`.
fn issue_args(dir: &Path, csv: &Path, out: &Path, format: &str) -> Vec<String> {
    [
        "issue",
        "--dir",
        s(dir),
        "--template",
        "transcript",
        "--input",
        s(csv),
        "--out",
        s(out),
        "--output-format",
        format,
    ]
    .map(str::to_owned)
    .to_vec()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Batch A (JSON Lines) stopped after signing, then batch B issued into
/// the same output directory, as JSON Lines or as files: B is refused and
/// changes nothing there (A's pending lines stay byte for byte); B issued
/// into a directory of its own and A resumed both complete and check, and
/// neither loses a line. A third batch into A's finished directory is
/// refused too, leaving A's manifest and archive as they were.
#[test]
fn a_new_batch_into_another_batchs_out_is_refused_and_changes_nothing() {
    for b_format in ["jsonl", "files"] {
        let root = tempdir("two-batches");
        let dir = init(root.path());
        let (a_csv, b_csv) = (root.path().join("a.csv"), root.path().join("b.csv"));
        let (a_n, b_n) = (20, 25);
        transcripts(&a_csv, a_n, None);
        transcripts(&b_csv, b_n, None);
        let out = root.path().join("out");
        let a = issue_args(&dir, &a_csv, &out, "jsonl");
        killed_at(&strs(&a), "after-signed");
        let a_pending = pending_file(&out);
        let a_text = std::fs::read(&a_pending).unwrap();
        let before = names(&out);

        let r = run(&strs(&issue_args(&dir, &b_csv, &out, b_format)));
        assert!(!r.status.success(), "{b_format}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.contains("already holds another batch's pending lines"),
            "{err}"
        );
        assert_eq!(std::fs::read(&a_pending).unwrap(), a_text, "{b_format}");
        assert_eq!(names(&out), before, "{b_format}");

        let b_out = root.path().join("out-b");
        ok(&strs(&issue_args(&dir, &b_csv, &b_out, b_format)));
        assert_eq!(
            vouch_issuer::issuer::check_manifest(&b_out, true).unwrap(),
            b_n,
            "{b_format}"
        );

        let text = ok(&strs(&a));
        assert!(text.contains("resumed interrupted batch"), "{text}");
        assert_eq!(
            vouch_issuer::issuer::check_manifest(&out, true).unwrap(),
            a_n,
            "{b_format}"
        );
        let lines = vouch_issuer::archive::read(&out.join("credentials.jsonl")).unwrap();
        assert_eq!(lines.map(Result::unwrap).count(), a_n);
        let left = names(&out);
        assert!(left.iter().all(|n| !n.starts_with('.')), "{left:?}");

        // Into A's finished directory: refused, A's output unchanged.
        let a_manifest = std::fs::read(out.join("manifest.json")).unwrap();
        let a_archive = std::fs::read(out.join("credentials.jsonl")).unwrap();
        let c_csv = root.path().join("c.csv");
        transcripts(&c_csv, 5, None);
        let r = run(&strs(&issue_args(&dir, &c_csv, &out, b_format)));
        assert!(!r.status.success(), "{b_format}");
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(
            err.contains("already holds another batch's manifest.json"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(out.join("manifest.json")).unwrap(),
            a_manifest
        );
        assert_eq!(
            std::fs::read(out.join("credentials.jsonl")).unwrap(),
            a_archive
        );
        assert_eq!(names(&out), left, "{b_format}");
    }
}

/// Batch A stopped once its archive is at its name, then batch B's
/// archive and manifest put in their place (B issued elsewhere and copied
/// over, as a new batch into A's directory is refused):
/// rerun, A finds B's archive, not its own, and refuses, leaving B's at
/// its name, whole.
#[test]
fn a_resumed_batch_leaves_another_batchs_archive_in_place() {
    let root = tempdir("other-archive");
    let dir = init(root.path());
    let (a_csv, b_csv) = (root.path().join("a.csv"), root.path().join("b.csv"));
    transcripts(&a_csv, 20, None);
    transcripts(&b_csv, 25, None);
    let out = root.path().join("out");
    let a = issue_args(&dir, &a_csv, &out, "jsonl");
    killed_at(&strs(&a), "after-output");
    let b_out = root.path().join("out-b");
    ok(&strs(&issue_args(&dir, &b_csv, &b_out, "jsonl")));
    for name in ["credentials.jsonl", "manifest.json"] {
        std::fs::copy(b_out.join(name), out.join(name)).unwrap();
    }
    let b_archive = std::fs::read(out.join("credentials.jsonl")).unwrap();

    let r = run(&strs(&a));
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("credentials.jsonl"), "{err}");
    assert_eq!(
        std::fs::read(out.join("credentials.jsonl")).unwrap(),
        b_archive
    );
    assert_eq!(
        vouch_issuer::issuer::check_manifest(&out, true).unwrap(),
        25
    );
    let left = names(&out);
    assert!(
        !left.iter().any(|n| n.starts_with(".credentials.")),
        "{left:?}"
    );
}

/// A pending file whose first slot holds half an anchor proof (a crash
/// while the proofs were written into their slots) resumes: the slot is
/// written whole again and the archive checks.
#[test]
fn a_torn_slot_is_written_again_on_resume() {
    let root = tempdir("torn-slot");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    let n = 12;
    transcripts(&csv, n, None);
    let out = root.path().join("out");
    let args = issue_args(&dir, &csv, &out, "jsonl");
    killed_at(&strs(&args), "after-signed");
    let pending = pending_file(&out);
    let mut text = std::fs::read_to_string(&pending).unwrap();
    let member = "\"anchor_proof\":";
    let slot = text.find(member).unwrap() + member.len();
    let half = r#"{"entry_index":1,"leaf_index":0,"batch_si"#;
    text.replace_range(slot..slot + half.len(), half);
    std::fs::write(&pending, &text).unwrap();

    let text = ok(&strs(&args));
    assert!(text.contains("resumed interrupted batch"), "{text}");
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), n);
    assert_eq!(names(&out), ["credentials.jsonl", "manifest.json"]);
}

/// A batch signed by an earlier version, its pending lines under the one
/// name all batches shared, resumes from there.
#[test]
fn a_pending_file_under_the_earlier_name_resumes() {
    let root = tempdir("legacy-name");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    let n = 8;
    transcripts(&csv, n, None);
    let out = root.path().join("out");
    let args = issue_args(&dir, &csv, &out, "jsonl");
    killed_at(&strs(&args), "after-signed");
    std::fs::rename(pending_file(&out), out.join(".credentials.jsonl.tmp")).unwrap();
    let text = ok(&strs(&args));
    assert!(text.contains("resumed interrupted batch"), "{text}");
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), n);
    assert_eq!(names(&out), ["credentials.jsonl", "manifest.json"]);
}

/// A batch signed for files and finished as JSON Lines writes its archive
/// under a name of its own: the pending lines another batch left under the
/// earlier shared name stay as they were.
#[test]
fn a_batch_signed_for_files_finished_as_jsonl_leaves_others_pending() {
    let root = tempdir("files-then-jsonl");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    let n = 8;
    transcripts(&csv, n, None);
    let out = root.path().join("out");
    killed_at(
        &strs(&issue_args(&dir, &csv, &out, "files")),
        "after-signed",
    );
    let other = out.join(".credentials.jsonl.tmp");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(&other, "another batch's pending lines\n").unwrap();
    let text = ok(&strs(&issue_args(&dir, &csv, &out, "jsonl")));
    assert!(text.contains("resumed interrupted batch"), "{text}");
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), n);
    assert_eq!(
        std::fs::read_to_string(&other).unwrap(),
        "another batch's pending lines\n"
    );
    assert_eq!(
        names(&out),
        [
            ".credentials.jsonl.tmp",
            "credentials.jsonl",
            "manifest.json"
        ]
    );
}

/// A pending file whose first two credentials were swapped (each line's
/// id and file name made to match) no longer has the anchored root: the
/// resume refuses, naming that pending file.
#[test]
fn a_pending_file_with_another_root_is_named() {
    let root = tempdir("other-root");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    transcripts(&csv, 6, None);
    let out = root.path().join("out");
    let args = issue_args(&dir, &csv, &out, "jsonl");
    killed_at(&strs(&args), "after-signed");
    let pending = pending_file(&out);
    let text = std::fs::read_to_string(&pending).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let cred = |line: &str| {
        let v: Value = serde_json::from_str(line).unwrap();
        (
            v["sd_jwt"].as_str().unwrap().to_owned(),
            v["credential_id"].as_str().unwrap().to_owned(),
        )
    };
    let ((c0, id0), (c1, id1)) = (cred(&lines[0]), cred(&lines[1]));
    lines[0] = lines[0].replace(&c0, &c1).replace(&id0, &id1);
    lines[1] = lines[1].replace(&c1, &c0).replace(&id1, &id0);
    std::fs::write(&pending, lines.join("\n") + "\n").unwrap();

    let r = run(&strs(&args));
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    let name = pending.file_name().unwrap().to_str().unwrap();
    assert!(
        err.contains(name) && err.contains("does not match"),
        "{err}"
    );
}

/// A JSON Lines batch stopped right after its anchor entry is saved, or
/// right after its archive is in place (before the manifest), finishes on
/// rerun, as JSON Lines or as files, each row once and anchored once; until
/// its proofs are in, the archive is only at its pending name.
#[test]
fn a_jsonl_batch_stopped_after_signing_or_writing_resumes() {
    for (point, finish) in [
        ("after-signed", "jsonl"),
        ("after-output", "jsonl"),
        ("after-signed", "files"),
    ] {
        let root = tempdir("jsonl-stop");
        let dir = init(root.path());
        let csv = root.path().join("t.csv");
        let n = 30;
        transcripts(&csv, n, None);
        let out = root.path().join("out");
        let args = |format: &str| {
            [
                "issue",
                "--dir",
                s(&dir),
                "--template",
                "transcript",
                "--input",
                s(&csv),
                "--out",
                s(&out),
                "--output-format",
                format,
            ]
            .map(str::to_owned)
        };
        let first = args("jsonl");
        killed_at(&first.each_ref().map(String::as_str), point);
        if point == "after-signed" {
            // Signed and synced, not anchored: only the pending lines,
            // each with its slot still blank.
            let pending = pending_file(&out);
            assert_eq!(
                names(&out),
                [pending.file_name().unwrap().to_str().unwrap()]
            );
            let text = std::fs::read_to_string(&pending).unwrap();
            assert_eq!(text.lines().count(), n);
            assert!(text.lines().all(|l| l.contains("\"anchor_proof\":null ")));
        } else {
            // The archive is complete at its name; the manifest is not yet
            // at its own.
            assert_eq!(names(&out), [".manifest.json.tmp", "credentials.jsonl"]);
            let lines = vouch_issuer::archive::read(&out.join("credentials.jsonl")).unwrap();
            assert_eq!(lines.map(Result::unwrap).count(), n);
        }
        let rerun = args(finish);
        let text = ok(&rerun.each_ref().map(String::as_str));
        assert!(
            text.contains("resumed interrupted batch"),
            "{point}: {text}"
        );
        assert_eq!(
            vouch_issuer::issuer::check_manifest(&out, true).unwrap(),
            n,
            "{point} {finish}"
        );
        let left = names(&out);
        if finish == "jsonl" {
            assert_eq!(left, ["credentials.jsonl", "manifest.json"], "{point}");
        } else {
            assert_eq!(left.len(), n + 1, "{left:?}");
            assert!(left.iter().all(|l| !l.starts_with('.')), "{left:?}");
        }
        let node = Node::open(&dir.join("registry")).unwrap();
        let m = manifest(&out);
        let issuer = m["issuer"].as_str().unwrap();
        assert_eq!(
            node.with_state(|st| (st.issuers[issuer].anchors, st.issuers[issuer].credentials)),
            (1, n as u64),
            "{point} {finish}"
        );
    }
}

/// A JSON Lines batch killed at random points, then rerun: each row once
/// in the archive, every line checks, anchored once; and whenever the
/// archive is at its name between kills, it is whole.
#[test]
fn kill_9_mid_jsonl_batch_then_rerun_issues_each_row_once() {
    let root = tempdir("kill-jsonl");
    let dir = init(root.path());
    let csv = root.path().join("t.csv");
    let n = 1500;
    transcripts(&csv, n, None);
    let out = root.path().join("out");
    let args = [
        "issue",
        "--dir",
        s(&dir),
        "--template",
        "transcript",
        "--input",
        s(&csv),
        "--out",
        s(&out),
        "--output-format",
        "jsonl",
    ];
    let archive = out.join(vouch_issuer::archive::FILE_NAME);
    let mut rng = rand::thread_rng();
    let mut finished = false;
    for _ in 0..4 {
        let mut child = cmd(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(200..2500)));
        if child.try_wait().unwrap().is_some() {
            finished = true;
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        if archive.exists() {
            let lines = vouch_issuer::archive::read(&archive).unwrap();
            assert_eq!(lines.map(Result::unwrap).count(), n, "whole at its name");
        }
    }
    let text = ok(&args);
    assert!(text.contains(&format!("issued {n} credentials")), "{text}");
    assert_eq!(names(&out), ["credentials.jsonl", "manifest.json"]);
    let m = manifest(&out);
    assert_eq!(m["count"], n);
    let lines: Vec<vouch_issuer::archive::ArchiveLine> = vouch_issuer::archive::read(&archive)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let rows: std::collections::HashSet<u64> = lines.iter().map(|l| l.row).collect();
    assert_eq!((lines.len(), rows.len()), (n, n), "every row exactly once");
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), n);
    let node = Node::open(&dir.join("registry")).unwrap();
    let issuer = m["issuer"].as_str().unwrap();
    let (anchors, credentials) = node.with_state(|st| {
        let i = &st.issuers[issuer];
        (i.anchors, i.credentials)
    });
    assert_eq!(
        (anchors, credentials),
        (1, n as u64),
        "anchored exactly once (finished early: {finished})"
    );
}

/// A JSON Lines batch whose input changed between its check and its
/// signing (rows read from another CSV than the one scanned) stops at the
/// changed row and leaves nothing behind: no output directory, no pending
/// file; the batch then issues from the right input.
#[tokio::test(flavor = "multi_thread")]
async fn a_jsonl_batch_whose_input_changed_leaves_nothing() {
    use vouch_issuer::issuer::{self, BatchRows, Issuer, OutputFormat, OutputOptions, Quiet};
    let root = tempdir("changed");
    let template = vouch_issuer::template::find("transcript").unwrap();
    let (good, bad) = (root.path().join("good.csv"), root.path().join("bad.csv"));
    transcripts(&good, 300, None);
    transcripts(&bad, 300, Some(290));
    let (good, bad) = (std::fs::read(&good).unwrap(), std::fs::read(&bad).unwrap());
    let dir = root.path().join("uni");
    issuer::init(&dir, "Uni", None, PASS, vouch_issuer::keystore::Cost::TEST).unwrap();
    let iss = Issuer::open(&dir, PASS).unwrap();
    let id = issuer::batch_id(&template, &good, false);
    let out = root.path().join("out");
    let options = OutputOptions {
        out: out.clone(),
        qr: false,
        format: OutputFormat::Jsonl,
    };
    let scan = vouch_issuer::input::scan(&good, &template, &Quiet).unwrap();
    let changed = vouch_issuer::input::CsvRows::new(&bad, &template).unwrap();
    let batch = BatchRows::Csv {
        csv: &changed,
        valid: &scan.valid,
    };
    let e = iss
        .issue_batch(&template, &id, batch, &options, &Quiet)
        .await
        .unwrap_err();
    assert!(
        matches!(e, issuer::IssuerError::InputChanged { row: 290, .. }),
        "{e}"
    );
    assert!(!out.exists());
    // Not signed: no anchor entry was made, nothing reached the chain.
    let journal = iss.batch(&id).unwrap().unwrap();
    assert_eq!(journal.stage, issuer::Stage::Allocated);
    assert!(journal.anchor_entry.is_none());

    let rows = vouch_issuer::input::CsvRows::new(&good, &template).unwrap();
    let batch = BatchRows::Csv {
        csv: &rows,
        valid: &scan.valid,
    };
    let report = iss
        .issue_batch(&template, &id, batch, &options, &Quiet)
        .await
        .unwrap();
    assert!(report.resumed);
    assert_eq!(issuer::check_manifest(&out, true).unwrap(), 300);
    assert_eq!(names(&out), ["credentials.jsonl", "manifest.json"]);
}

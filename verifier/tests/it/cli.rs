//! The `vouch-verifier` binary: --help, init, request, verify with every
//! exit code (0 valid, 1 not valid, 2 could not check).

use std::path::Path;
use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;
use vouch_core::envelope;
use vouch_core::presentation_request::PresentationRequest;

use crate::common::{Fixture, TempDir, AUD};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn run(args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_vouch-verifier"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).await.unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_for_every_command() {
    let top = run(&["--help"], None).await;
    assert_eq!(top.code, 0);
    for cmd in ["init", "request", "verify"] {
        assert!(top.stdout.contains(cmd), "{}", top.stdout);
        let help = run(&[cmd, "--help"], None).await;
        assert_eq!(help.code, 0, "{cmd}: {}", help.stderr);
        assert!(help.stdout.contains("--dir"), "{cmd}: {}", help.stdout);
    }
    assert!(top.stdout.contains("exits 0"), "{}", top.stdout);
    // No input given: a usage error, exit 2.
    let none = run(&["verify", "--dir", "/nonexistent"], None).await;
    assert_eq!(none.code, 2);
}

/// Asks the verifier in `dir` for a request through the CLI.
async fn request(dir: &Path, qr: Option<&Path>) -> PresentationRequest {
    let mut args = vec!["request", "--dir", s(dir)];
    if let Some(qr) = qr {
        args.extend(["--qr", s(qr)]);
    }
    let out = run(&args, None).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    PresentationRequest::parse(out.stdout.trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_request_verify_with_exit_codes() {
    let f = Fixture::new("cli").await;
    let dir = f.root.path().join("hr");

    // init needs a node key, or trust on first use.
    let out = run(&["init", "--dir", s(&dir), "--registry", &f.url], None).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--node-key"), "{}", out.stderr);
    let out = run(
        &[
            "init",
            "--dir",
            s(&dir),
            "--registry",
            &f.url,
            "--node-key",
            &f.node_vkey,
            "--aud",
            AUD,
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("synced to block"), "{}", out.stdout);

    // A nonce may start with '-' (base64url): --nonce still takes it.
    let out = run(
        &[
            "verify",
            "--dir",
            s(&dir),
            "--nonce",
            "-AAAAAAAAAAAAAAAAAAAAAAA",
            "-",
        ],
        Some("garbage"),
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("not a presentation"), "{}", out.stderr);

    // A request, also as a QR code that decodes to the same text.
    let png = f.root.path().join("request.png");
    let r = request(&dir, Some(&png)).await;
    assert_eq!(r.aud(), AUD);
    let scanned = vouch_verifier::qr::decode(&std::fs::read(&png).unwrap()).unwrap();
    assert_eq!(PresentationRequest::parse(&scanned).unwrap(), r);

    // Valid from a file: exit 0, the verdict readable.
    let file = f.root.path().join("p.txt");
    std::fs::write(&file, f.present(0, r.aud(), r.nonce())).unwrap();
    let args = [
        "verify",
        "--dir",
        s(&dir),
        "--input",
        s(&file),
        "--nonce",
        r.nonce(),
    ];
    let out = run(&args, None).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("VALID\n"), "{}", out.stdout);
    assert!(
        out.stdout.contains("University of Example"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Checked against chain block"),
        "{}",
        out.stdout
    );
    // Replayed: exit 1, the reason in one sentence.
    let out = run(&args, None).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with("NOT VALID\nReason: nonce: replayed"),
        "{}",
        out.stdout
    );

    // A QR image, syncing first.
    let r = request(&dir, None).await;
    let text = envelope::encode(&f.present(0, r.aud(), r.nonce())).unwrap();
    let code = vouch_core::qr::qr_code(&text, vouch_core::qr::EcLevel::M).unwrap();
    let img = f.root.path().join("p.png");
    std::fs::write(&img, vouch_core::qr::png(&code, 3, 4).unwrap()).unwrap();
    let out = run(
        &[
            "verify",
            "--dir",
            s(&dir),
            "--registry",
            &f.url,
            "--qr",
            s(&img),
            "--nonce",
            r.nonce(),
        ],
        None,
    )
    .await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);

    // Standard input, JSON out; the revoked credential: exit 1.
    let r = request(&dir, None).await;
    let out = run(
        &[
            "verify",
            "--dir",
            s(&dir),
            "-",
            "--nonce",
            r.nonce(),
            "--json",
        ],
        Some(&f.present(1, r.aud(), r.nonce())),
    )
    .await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json["headline"], "revoked");

    // Could not check: exit 2, one line on stderr.
    std::fs::write(&file, "garbage that is no presentation").unwrap();
    let out = run(&["verify", "--dir", s(&dir), "--input", s(&file)], None).await;
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .starts_with("error: the input is not a presentation"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    let out = run(&["verify", "--dir", s(&dir), "--qr", s(&file)], None).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    let empty = TempDir::new("cli-empty");
    let out = run(&["verify", "--dir", s(empty.path()), "-"], Some("VCH1:ABC")).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("vouch-verifier init"), "{}", out.stderr);
    // A policy file with a typo.
    let policy = f.root.path().join("policy.toml");
    std::fs::write(&policy, "max_replica_agee = 5\n").unwrap();
    let out = run(
        &["verify", "--dir", s(&dir), "--policy", s(&policy), "-"],
        Some("VCH1:ABC"),
    )
    .await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("max_replica_agee"), "{}", out.stderr);
}

/// `verify` on standard input, no --nonce.
async fn verify_stdin(dir: &Path, text: &str) -> Run {
    run(&["verify", "--dir", s(dir), "-"], Some(text)).await
}

/// A request this verifier issued needs no --nonce: `verify` finds the
/// presentation's nonce in the nonce book, accepts it once, and refuses
/// it replayed, expired or never issued here, each with its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_the_nonce_of_its_own_request() {
    let f = Fixture::new("cli-nonce").await;
    let v = f.verifier("hr").await;
    let dir = v.dir().to_owned();
    // A request that expired unanswered.
    let ttl = i64::try_from(v.policy_file().request_ttl).unwrap();
    let old = v
        .request(Vec::new(), vouch_verifier::now() - ttl - 5)
        .unwrap();
    drop(v);

    let r = request(&dir, None).await;
    let text = f.present(0, r.aud(), r.nonce());
    let out = verify_stdin(&dir, &text).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.starts_with("VALID\n"), "{}", out.stdout);
    let out = verify_stdin(&dir, &text).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with("NOT VALID\nReason: nonce: replayed"),
        "{}",
        out.stdout
    );

    let out = verify_stdin(&dir, &f.present(0, old.aud(), old.nonce())).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("NOT VALID\nReason: nonce: the request expired"),
        "{}",
        out.stdout
    );

    let out = verify_stdin(&dir, &f.present(0, AUD, "never-issued-here-0123456789")).await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.starts_with(
            "NOT VALID\nReason: nonce: nonce never-issued-here-0123456789 was not issued"
        ),
        "{}",
        out.stdout
    );
}

/// Waits for the URL a server writes to `path` (`--addr-file`).
async fn addr_file(path: &Path) -> String {
    for _ in 0..400 {
        if let Ok(url) = std::fs::read_to_string(path) {
            return url;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{} was not written", path.display());
}

/// While `vouch-verifier serve` runs on a directory, the CLI there (and a
/// second service) fails at once with one line naming the service and
/// what to do; once the service is gone, even killed, the CLI works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_names_a_service_running_on_its_directory() {
    let f = Fixture::new("cli-served").await;
    let v = f.verifier("hr").await;
    let dir = v.dir().to_owned();
    drop(v);
    let url_file = f.root.path().join("hr.url");
    let mut service = tokio::process::Command::new(env!("CARGO_BIN_EXE_vouch-verifier"))
        .args(["serve", "--dir", s(&dir), "--listen", "127.0.0.1:0"])
        .args(["--addr-file", s(&url_file)])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = addr_file(&url_file).await;

    let busy = format!("in use by a running `vouch-verifier serve` at {url}");
    let serve_again = ["serve", "--dir", s(&dir), "--listen", "127.0.0.1:0"];
    for args in [
        &["verify", "--dir", s(&dir), "-"][..],
        &["request", "--dir", s(&dir)][..],
        &serve_again[..],
    ] {
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            run(args, Some("VCH1:ABC")),
        )
        .await
        .unwrap();
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(&busy), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains(&format!("POST {url}/api/verify")),
            "{args:?}: {}",
            out.stderr
        );
    }

    // Killed, not stopped: its lock went with it.
    service.kill().await.unwrap();
    let r = request(&dir, None).await;
    let out = verify_stdin(&dir, &f.present(0, r.aud(), r.nonce())).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
}

/// An expired credential (its validity ended when it was issued; the
/// policy tolerates no clock skew): NOT VALID, exit 1, the reason saying
/// so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_credential_is_not_valid() {
    let f = Fixture::new("cli-expired").await;
    let v = f.verifier("hr").await;
    let dir = v.dir().to_owned();
    drop(v);
    let policy = f.root.path().join("no-skew.toml");
    std::fs::write(&policy, "leeway = 0\n").unwrap();
    let r = request(&dir, None).await;
    let text = f.present_credential(&f.expired, 0, r.aud(), r.nonce());
    let out = run(
        &["verify", "--dir", s(&dir), "--policy", s(&policy), "-"],
        Some(&text),
    )
    .await;
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .starts_with("NOT VALID\nReason: validity period: expired at"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("FAIL  validity period: expired at"),
        "{}",
        out.stdout
    );
}

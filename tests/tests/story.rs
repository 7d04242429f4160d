//! The demo's story with the real programs as separate processes, in
//! smaller batches: a registry node with two witnesses, three accredited
//! issuers, a wallet, HR's verifier desk and the verifier web service; the
//! three templates issued, imported, presented and verified.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use vouch_e2e::{wait_until, Running};

#[test]
fn the_demo_story_end_to_end() {
    let tmp = tempdir("story");
    let root = tmp.path();
    let b = bins();
    let mut net = Network::start(root, &["witness-1", "witness-2"], true);

    // Three issuers, each accredited for its own kind.
    let uni = root.join("university");
    let acme = root.join("acme");
    let northwind = root.join("northwind");
    net.issuer(&uni, "State University", "transcript");
    net.issuer(&acme, "Acme Corp", "employment");
    net.issuer(&northwind, "Northwind Insurance", "insurance-policy");

    // The graduate's wallet hands out a DID; others get theirs.
    let wallet_dir = root.join("wallet");
    let graduate = wallet(&wallet_dir, 1).remove(0);
    assert!(graduate.starts_with("did:key:z6Mk"), "{graduate}");
    let mut holders = vec![graduate.clone()];
    holders.extend((1..20).map(holder));

    // Batches: 20 transcripts, 5 employment records, 5 policies.
    let mut files = Vec::new();
    for (dir, template, n) in [
        (&uni, "transcript", 20),
        (&acme, "employment", 5),
        (&northwind, "insurance-policy", 5),
    ] {
        let input = root.join(format!("{template}.csv"));
        csv(&input, template, &holders[..n]);
        let out = root.join("credentials").join(template);
        let report = issue(dir, template, &input, &out);
        assert!(
            report.contains(&format!("issued {n} credentials")),
            "{report}"
        );
        assert_eq!(manifest(&out)["count"], n);
        files.push(credential(&out, 1));
    }
    // An issuer cannot issue a kind it is not accredited for.
    let refused = run(
        &b.issuer,
        &[
            "issue",
            "--dir",
            s(&acme),
            "--template",
            "transcript",
            "--input",
            s(&root.join("transcript.csv")),
            "--out",
            s(&root.join("not-issued")),
        ],
    );
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("is not accredited for \"transcript\""),
        "{}",
        text(&refused)
    );
    assert!(!root.join("not-issued").join("manifest.json").exists());

    // The graduate imports theirs, with the anchor proofs.
    let ids: Vec<String> = files.iter().map(|f| import(&wallet_dir, f)).collect();
    let list = ok(&b.wallet, &["list", "--dir", s(&wallet_dir)]);
    for (id, title) in ids
        .iter()
        .zip(["State University", "Acme Corp", "Northwind Insurance"])
    {
        assert!(list.contains(id.as_str()) && list.contains(title), "{list}");
    }
    let transcript = &ids[0];

    // The verifier web service and HR's desk, both needing 2 of 2
    // witnesses on a block that covers everything issued.
    net.wait_sealed();
    let web_dir = root.join("verifier-web");
    let desk = root.join("verifier");
    net.verifier(&web_dir, "https://admissions.example", "");
    net.verifier(&desk, "https://hr.acme.example", "");
    let web_port = vouch_registry::testkit::free_port().unwrap();
    let web_addr = format!("127.0.0.1:{web_port}");
    let _web = Running::spawn(
        "verifier web service",
        cmd(
            &b.verifier,
            &[
                "serve",
                "--dir",
                s(&web_dir),
                "--listen",
                &web_addr,
                "--sync-interval",
                "1",
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null()),
    )
    .unwrap();
    let health = wait_until(Duration::from_secs(30), || {
        std::net::TcpStream::connect(&web_addr).ok()?;
        Some(http_get(&web_addr, "/api/health"))
    })
    .expect("the verifier service answers");
    assert!(health.0.contains("200"), "{health:?}");
    let health: serde_json::Value = serde_json::from_str(&health.1).unwrap();
    assert!(
        health["replica"]["height"].as_u64().unwrap() >= 1,
        "{health}"
    );
    let page = http_get(&web_addr, "/");
    assert!(
        page.0.contains("200") && page.1.contains("<html"),
        "{page:?}"
    );

    // HR asks for courses; the graduate shares 3 of 12, bound to it.
    let (req, nonce) = request(&desk, "/courses");
    assert!(req.starts_with("VCHR1:"), "{req}");
    let shared = root.join("share.txt");
    present_text(
        &wallet_dir,
        transcript,
        &req,
        "courses[CS101],courses[CS201],courses[CS302]",
        &shared,
    );
    let input = ["--input", s(&shared), "--nonce", &nonce];
    let (code, report) = verify(&desk, &input);
    assert_eq!(code, 0, "{report}");
    assert!(report.starts_with("VALID"), "{report}");
    assert!(
        report.contains("Issuer: State University (accredited"),
        "{report}"
    );
    for shown in ["CS101", "CS201", "CS302"] {
        assert!(report.contains(shown), "{report}");
    }
    for hidden in ["CS102", "MA101", "CS399", "Student 0"] {
        assert!(!report.contains(hidden), "{hidden} was withheld:\n{report}");
    }
    assert!(report.contains("Checked against chain block"), "{report}");
    assert!(report.contains("cosigned by 2 witness(es)"), "{report}");

    // Replayed: refused.
    let (code, report) = verify(&desk, &input);
    assert_eq!(code, 1, "{report}");
    assert!(report.contains("replayed"), "{report}");

    // Tampered (another grade in a disclosure): refused.
    let tampered = root.join("tampered.txt");
    std::fs::write(
        &tampered,
        tamper_grade(&std::fs::read_to_string(&shared).unwrap()),
    )
    .unwrap();
    let (code, report) = verify(&desk, &["--input", s(&tampered), "--nonce", &nonce]);
    assert_eq!(code, 1, "{report}");
    assert!(report.starts_with("NOT VALID"), "{report}");
    assert!(report.contains("Reason: disclosures"), "{report}");

    // What fits a QR code: the employment record, decoded from the PNG.
    let (req, qr_nonce) = request(&desk, "/title");
    let png = root.join("share.png");
    ok(
        &b.wallet,
        &[
            "present",
            "--dir",
            s(&wallet_dir),
            &ids[1],
            "--request",
            &req,
            "--disclose",
            "title,employee",
            "--qr",
            s(&png),
        ],
    );
    let (code, report) = verify(&desk, &["--qr", s(&png), "--nonce", &qr_nonce]);
    assert_eq!(code, 0, "{report}");
    assert!(
        report.contains("Employment record") && report.contains("Job title"),
        "{report}"
    );

    // The university revokes the transcript; once the desk's replica syncs
    // a block that holds the new status list, the same presentation is
    // refused as revoked.
    let revoked = ok(
        &b.issuer,
        &["revoke", "--dir", s(&uni), "--credential", s(&files[0])],
    );
    assert!(revoked.starts_with("revoked status index"), "{revoked}");
    let sealed = net.wait_sealed();
    let (code, report) = verify(
        &desk,
        &[
            "--registry",
            &net.url,
            "--input",
            s(&shared),
            "--nonce",
            &nonce,
        ],
    );
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains(&format!("synced to block {}", sealed.height)),
        "{report}"
    );
    assert!(report.contains("REVOKED"), "{report}");
    assert!(
        report.contains("FAIL  revocation status: revoked"),
        "{report}"
    );
    // The presentation was answered before, so its nonce fails first; the
    // reason under REVOKED is still the revocation.
    assert!(report.contains("Reason: revocation status"), "{report}");
    // The other credentials are unaffected.
    let (req, n2) = request(&desk, "");
    let other = root.join("policy.txt");
    present_text(&wallet_dir, &ids[2], &req, "policy_number", &other);
    let (code, json) = verify_json(&desk, &["--input", s(&other), "--nonce", &n2]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["verification"]["as_of"]["height"], sealed.height);
    // The web service's replica follows on its own.
    wait_until(Duration::from_secs(30), || {
        let (_, body) = http_get(&web_addr, "/api/health");
        let h: serde_json::Value = serde_json::from_str(&body).ok()?;
        (h["replica"]["height"].as_u64()? >= sealed.height).then_some(())
    })
    .expect("the web service syncs the revocation's block");
    // The whole chain, as a witness replayed it, re-checks offline.
    net.witnesses[0].kill().unwrap();
    ok(&b.registry, &["verify", "--dir", s(&net.witness_dirs[0])]);
}

/// `text` with the grade of the first disclosed course that has a `"B"`
/// changed to `"A"`: a well-formed disclosure the issuer never signed.
fn tamper_grade(text: &str) -> String {
    let mut parts: Vec<String> = text.split('~').map(str::to_owned).collect();
    for part in parts.iter_mut().skip(1) {
        let Ok(plain) = vouch_core::b64::decode(part.as_str()) else {
            continue;
        };
        let plain = String::from_utf8_lossy(&plain).into_owned();
        if plain.contains("\"grade\":\"B\"") {
            *part = vouch_core::b64::encode(
                plain
                    .replace("\"grade\":\"B\"", "\"grade\":\"A\"")
                    .as_bytes(),
            );
            return parts.join("~");
        }
    }
    panic!("no disclosure with grade B in {text}");
}

#[test]
fn each_template_issues_presents_and_verifies() {
    let tmp = tempdir("templates");
    let root = tmp.path();
    let b = bins();
    let listed = ok(&b.issuer, &["templates"]);
    for name in ["transcript", "employment", "insurance-policy"] {
        assert!(listed.contains(name), "{listed}");
    }
    let net = Network::start(root, &["w1", "w2"], true);
    let wallet_dir = root.join("wallet");
    let mine = wallet(&wallet_dir, 3);
    let desk = root.join("desk");
    for (i, (template, issuer, title, disclose, shown)) in [
        (
            "transcript",
            "State University",
            "Academic transcript",
            "degree,courses[MA101]",
            "Linear Algebra",
        ),
        (
            "employment",
            "Acme Corp",
            "Employment record",
            "title,start",
            "2020-01-15",
        ),
        (
            "insurance-policy",
            "Northwind Insurance",
            "Insurance policy",
            "policy_number,cover_type",
            "NW-000000",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = root.join(template);
        net.issuer(&dir, issuer, template);
        let input = root.join(format!("{template}.csv"));
        let holders = vec![
            mine[i].clone(),
            holder(100 + i as u64),
            holder(200 + i as u64),
        ];
        csv(&input, template, &holders);
        let out = root.join("out").join(template);
        let report = issue(&dir, template, &input, &out);
        assert!(report.contains("issued 3 credentials"), "{report}");
        let m = manifest(&out);
        assert_eq!(m["credentials"][0]["holder"], mine[i].as_str());
        let id = import(&wallet_dir, &credential(&out, 1));
        let shown_claims = ok(&b.wallet, &["show", "--dir", s(&wallet_dir), &id]);
        for name in disclose.split(',') {
            assert!(shown_claims.contains(name), "{shown_claims}");
        }
        // Another holder's credential is not this wallet's to import.
        let theirs = run(
            &b.wallet,
            &["import", "--dir", s(&wallet_dir), s(&credential(&out, 2))],
        );
        assert!(!theirs.status.success(), "{}", text(&theirs));

        net.wait_sealed();
        if i == 0 {
            net.verifier(&desk, "https://desk.example", "require_anchor = false");
        }
        let (req, nonce) = request(&desk, "");
        let file = root.join(format!("{template}.txt"));
        present_text(&wallet_dir, &id, &req, disclose, &file);
        let (code, report) = verify(
            &desk,
            &[
                "--registry",
                &net.url,
                "--input",
                s(&file),
                "--nonce",
                &nonce,
            ],
        );
        assert_eq!(code, 0, "{template}:\n{report}");
        assert!(
            report.contains(&format!("Issuer: {issuer} (accredited")),
            "{report}"
        );
        assert!(
            report.contains(&format!("Credential: {title} ({template})")),
            "{report}"
        );
        assert!(report.contains(shown), "{report}");
    }
}

#[test]
fn demo_holders_prints_distinct_did_keys_and_refuses_bad_counts() {
    let bin = env!("CARGO_BIN_EXE_vouch-demo-holders");
    let out = std::process::Command::new(bin).arg("5").output().unwrap();
    assert!(out.status.success());
    let dids: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(dids.len(), 5);
    for d in &dids {
        vouch_core::DidKey::parse(d).unwrap();
    }
    let distinct: std::collections::HashSet<&String> = dids.iter().collect();
    assert_eq!(distinct.len(), 5);
    let zero = std::process::Command::new(bin).arg("0").output().unwrap();
    assert!(zero.status.success() && zero.stdout.is_empty());
    for bad in [
        vec![],
        vec!["-1"],
        vec!["ten"],
        vec!["1000001"],
        vec!["2", "3"],
    ] {
        let out = std::process::Command::new(bin).args(&bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(out.stdout.is_empty(), "{bad:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: vouch-demo-holders N"));
    }
}

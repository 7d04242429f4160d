//! Failures, with the real programs as separate processes: the registry
//! killed (`kill -9`) while an issuer's batch is under way; a verifier cut
//! off from its registry; a registry that forks its log.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use rand::Rng as _;
use vouch_e2e::Running;
use vouch_registry::node::Node;

#[test]
fn kill_9_of_the_registry_mid_batch_loses_and_doubles_nothing() {
    let tmp = tempdir("kill");
    let root = tmp.path();
    let b = bins();
    let mut net = Network::start(root, &[], false);
    let uni = root.join("university");
    let did = net.issuer(&uni, "State University", "transcript");
    let n = 1500;
    let input = root.join("t.csv");
    csv(
        &input,
        "transcript",
        &(0..n).map(|i| holder(i as u64)).collect::<Vec<_>>(),
    );
    let out = root.join("out");
    let args = [
        "issue",
        "--dir",
        s(&uni),
        "--template",
        "transcript",
        "--input",
        s(&input),
        "--out",
        s(&out),
    ];
    let mut rng = rand::thread_rng();
    // Kill the registry while an issuing run is under way: the first run
    // is cut short while it signs (1,500 rows take seconds), a resumed run
    // around its anchoring; until two were cut short or one finished.
    let mut interrupted = 0;
    for _ in 0..6 {
        let mut issuing = Running::spawn(
            "issuer",
            cmd(&b.issuer, &args)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(rng.gen_range(20..400)));
        if let Some(status) = issuing.try_wait().unwrap() {
            if status.success() {
                break;
            }
            continue;
        }
        // The registry dies the hard way, mid-run.
        net.node.kill().unwrap();
        let status =
            vouch_e2e::wait_until(Duration::from_secs(120), || issuing.try_wait().unwrap())
                .expect("the issuer ends once its registry is gone");
        net.restart();
        if status.success() {
            // It was past its last request already.
            continue;
        }
        interrupted += 1;
        if interrupted >= 2 {
            break;
        }
    }
    assert!(
        interrupted >= 1,
        "no kill landed while the issuer needed the registry"
    );
    // A rerun against the restarted registry completes the batch.
    let report = issue(&uni, "transcript", &input, &out);
    assert!(
        report.contains(&format!("issued {n} credentials")) || report.contains("already issued"),
        "{report}"
    );
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
    let idx: HashSet<u64> = m["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"]["idx"].as_u64().unwrap())
        .collect();
    assert_eq!(idx.len(), n, "no status index handed out twice");
    assert_eq!(vouch_issuer::issuer::check_manifest(&out, true).unwrap(), n);

    // The registry holds the batch's anchor once, and every entry it
    // acknowledged: stop it and read its store.
    net.node.interrupt(Duration::from_secs(10)).unwrap();
    let node = Node::open(&net.dir).unwrap();
    let (anchors, credentials) = node.with_state(|st| {
        let i = &st.issuers[did.as_str()];
        (i.anchors, i.credentials)
    });
    assert_eq!(
        (anchors, credentials),
        (1, n as u64),
        "anchored exactly once after {interrupted} interrupted run(s)"
    );
    drop(node);
    let checked = ok(&b.registry, &["verify", "--dir", s(&net.dir)]);
    assert!(!checked.is_empty());
}

/// Issues one transcript to a fresh wallet's DID from a new issuer on
/// `net`, imports it; the wallet's directory and the credential's id.
fn one_credential(net: &Network, root: &Path) -> (std::path::PathBuf, String) {
    let uni = root.join("university");
    net.issuer(&uni, "State University", "transcript");
    let wallet = root.join("wallet");
    let me = wallet_dids(&wallet);
    let input = root.join("t.csv");
    csv(&input, "transcript", &[me, holder(7)]);
    let out = root.join("out");
    issue(&uni, "transcript", &input, &out);
    let id = import(&wallet, &credential(&out, 1));
    (wallet, id)
}

fn wallet_dids(dir: &Path) -> String {
    wallet(dir, 1).remove(0)
}

#[test]
fn a_verifier_cut_off_from_its_registry_verifies_until_its_policy_bound() {
    let tmp = tempdir("offline");
    let root = tmp.path();
    let b = bins();
    let mut net = Network::start(root, &["w1", "w2"], true);
    let (wallet, id) = one_credential(&net, root);
    // The bound on the replica's age: the age of its newest block.
    let bound = 8;
    let desk = root.join("desk");
    net.wait_sealed();
    net.verifier(
        &desk,
        "https://desk.example",
        &format!("max_replica_age = {bound}\nrequire_nonce = false"),
    );
    // A last entry, sealed and cosigned now; the desk syncs it, then the
    // registry and its witnesses are gone.
    net.issuer(&root.join("late"), "Late College", "transcript");
    let last = net.wait_sealed();
    let shared = root.join("share.txt");
    let text = ok(
        &b.wallet,
        &[
            "present",
            "--dir",
            s(&wallet),
            &id,
            "--aud",
            "https://desk.example",
            "--nonce",
            "offline-test",
            "--disclose",
            "degree",
        ],
    );
    std::fs::write(&shared, text.trim()).unwrap();
    let (code, json) = verify_json(&desk, &["--registry", &net.url, "--input", s(&shared)]);
    assert_eq!(json["verification"]["as_of"]["height"], last.height);
    if json["verification"]["as_of"]["age"].as_i64().unwrap() < bound {
        assert_eq!(code, 0, "{json}");
    }
    net.node.kill().unwrap();
    for w in &mut net.witnesses {
        w.kill().unwrap();
    }

    // Cut off: a sync fails and says so; offline it still verifies, and
    // reports how old its replica is.
    let (code, report) = verify(&desk, &["--registry", &net.url, "--input", s(&shared)]);
    assert_eq!(code, 2, "{report}");
    assert!(
        report.contains(&format!("syncing from {}", net.url)),
        "{report}"
    );
    let (code, json) = verify_json(&desk, &["--input", s(&shared)]);
    let age = json["verification"]["as_of"]["age"].as_i64().unwrap();
    assert_eq!(json["verification"]["as_of"]["height"], last.height);
    if age < bound {
        assert_eq!(code, 0, "{json}");
        assert_eq!(check(&json, "freshness").0, "pass");
        let (_, report) = verify(&desk, &["--input", s(&shared)]);
        assert!(
            report.contains(&format!("Checked against chain block {}", last.height))
                && report.contains("old"),
            "{report}"
        );
    } else {
        // Too slow a machine to see the fresh side; the stale side below
        // is still checked.
        eprintln!("{age} s passed since the last block before the first offline check");
    }

    // Past the bound, the same presentation is refused as stale.
    let until = last.time + bound + 2;
    let now = vouch_registry::now();
    if until > now {
        std::thread::sleep(Duration::from_secs((until - now) as u64));
    }
    let (code, json) = verify_json(&desk, &["--input", s(&shared)]);
    assert_eq!(code, 1, "{json}");
    let (outcome, detail) = check(&json, "freshness");
    assert_eq!(outcome, "fail", "{json}");
    assert!(detail.contains("the replica is stale"), "{detail}");
    assert!(
        detail.contains(&format!("the policy allows {bound} s")),
        "{detail}"
    );
    // Everything else still passes: only staleness refuses it.
    for name in [
        "issuer-signature",
        "holder-binding",
        "accreditation",
        "status",
    ] {
        assert_eq!(check(&json, name).0, "pass", "{name}: {json}");
    }
}

#[test]
fn a_forked_log_is_refused_by_the_witness_and_never_reaches_the_verifier() {
    let tmp = tempdir("fork");
    let root = tmp.path();
    let b = bins();
    // One witness, needed (1 of 1); it runs by hand (`--once`) here.
    let mut a = Network::start(root, &["w"], false);
    let (wallet, id) = one_credential(&a, root);
    let witness_dir = a.witness_dirs[0].clone();
    let node_key = a.node_key.clone();
    let witness_once = |url: &str| {
        run(
            &b.registry,
            &[
                "witness",
                "--dir",
                s(&witness_dir),
                "--registry",
                url,
                "--node-key",
                &node_key,
                "--once",
            ],
        )
    };
    let sealed = vouch_e2e::wait_until(Duration::from_secs(30), || {
        let st = a.status();
        (st.size >= st.entries).then_some(st)
    })
    .unwrap();
    let cosigned = witness_once(&a.url);
    assert!(cosigned.status.success(), "{}", text(&cosigned));
    // Two verifiers: one needs the witness, one trusts the node key alone
    // (and has only its own consistency checks to stop a fork).
    let strict = root.join("strict");
    a.verifier(&strict, "https://strict.example", "require_nonce = false");
    let node_only = root.join("node-only");
    std::fs::create_dir_all(&node_only).unwrap();
    std::fs::write(node_only.join("policy.toml"), "require_nonce = false\n").unwrap();
    ok(
        &b.verifier,
        &[
            "init",
            "--dir",
            s(&node_only),
            "--registry",
            &a.url,
            "--node-key",
            &a.node_key,
            "--aud",
            "https://node-only.example",
        ],
    );
    let share = |aud: &str, file: &Path| {
        let text = ok(
            &b.wallet,
            &[
                "present",
                "--dir",
                s(&wallet),
                &id,
                "--aud",
                aud,
                "--nonce",
                "fork",
                "--disclose",
                "degree",
            ],
        );
        std::fs::write(file, text.trim()).unwrap();
    };
    let strict_share = root.join("strict.txt");
    let node_share = root.join("node-only.txt");
    share("https://strict.example", &strict_share);
    share("https://node-only.example", &node_share);
    let height_of = |dir: &Path, file: &Path, registry: Option<&str>| {
        let mut args = vec!["--input", s(file)];
        if let Some(url) = registry {
            args.extend(["--registry", url]);
        }
        let (code, json) = verify_json(dir, &args);
        assert_eq!(code, 0, "{json}");
        json["verification"]["as_of"]["height"].as_u64().unwrap()
    };
    assert_eq!(
        height_of(&strict, &strict_share, Some(&a.url)),
        sealed.height
    );
    assert_eq!(
        height_of(&node_only, &node_share, Some(&a.url)),
        sealed.height
    );

    // The operator forks: a copy of the node, same key, another history.
    a.node.interrupt(Duration::from_secs(10)).unwrap();
    let b_dir = root.join("fork");
    copy_dir(&a.dir, &b_dir);
    a.restart();
    let b_port = vouch_registry::testkit::free_port().unwrap();
    let b_addr = format!("127.0.0.1:{b_port}");
    let _fork = serve(&b_dir, &b_addr);
    let b_url = format!("http://{b_addr}");
    let accredit = |url: &str, name: &str, seed: u64| {
        ok(
            &b.registry,
            &[
                "accredit",
                "--registry",
                url,
                "--authority-key",
                s(&a.dir.join("authority.key")),
                "--issuer",
                &holder(seed),
                "--name",
                name,
                "--kind",
                "employment",
            ],
        )
    };
    accredit(&a.url, "Honest Employer", 1000);
    accredit(&b_url, "Forged Employer", 2000);
    let status_of = |url: &str| {
        let out = ok(&b.registry, &["status", "--registry", url]);
        let entries: u64 = field(&out, "entries:").parse().unwrap();
        let size: u64 = out
            .lines()
            .skip_while(|l| *l != "latest checkpoint:")
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        (entries, size)
    };
    for url in [&a.url, &b_url] {
        vouch_e2e::wait_until(Duration::from_secs(30), || {
            let (entries, size) = status_of(url);
            (size >= entries && entries == sealed.entries + 1).then_some(())
        })
        .expect("both histories seal their new entry");
    }

    // The witness cosigns history A and refuses history B.
    let cosigned = witness_once(&a.url);
    assert!(cosigned.status.success(), "{}", text(&cosigned));
    let refused = witness_once(&b_url);
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("REFUSING TO COSIGN"),
        "{}",
        text(&refused)
    );

    // Both verifiers follow history A.
    let a_height = height_of(&strict, &strict_share, Some(&a.url));
    assert!(a_height > sealed.height);
    assert_eq!(height_of(&node_only, &node_share, Some(&a.url)), a_height);

    // Neither moves onto B: the strict one finds no block there with the
    // cosignature it needs; the node-only one, having seen A's block,
    // finds B's log inconsistent with it and refuses the sync. Both stay
    // where they were and verify offline as before.
    let (code, report) = verify(
        &strict,
        &["--registry", &b_url, "--input", s(&strict_share)],
    );
    assert_eq!(code, 2, "{report}");
    assert!(
        report.contains(&format!("syncing from {b_url}")),
        "{report}"
    );
    assert!(
        report.contains("0 of the 1 witness cosignatures needed"),
        "{report}"
    );
    assert_eq!(height_of(&strict, &strict_share, None), a_height);
    let (code, report) = verify(
        &node_only,
        &["--registry", &b_url, "--input", s(&node_share)],
    );
    assert_eq!(code, 2, "{report}");
    assert!(
        report.contains(&format!("syncing from {b_url}")),
        "{report}"
    );
    assert!(report.contains("diverge"), "{report}");
    assert_eq!(height_of(&node_only, &node_share, None), a_height);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

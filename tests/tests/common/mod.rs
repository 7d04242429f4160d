//! Shared by the tests that drive the four programs: running them, a
//! registry node with witnesses as separate processes, issuers, wallets,
//! verifiers, CSV files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ed25519_dalek::SigningKey;
use rand::SeedableRng as _;
use serde_json::Value;
use vouch_core::DidKey;
use vouch_e2e::{binaries, wait_until, Binaries, Running};

/// The passphrase of every keystore and wallet in these tests.
pub const PASS: &str = "e2e passphrase";

/// The four binaries (built once per test process).
pub fn bins() -> &'static Binaries {
    match binaries() {
        Ok(b) => b,
        Err(e) => panic!("the binaries under test: {e}"),
    }
}

/// A temporary directory named after the test, removed when dropped.
pub fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("vouch-e2e-{name}-"))
        .tempdir()
        .unwrap()
}

/// `path` as a `&str`.
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A command for `bin` with `args`, the passphrase in the environment and
/// no standard input.
pub fn cmd(bin: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(args)
        .env("VOUCH_PASSPHRASE", PASS)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    c
}

/// Runs `bin` with `args` to the end.
pub fn run(bin: &Path, args: &[&str]) -> Output {
    cmd(bin, args).output().unwrap()
}

/// Runs `bin` with `args`, which must succeed; its standard output.
pub fn ok(bin: &Path, args: &[&str]) -> String {
    let out = run(bin, args);
    assert!(
        out.status.success(),
        "{} {args:?} failed ({}):\n{}{}",
        bin.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Standard output and error of `out`, together.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The value after `prefix` on the first line of `text` that starts with it.
pub fn field(text: &str, prefix: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"))
        .trim()
        .to_owned()
}

/// A holder did:key from a seed (its key is not kept).
pub fn holder(seed: u64) -> String {
    let key = SigningKey::generate(&mut rand::rngs::StdRng::seed_from_u64(seed));
    DidKey::from_public_key(&key.verifying_key())
        .as_str()
        .to_owned()
}

/// A registry node served by `vouch-registry serve` and witnesses running
/// `vouch-registry witness`, each a separate process.
pub struct Network {
    /// The node's directory.
    pub dir: PathBuf,
    /// Where it listens (`127.0.0.1:PORT`).
    pub addr: String,
    /// Its base URL.
    pub url: String,
    /// The node key.
    pub node_key: String,
    /// The witnesses' verifier keys.
    pub witness_keys: Vec<String>,
    /// The witnesses' directories.
    pub witness_dirs: Vec<PathBuf>,
    /// The node's process.
    pub node: Running,
    /// The witnesses' processes (empty when they were not started).
    pub witnesses: Vec<Running>,
}

impl Network {
    /// A node in `root/node` needing all of `witnesses` (named; created in
    /// `root/<name>`) and served on a free loopback port; the witnesses
    /// run only when `run_witnesses`.
    pub fn start(root: &Path, witnesses: &[&str], run_witnesses: bool) -> Self {
        let b = bins();
        let mut keys = Vec::new();
        let mut dirs = Vec::new();
        for name in witnesses {
            let dir = root.join(name);
            let key = ok(
                &b.registry,
                &["witness", "--dir", s(&dir), "--name", name, "--show-key"],
            );
            keys.push(key.trim().to_owned());
            dirs.push(dir);
        }
        let dir = root.join("node");
        let need = witnesses.len().to_string();
        let mut args = vec!["init", "--dir", s(&dir), "--origin", "e2e.vouch/registry"];
        for k in &keys {
            args.extend(["--witness", k]);
        }
        args.extend(["--need", &need]);
        let out = ok(&b.registry, &args);
        let node_key = field(&out, "node key (give to witnesses and replicas):");
        let port = vouch_registry::testkit::free_port().unwrap();
        let addr = format!("127.0.0.1:{port}");
        let node = serve(&dir, &addr);
        let mut net = Self {
            dir,
            url: format!("http://{addr}"),
            addr,
            node_key,
            witness_keys: keys,
            witness_dirs: dirs,
            node,
            witnesses: Vec::new(),
        };
        if run_witnesses {
            for i in 0..net.witness_dirs.len() {
                let w = net.witness(i);
                net.witnesses.push(w);
            }
        }
        net
    }

    /// Starts witness `i` following this node, cosigning every second.
    pub fn witness(&self, i: usize) -> Running {
        Running::spawn(
            &format!("witness {i}"),
            cmd(
                &bins().registry,
                &[
                    "witness",
                    "--dir",
                    s(&self.witness_dirs[i]),
                    "--registry",
                    &self.url,
                    "--node-key",
                    &self.node_key,
                    "--interval",
                    "1",
                ],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
        )
        .unwrap()
    }

    /// Restarts the node on the same address (after it was killed).
    pub fn restart(&mut self) {
        self.node = serve(&self.dir, &self.addr);
    }

    /// `vouch-registry status`: the entries, and the latest checkpoint's
    /// tree size and cosigners.
    pub fn status(&self) -> Status {
        let out = ok(&bins().registry, &["status", "--registry", &self.url]);
        let entries = field(&out, "entries:").parse().unwrap();
        let mut lines = out.lines().skip_while(|l| *l != "latest checkpoint:");
        let size = lines.nth(2).unwrap().parse().unwrap();
        let block = out
            .lines()
            .find_map(|l| l.strip_prefix("vouch-block "))
            .unwrap()
            .split(' ')
            .map(|n| n.to_owned())
            .collect::<Vec<_>>();
        let cosigners = out
            .lines()
            .filter_map(|l| l.strip_prefix("— "))
            .filter_map(|l| l.split(' ').next())
            .filter(|name| !name.starts_with("e2e.vouch"))
            .map(str::to_owned)
            .collect();
        Status {
            entries,
            size,
            height: block[0].parse().unwrap(),
            time: block[1].parse().unwrap(),
            cosigners,
        }
    }

    /// Waits until a block covers every entry so far and carries every
    /// witness's cosignature; that block's status.
    pub fn wait_sealed(&self) -> Status {
        let want = self.status().entries;
        let n = self.witness_keys.len();
        wait_until(Duration::from_secs(60), || {
            let st = self.status();
            (st.size >= want && st.cosigners.len() >= n).then_some(st)
        })
        .unwrap_or_else(|| panic!("no block covering {want} entries cosigned by {n} witnesses"))
    }

    /// Creates an issuer `name` in `dir` on this registry and accredits it
    /// for `kinds`; its DID.
    pub fn issuer(&self, dir: &Path, name: &str, kinds: &str) -> String {
        let b = bins();
        let out = ok(
            &b.issuer,
            &[
                "init",
                "--dir",
                s(dir),
                "--name",
                name,
                "--registry",
                &self.url,
            ],
        );
        let did = field(&out, "issuer DID:");
        ok(
            &b.registry,
            &[
                "accredit",
                "--registry",
                &self.url,
                "--authority-key",
                s(&self.dir.join("authority.key")),
                "--issuer",
                &did,
                "--name",
                name,
                "--kind",
                kinds,
            ],
        );
        did
    }

    /// A verifier in `dir` on this registry, trusting its node key and
    /// needing every witness, with `extra` policy lines.
    pub fn verifier(&self, dir: &Path, aud: &str, extra: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let witnesses: Vec<String> = self.witness_keys.iter().map(|k| format!("{k:?}")).collect();
        std::fs::write(
            dir.join("policy.toml"),
            format!(
                "witnesses = [{}]\nneed = {}\n{extra}\n",
                witnesses.join(", "),
                self.witness_keys.len()
            ),
        )
        .unwrap();
        ok(
            &bins().verifier,
            &[
                "init",
                "--dir",
                s(dir),
                "--registry",
                &self.url,
                "--node-key",
                &self.node_key,
                "--aud",
                aud,
            ],
        );
    }
}

/// Runs `vouch-registry serve` for the node in `dir` on `addr`, sealing
/// every second; returns once it listens.
pub fn serve(dir: &Path, addr: &str) -> Running {
    let url_file = dir.with_extension("url");
    let _ = std::fs::remove_file(&url_file);
    let mut node = Running::spawn(
        "registry",
        cmd(
            &bins().registry,
            &[
                "serve",
                "--dir",
                s(dir),
                "--listen",
                addr,
                "--block-interval",
                "1",
                "--addr-file",
                s(&url_file),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null()),
    )
    .unwrap();
    let up = wait_until(Duration::from_secs(30), || {
        std::fs::metadata(&url_file)
            .ok()
            .filter(|m| m.len() > 0)
            .map(|_| ())
    });
    if up.is_none() {
        let status = node.try_wait().unwrap();
        panic!(
            "the registry in {} did not start ({status:?})",
            dir.display()
        );
    }
    node
}

/// What `vouch-registry status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Entries in the log.
    pub entries: u64,
    /// Tree size of the latest block.
    pub size: u64,
    /// Its height.
    pub height: u64,
    /// Its time (Unix seconds).
    pub time: i64,
    /// The witnesses whose cosignatures it carries.
    pub cosigners: Vec<String>,
}

/// A wallet in `dir` (cheap KDF); hands out `n` holder DIDs.
pub fn wallet(dir: &Path, n: usize) -> Vec<String> {
    let b = bins();
    ok(
        &b.wallet,
        &["init", "--dir", s(dir), "--kdf-memory-mib", "1"],
    );
    (0..n)
        .map(|_| {
            ok(&b.wallet, &["receive", "--dir", s(dir)])
                .trim()
                .to_owned()
        })
        .collect()
}

/// Imports `file` into the wallet in `dir` (the manifest beside it gives
/// the anchor proof); the credential's id.
pub fn import(dir: &Path, file: &Path) -> String {
    let out = ok(&bins().wallet, &["import", "--dir", s(dir), s(file)]);
    assert!(out.contains("with its anchor proof"), "{out}");
    let rest = out.split(" as ").nth(1).unwrap();
    rest.split(|c: char| !c.is_ascii_hexdigit())
        .next()
        .unwrap()
        .to_owned()
}

/// The courses of a transcript row: 12 of them.
pub const COURSES: &str = "CS101|Introduction to Programming|6|A|2024-S1; \
    CS102|Data Structures|6|B|2024-S1; MA101|Linear Algebra|5|A|2024-S1; \
    MA102|Calculus|5|C|2024-S1; CS201|Algorithms|6|B|2024-S1; \
    CS202|Operating Systems|6|A|2024-S1; CS203|Databases|6|B|2025-S1; \
    CS204|Computer Networks|5|A|2025-S1; CS301|Distributed Systems|6|B|2025-S1; \
    CS302|Cryptography|6|A|2025-S1; CS303|Compilers|6|C|2025-S1; \
    CS399|Bachelor Thesis|12|B|2025-S1";

/// A CSV for `template` with one row per holder.
pub fn csv(path: &Path, template: &str, holders: &[String]) {
    let mut text = String::new();
    match template {
        "transcript" => {
            text.push_str(
                "holder,institution,student_name,student_id,programme,degree,award_date,gpa,courses\n",
            );
            for (i, h) in holders.iter().enumerate() {
                text.push_str(&format!(
                    "{h},State University,Student {i},S{i:06},Computer Science,Bachelor of Science,2025-07-15,3.50,\"{COURSES}\"\n"
                ));
            }
        }
        "employment" => {
            text.push_str("holder,employer,employee,title,department,start,end\n");
            for (i, h) in holders.iter().enumerate() {
                text.push_str(&format!(
                    "{h},Acme Corp,Employee {i},Engineer,R&D,2020-01-15,\n"
                ));
            }
        }
        "insurance-policy" => {
            text.push_str(
                "holder,insurer,policyholder,policy_number,cover_type,sum_insured,start,end\n",
            );
            for (i, h) in holders.iter().enumerate() {
                text.push_str(&format!(
                    "{h},Northwind Insurance,Policyholder {i},NW-{i:06},health,250000,2025-01-01,2030-12-31\n"
                ));
            }
        }
        other => panic!("no template {other}"),
    }
    std::fs::write(path, text).unwrap();
}

/// Issues `csv` with `template` from the issuer in `dir` into `out`.
pub fn issue(dir: &Path, template: &str, csv: &Path, out: &Path) -> String {
    ok(
        &bins().issuer,
        &[
            "issue",
            "--dir",
            s(dir),
            "--template",
            template,
            "--input",
            s(csv),
            "--out",
            s(out),
        ],
    )
}

/// The credential file of row `row` (1-based) in a batch's `out`.
pub fn credential(out: &Path, row: usize) -> PathBuf {
    let prefix = format!("{row:06}-");
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".sd-jwt"))
        })
        .unwrap_or_else(|| panic!("no credential for row {row} in {}", out.display()))
}

/// The batch manifest in `out`.
pub fn manifest(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

/// A presentation request from the verifier in `dir` for `claims`: its
/// `VCHR1:` text and nonce.
pub fn request(dir: &Path, claims: &str) -> (String, String) {
    let mut args = vec!["request", "--dir", s(dir), "--json"];
    if !claims.is_empty() {
        args.extend(["--claim", claims]);
    }
    let json: Value = serde_json::from_str(&ok(&bins().verifier, &args)).unwrap();
    (
        json["request"].as_str().unwrap().to_owned(),
        json["nonce"].as_str().unwrap().to_owned(),
    )
}

/// `vouch-wallet present` of credential `id` for `request`, disclosing
/// `names`, as text (standard output) written to `file`.
pub fn present_text(wallet: &Path, id: &str, request: &str, names: &str, file: &Path) {
    let out = ok(
        &bins().wallet,
        &[
            "present",
            "--dir",
            s(wallet),
            id,
            "--request",
            request,
            "--disclose",
            names,
        ],
    );
    std::fs::write(file, out.trim()).unwrap();
}

/// `vouch-verifier verify` in `dir` with `args`: exit code and output.
pub fn verify(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut all = vec!["verify", "--dir", s(dir)];
    all.extend_from_slice(args);
    let out = run(&bins().verifier, &all);
    (out.status.code().unwrap_or(-1), text(&out))
}

/// `vouch-verifier verify --json` in `dir` with `args`: exit code and the
/// verification.
pub fn verify_json(dir: &Path, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["verify", "--dir", s(dir), "--json"];
    all.extend_from_slice(args);
    let out = run(&bins().verifier, &all);
    let json =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out.status.code().unwrap_or(-1), json)
}

/// The outcome of check `name` in a `verify --json` result, and its detail.
pub fn check(json: &Value, name: &str) -> (String, String) {
    let c = json["verification"]["verdict"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {json}"));
    (
        c["outcome"].as_str().unwrap().to_owned(),
        c["detail"].as_str().unwrap_or_default().to_owned(),
    )
}

/// A `GET` of `path` on `addr` (`host:port`) over HTTP/1.0: status line
/// and body.
pub fn http_get(addr: &str, path: &str) -> (String, String) {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap_or((&reply, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

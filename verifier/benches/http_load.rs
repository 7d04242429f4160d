//! The verifier over HTTP under load from a separate process on loopback.
//!
//! ```text
//! cargo bench -p vouch-verifier --bench http_load
//! ```
//!
//! Sets up a chain (an issuer's embedded registry with a batch of
//! 12-course transcripts, served on loopback with the shared
//! `vouch_registry::testkit`), then starts the real `vouch-verifier serve`
//! binary (this profile's build, so release under `cargo bench`) as a child
//! process on 127.0.0.1 and drives `POST /api/verify` with C keep-alive
//! connections (one thread each, a minimal HTTP/1.1 client) for a fixed
//! time, for each C. Every request carries a distinct presentation of three
//! courses (its own KB-JWT nonce) as a `VCH1:` envelope in the JSON body; a
//! response counts only when it is `200` with the headline `valid`.
//!
//! Two services, one after the other:
//!
//! - **nonces** (the default policy, `require_nonce = true`, with
//!   `max_open_requests` raised to its maximum and `request_ttl` to an hour
//!   so the pool fits): each presentation answers a request issued into
//!   the service's nonce book before the timed run (through the library,
//!   with the service stopped: over HTTP each request also draws its QR
//!   PNG, and that rate is printed separately), and each verification
//!   redeems its nonce (a write to the nonce book, flushed).
//! - **no nonces** (`require_nonce = false`): the same check without the
//!   nonce book; presentations are cycled from a pool.
//!
//! Then one wallet QR PNG at a time (as `vouch-wallet present --qr` writes
//! it: scale 8, quiet zone 4) posted to `/api/scan?nonce=…`: frame to
//! verdict. Beside them, the library figures, in this process: raw
//! `verify_strict` of the issuer JWT, and `Checker::check` of resolved
//! presentations (64 distinct ones, cycled) with the signatures of
//! concurrent checks batched (the default) and each checked alone, on 1, 2
//! and 4 threads, in interleaved rounds; the table gives each one's median
//! and its ratio to the single-presentation limit (the raw rate on as many
//! threads ÷ 2: two signatures per presentation).
//!
//! Environment: `VOUCH_HTTP_LOAD_SECONDS` (per run, default 10),
//! `VOUCH_HTTP_LOAD_CONNS` (default `1,4,16,64`), `VOUCH_HTTP_LOAD_PARTS`
//! (default `library,http,scan`), `VOUCH_HTTP_LOAD_BATCH_MAX` (the
//! service's `--batch-max`; default: the binary's, 64), `VOUCH_HTTP_LOAD_BATCHING`
//! (the service's `--batching`, `pool` or `gather`; default: the binary's,
//! `pool`), `VOUCH_HTTP_LOAD_ROUNDS`
//! and `VOUCH_HTTP_LOAD_LIBRARY_SECONDS` (library rounds, default 3, and
//! seconds per figure per round, default 2), `VOUCH_HTTP_LOAD_LIBRARY_THREADS`
//! (the library's thread counts, default `1,2,4`; with many threads the
//! batcher's adaptive batches grow as they would under a busy service), `VOUCH_HTTP_LOAD_POOL`
//! (presentations prepared per nonce run, default 8000; a run that uses
//! them up ends early and says so; each request issued into the nonce
//! book is flushed to disk, so a pool takes a moment per thousand to fill),
//! `VOUCH_HTTP_LOAD_SCANS` (frames, default 200).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

/// The service's allocator (see `main.rs`), so that the library figures are
/// the library as the service runs it; `--no-default-features` builds
/// both with the system's.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use vouch_core::view::ChainView;
use vouch_core::{envelope, ClaimPath, DidKey, SdJwt};
use vouch_registry::node::Node;
use vouch_registry::testkit::{self, TestServer};
use vouch_verifier::{
    Ask, BatchConfig, CheckPool, Checker, Input, NodePin, PolicyFile, Presented, Verifier,
};

#[path = "../tests/support/university.rs"]
mod university;

const AUD: &str = "https://hr.example.com";
/// Distinct holders (and credentials): a batch of concurrent checks sees
/// as many distinct holder keys, as a real verifier's would.
const HOLDERS: u8 = 8;
const VALID: &[u8] = br#"{"headline":"valid""#;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let p = std::env::temp_dir().join(format!("vouch-http-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Transcripts (12 courses each) issued and anchored on an issuer's
/// embedded registry, which is served on loopback.
struct Chain {
    url: String,
    node_vkey: String,
    holders: Vec<SigningKey>,
    credentials: Vec<SdJwt>,
    _server: TestServer,
}

async fn chain(root: &Path) -> Chain {
    let dir = root.join("university");
    let holders: Vec<SigningKey> = (0..HOLDERS)
        .map(|i| SigningKey::from_bytes(&[40 + i; 32]))
        .collect();
    let out = root.join("credentials");
    // Dropped at once: the node opens the same store.
    drop(university::issue_transcripts(&dir, &out, &holders, 12).await);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sd-jwt"))
        .collect();
    files.sort();
    let credentials = files
        .iter()
        .map(|p| SdJwt::parse(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect();
    let node = Arc::new(Node::open(&dir.join("registry")).unwrap());
    let node_vkey = node.vkey();
    let server = testkit::serve_node(node).await.unwrap();
    Chain {
        url: server.url().to_owned(),
        node_vkey,
        holders,
        credentials,
        _server: server,
    }
}

impl Chain {
    /// Holder `i % HOLDERS`'s presentation of three courses for `nonce`.
    fn present(&self, i: usize, nonce: &str) -> String {
        let i = i % self.holders.len();
        let paths: Vec<ClaimPath> = ["/courses/0", "/courses/4", "/courses/7"]
            .iter()
            .map(|p| ClaimPath::parse(p).unwrap())
            .collect();
        self.credentials[i]
            .present(&paths)
            .unwrap()
            .bind(&self.holders[i], AUD, nonce, vouch_verifier::now())
            .serialize()
    }

    /// `presentations` for `nonces` as `VCH1:` envelopes, made on two
    /// threads.
    fn envelopes(&self, nonces: &[String]) -> Vec<String> {
        let half = nonces.len().div_ceil(2);
        std::thread::scope(|s| {
            let parts: Vec<_> = nonces
                .chunks(half.max(1))
                .enumerate()
                .map(|(k, part)| {
                    s.spawn(move || {
                        part.iter()
                            .enumerate()
                            .map(|(j, n)| envelope::encode(&self.present(k * half + j, n)).unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            parts.into_iter().flat_map(|p| p.join().unwrap()).collect()
        })
    }
}

/// A verifier directory set up for the chain, under `policy`.
async fn verifier_dir(chain: &Chain, dir: &Path, policy: &PolicyFile) {
    Verifier::init(
        dir,
        &chain.url,
        NodePin::Key(chain.node_vkey.clone()),
        Some(AUD.into()),
    )
    .await
    .unwrap();
    std::fs::write(dir.join("policy.toml"), toml::to_string(policy).unwrap()).unwrap();
}

/// The real `vouch-verifier serve`, a child process.
struct Service {
    child: Child,
    addr: SocketAddr,
}

impl Service {
    fn start(dir: &Path, log: &Path) -> Self {
        let port = testkit::free_port().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new(env!("CARGO_BIN_EXE_vouch-verifier"))
            .args(["serve", "--dir"])
            .arg(dir)
            .args(["--listen", &addr.to_string(), "--sync-interval", "3600"])
            .args(
                std::env::var("VOUCH_HTTP_LOAD_BATCH_MAX")
                    .map(|n| vec!["--batch-max".to_owned(), n])
                    .unwrap_or_default(),
            )
            .args(
                std::env::var("VOUCH_HTTP_LOAD_BATCHING")
                    .map(|b| vec!["--batching".to_owned(), b])
                    .unwrap_or_default(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        let s = Self { child, addr };
        // Ready once the first sync published a view.
        let start = Instant::now();
        loop {
            if let Ok(mut c) = Client::connect(addr) {
                let get = format!("GET /api/health HTTP/1.1\r\nhost: {addr}\r\n\r\n");
                if let Ok((200, body)) = c.send(get.as_bytes()) {
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    if !v["replica"].is_null() {
                        return s;
                    }
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the verifier did not sync in 60 s; see {}",
                log.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// User + system CPU seconds the service used so far.
    fn cpu(&self) -> f64 {
        cpu_seconds(&format!("/proc/{}/stat", self.child.id()))
    }

    /// SIGTERM, then waits (the service shuts down cleanly).
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of `/proc/<pid>/stat`, in seconds.
fn cpu_seconds(stat: &str) -> f64 {
    let Ok(text) = std::fs::read_to_string(stat) else {
        return f64::NAN;
    };
    // The fields after the command name (which is in parentheses).
    let rest = &text[text.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line.
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / clock_ticks()
}

/// A minimal HTTP/1.1 keep-alive client on one connection.
struct Client {
    stream: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Self {
            stream: BufReader::with_capacity(64 << 10, stream),
        })
    }

    /// Sends one whole request; the status and body of the response.
    fn send(&mut self, request: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let bad =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        self.stream.get_mut().write_all(request)?;
        let mut line = String::new();
        if self.stream.read_line(&mut line)? == 0 {
            return Err(bad("connection closed"));
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("status line"))?;
        let (mut length, mut chunked) = (None, false);
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').ok_or_else(|| bad("header"))?;
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().map_err(|_| bad("content-length"))?);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.stream.read_line(&mut line)?;
                let size =
                    usize::from_str_radix(line.trim_end(), 16).map_err(|_| bad("chunk size"))?;
                let start = body.len();
                body.resize(start + size + 2, 0);
                self.stream.read_exact(&mut body[start..])?;
                body.truncate(start + size);
                if size == 0 {
                    break;
                }
            }
        } else {
            body.resize(length.ok_or_else(|| bad("no length"))?, 0);
            self.stream.read_exact(&mut body)?;
        }
        Ok((status, body))
    }
}

fn post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

/// `POST /api/verify` requests for `envelopes`, each with its nonce when
/// given.
fn verify_requests(
    addr: SocketAddr,
    envelopes: &[String],
    nonces: Option<&[String]>,
) -> Vec<Vec<u8>> {
    envelopes
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let body = match nonces {
                Some(n) => serde_json::json!({ "input": e, "nonce": n[i] }),
                None => serde_json::json!({ "input": e }),
            };
            post(
                addr,
                "/api/verify",
                "application/json",
                body.to_string().as_bytes(),
            )
        })
        .collect()
}

/// `n` presentation requests issued into the nonce book of the verifier in
/// `dir` (not being served): their nonces.
fn issue_nonces(dir: &Path, n: usize) -> Vec<String> {
    let v = Verifier::open(dir, None).unwrap();
    (0..n)
        .map(|_| {
            v.request(Vec::new(), vouch_verifier::now())
                .unwrap()
                .nonce()
                .to_owned()
        })
        .collect()
}

/// `n` presentation requests issued through `POST /api/requests`, on 8
/// connections: their nonces.
fn issue_requests(addr: SocketAddr, n: usize) -> Vec<String> {
    let next = AtomicUsize::new(0);
    let request = post(addr, "/api/requests", "application/json", b"{}");
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut c = Client::connect(addr).unwrap();
                    let mut nonces = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < n {
                        let (status, body) = c.send(&request).unwrap();
                        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        assert_eq!(v["aud"], AUD);
                        nonces.push(v["nonce"].as_str().unwrap().to_owned());
                    }
                    nonces
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    })
}

/// One timed run: what it measured.
struct Run {
    conns: usize,
    seconds: f64,
    verified: usize,
    not_valid: usize,
    http_errors: usize,
    io_errors: usize,
    exhausted: bool,
    latencies_us: Vec<u32>,
    server_cpu: f64,
    loader_cpu: f64,
    first_failure: Option<String>,
}

impl Run {
    fn rate(&self) -> f64 {
        self.verified as f64 / self.seconds
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

#[derive(Default)]
struct Tally {
    verified: usize,
    not_valid: usize,
    http_errors: usize,
    io_errors: usize,
    latencies_us: Vec<u32>,
    first_failure: Option<String>,
}

/// Drives `requests` (each sent once, in order) over `conns` keep-alive
/// connections until `seconds` pass or they run out.
fn run(service: &Service, requests: &[Vec<u8>], conns: usize, seconds: f64, cycle: bool) -> Run {
    let next = AtomicUsize::new(0);
    let exhausted = AtomicBool::new(false);
    let (cpu0, self0) = (service.cpu(), cpu_seconds("/proc/self/stat"));
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..conns)
            .map(|_| {
                s.spawn(|| {
                    let mut t = Tally::default();
                    let mut client = Client::connect(service.addr).unwrap();
                    while Instant::now() < deadline {
                        let mut i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= requests.len() {
                            if !cycle {
                                exhausted.store(true, Ordering::Relaxed);
                                break;
                            }
                            i %= requests.len();
                        }
                        let t0 = Instant::now();
                        match client.send(&requests[i]) {
                            Ok((200, body)) if body.starts_with(VALID) => {
                                let us = t0.elapsed().as_micros();
                                t.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                                t.verified += 1;
                            }
                            Ok((status, body)) => {
                                if status == 200 {
                                    t.not_valid += 1;
                                } else {
                                    t.http_errors += 1;
                                }
                                t.first_failure.get_or_insert_with(|| {
                                    format!("{status}: {}", String::from_utf8_lossy(&body))
                                });
                            }
                            Err(e) => {
                                t.io_errors += 1;
                                t.first_failure.get_or_insert_with(|| e.to_string());
                                client = Client::connect(service.addr).unwrap();
                            }
                        }
                    }
                    t
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu1, self1) = (service.cpu(), cpu_seconds("/proc/self/stat"));
    let mut r = Run {
        conns,
        seconds: elapsed,
        verified: 0,
        not_valid: 0,
        http_errors: 0,
        io_errors: 0,
        exhausted: exhausted.load(Ordering::Relaxed),
        latencies_us: Vec::new(),
        server_cpu: cpu1 - cpu0,
        loader_cpu: self1 - self0,
        first_failure: None,
    };
    for t in tallies {
        r.verified += t.verified;
        r.not_valid += t.not_valid;
        r.http_errors += t.http_errors;
        r.io_errors += t.io_errors;
        r.latencies_us.extend(t.latencies_us);
        if r.first_failure.is_none() {
            r.first_failure = t.first_failure;
        }
    }
    r.latencies_us.sort_unstable();
    r
}

fn print_header() {
    println!(
        "| policy | connections | seconds | verified | verified/s | p50 ms | p99 ms | max ms | errors | service CPU µs/verification | load generator CPU µs/verification |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
}

fn print_run(policy: &str, r: &Run) {
    let errors = r.not_valid + r.http_errors + r.io_errors;
    let per = |cpu: f64| {
        if r.verified == 0 {
            f64::NAN
        } else {
            cpu * 1e6 / r.verified as f64
        }
    };
    println!(
        "| {policy} | {} | {:.1}{} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {errors} | {:.0} | {:.0} |",
        r.conns,
        r.seconds,
        if r.exhausted { " (pool used up)" } else { "" },
        r.verified,
        r.rate(),
        percentile(&r.latencies_us, 0.50),
        percentile(&r.latencies_us, 0.99),
        r.latencies_us.last().map_or(f64::NAN, |&m| f64::from(m) / 1000.0),
        per(r.server_cpu),
        per(r.loader_cpu),
    );
    if let Some(f) = &r.first_failure {
        let f: String = f.chars().take(300).collect();
        println!("|   first failure: {f} | | | | | | | | | | |");
    }
}

/// How many times `f(thread, i)` runs per second on `threads` threads in
/// `seconds`.
fn rate(threads: usize, seconds: f64, f: impl Fn(usize, usize) + Sync) -> f64 {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let f = &f;
    let total: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        for _ in 0..8 {
                            f(t, n);
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// `Checker::check` of `presented` (thread `t` starting at its own
/// offset), on `threads` threads for `seconds`: checks per second.
fn library_rate(
    checker: &Checker,
    view: &ChainView,
    presented: &[Presented],
    threads: usize,
    seconds: f64,
) -> f64 {
    let ask = Ask::default();
    rate(threads, seconds, |t, n| {
        let p = &presented[(t * 17 + n) % presented.len()];
        let checked = checker.check(view, p, &ask, vouch_verifier::now()).unwrap();
        assert!(checked.is_valid(), "{:?}", checked.reason);
    })
}

/// `VOUCH_HTTP_LOAD_SERIAL=K[,K…]`: on one thread, `K` presentations read
/// and prepared as [`Checker::check`] reads and prepares them, their
/// signatures checked as one batch ([`vouch_core::verify::check_batch`]),
/// each finished: what a batch of `K` costs with no thread waiting for
/// another, so the bound on what any batcher gets from batches of `K`.
/// Each batch is timed right after `2 K` raw `verify_strict`s (the
/// single-presentation limit's work for `K` presentations), for `seconds`
/// per `K`; the ratio of the two times, slice by slice, is the batch's
/// rate against the limit, and its median and quartiles are printed
/// (alternating this finely, the machine's changes of speed cancel).
fn serial_run(chain: &Chain, dir: &Path, rt: &tokio::runtime::Runtime, ks: &[usize], seconds: f64) {
    let mut v = Verifier::open(dir, None).unwrap();
    rt.block_on(v.sync(None)).unwrap();
    let view = v.view().unwrap();
    let (checker, _replica) = v.into_parts();
    let policy = checker
        .policy_file()
        .policy(&checker.config().node_vkey)
        .unwrap();
    let request = vouch_core::verify::Request {
        aud: AUD.to_owned(),
        nonce: None,
        claims: Vec::new(),
    };
    let presented = library_presentations(chain, rt);
    let (key, message, signature) = raw_input(chain);
    println!("| presentations per batch | slices | × limit, median | quartiles |");
    println!("| ---: | ---: | ---: | ---: |");
    let mut next = 0;
    for &k in ks {
        let mut ratios = Vec::new();
        let deadline = Instant::now() + Duration::from_secs_f64(seconds);
        while Instant::now() < deadline {
            let start = Instant::now();
            for _ in 0..2 * k {
                assert!(key.verify_strict(black_box(&message), &signature).is_ok());
            }
            let raw = start.elapsed();
            let now = vouch_verifier::now();
            let start = Instant::now();
            // Read as `Checker::check` reads them: each envelope decoded
            // straight into its parsed SD-JWT.
            let read: Vec<_> = (0..k)
                .map(|i| {
                    let p = &presented[(next + i) % presented.len()];
                    let decoded = envelope::decode_sd_jwt(&p.text).unwrap();
                    (
                        decoded.sd_jwt.unwrap(),
                        p.anchor.clone().or(decoded.anchor_proof),
                    )
                })
                .collect();
            let prepared: Vec<_> = read
                .iter()
                .map(|(sd_jwt, anchor)| {
                    vouch_core::verify::prepare_sd_jwt(
                        sd_jwt,
                        anchor.as_ref(),
                        &request,
                        &view,
                        &policy,
                        now,
                    )
                    .unwrap()
                })
                .collect();
            let sets: Vec<_> = prepared
                .iter()
                .filter_map(|p| p.signatures().cloned())
                .collect();
            // One alone is checked when finished, as the batcher does.
            assert!(k == 1 || vouch_core::verify::check_batch(&sets));
            for p in prepared {
                assert!(black_box(p.finish().unwrap()).is_valid());
            }
            drop(read);
            ratios.push(raw.as_secs_f64() / start.elapsed().as_secs_f64());
            next += k;
        }
        ratios.sort_by(f64::total_cmp);
        let q = |p: f64| ratios[((ratios.len() - 1) as f64 * p).round() as usize];
        println!(
            "| {k} | {} | {:.2} | {:.2}–{:.2} |",
            ratios.len(),
            q(0.5),
            q(0.25),
            q(0.75)
        );
    }
}

/// `CheckPool::submit` of `presented` from `tasks` async callers (task
/// `t` starting at its own offset) on one runtime thread for `seconds`:
/// checks per second.
fn pooled_rate(
    pool: &Arc<CheckPool>,
    view: &Arc<ChainView>,
    presented: &[Presented],
    tasks: usize,
    seconds: f64,
) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let total: usize = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for t in 0..tasks {
            let (pool, view, presented) = (Arc::clone(pool), Arc::clone(view), presented.to_vec());
            set.spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    let p = presented[(t * 17 + n) % presented.len()].clone();
                    let checked = pool
                        .submit(Arc::clone(&view), p, Ask::default())
                        .unwrap()
                        .wait()
                        .await
                        .unwrap();
                    assert!(checked.is_valid(), "{:?}", checked.reason);
                    n += 1;
                }
                n
            });
        }
        let mut total = 0;
        while let Some(n) = set.join_next().await {
            total += n.unwrap();
        }
        total
    });
    total as f64 / start.elapsed().as_secs_f64()
}

/// Presentations `Checker::check_many` gives on `threads` threads, each
/// checking 16 at a time (thread `t` starting at its own offset), for
/// `seconds`: checks per second.
fn many_rate(
    checker: &Checker,
    view: &ChainView,
    presented: &[Presented],
    threads: usize,
    seconds: f64,
) -> f64 {
    const AT_ONCE: usize = 16;
    let ask = Ask::default();
    AT_ONCE as f64
        * rate(threads, seconds, |t, n| {
            let items: Vec<_> = (0..AT_ONCE)
                .map(|i| {
                    (
                        view,
                        &presented[(t * 17 + n * AT_ONCE + i) % presented.len()],
                        &ask,
                    )
                })
                .collect();
            for checked in checker.check_many(&items, vouch_verifier::now()) {
                let checked = checked.unwrap();
                assert!(checked.is_valid(), "{:?}", checked.reason);
            }
        })
}

/// The library figures' presentations: 64 distinct ones (each its own
/// holder and KB-JWT nonce), as `VCH1:` envelopes, resolved.
fn library_presentations(chain: &Chain, rt: &tokio::runtime::Runtime) -> Vec<Presented> {
    (0..64)
        .map(|i| {
            let text = envelope::encode(&chain.present(i, &format!("library-{i:03}"))).unwrap();
            rt.block_on(Input::from_text(&text).unwrap().resolve())
                .unwrap()
        })
        .collect()
}

/// Raw's input: the issuer JWT of holder 0's credential (its signing input
/// is what a presentation's issuer signature covers), its key and
/// signature, checked once.
fn raw_input(
    chain: &Chain,
) -> (
    ed25519_dalek::VerifyingKey,
    Vec<u8>,
    ed25519_dalek::Signature,
) {
    let jwt = chain.credentials[0].jwt();
    let message = jwt.signing_input().to_vec();
    let signature = ed25519_dalek::Signature::from_slice(jwt.signature()).unwrap();
    let iss = chain.credentials[0].payload()["iss"].as_str().unwrap();
    let key = *DidKey::parse(iss).unwrap().verifying_key();
    key.verify_strict(&message, &signature).unwrap();
    (key, message, signature)
}

/// Medians of the library figures, per thread count.
struct LibraryRow {
    threads: usize,
    raw: f64,
    alone: f64,
    batched: f64,
    /// Presentations per multi-presentation batch, and the share of
    /// presentations that went in one.
    batch_size: f64,
    batched_share: f64,
    /// Through a [`CheckPool`], and its presentations per batch.
    pooled: f64,
    /// `Checker::check_many` of 16 at a time on each thread.
    many: f64,
    pool_batch: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The library under concurrency: raw `verify_strict`, `Checker::check`
/// alone and batched, on 1, 2 and 4 threads, in `rounds` interleaved
/// rounds of `seconds` per figure.
fn library_table(
    chain: &Chain,
    dir: &Path,
    rt: &tokio::runtime::Runtime,
    seconds: f64,
    rounds: usize,
) -> Vec<LibraryRow> {
    let mut v = Verifier::open(dir, None).unwrap();
    rt.block_on(v.sync(None)).unwrap();
    let view = v.view().unwrap();
    let (checker, _replica) = v.into_parts();
    let presented = library_presentations(chain, rt);
    let (key, message, signature) = raw_input(chain);

    let threads: Vec<usize> = std::env::var("VOUCH_HTTP_LOAD_LIBRARY_THREADS")
        .unwrap_or_else(|_| "1,2,4".into())
        .split(',')
        .map(|t| t.trim().parse().unwrap())
        .collect();
    let mut raw = vec![Vec::new(); threads.len()];
    let mut alone = vec![Vec::new(); threads.len()];
    let mut batched = vec![Vec::new(); threads.len()];
    let mut pooled = vec![Vec::new(); threads.len()];
    let mut many = vec![Vec::new(); threads.len()];
    let mut stats = vec![(0u64, 0u64, 0u64); threads.len()];
    let mut pool_stats = vec![(0u64, 0u64); threads.len()];
    let view = Arc::new(view);
    let mut checker = Some(checker);
    for round in 0..rounds {
        for (k, &t) in threads.iter().enumerate() {
            raw[k].push(rate(t, seconds, |_, _| {
                assert!(key.verify_strict(black_box(&message), &signature).is_ok());
            }));
            let mut c = checker.take().unwrap();
            c.set_batching(None);
            alone[k].push(library_rate(&c, &view, &presented, t, seconds));
            many[k].push(many_rate(&c, &view, &presented, t, seconds));
            // The pool: `t` async callers on one runtime thread, the
            // checks on one worker a core (batching off in its checker:
            // the pool batches).
            let shared = Arc::new(c);
            let pool = Arc::new(
                CheckPool::new(
                    Arc::clone(&shared),
                    None,
                    CheckPool::DEFAULT_MAX,
                    CheckPool::DEFAULT_MAX_QUEUED,
                )
                .unwrap(),
            );
            pooled[k].push(pooled_rate(&pool, &view, &presented, t, seconds));
            let ps = pool.stats();
            pool_stats[k].0 += ps.presentations;
            pool_stats[k].1 += ps.batches;
            drop(pool);
            let mut c = Arc::into_inner(shared).unwrap();
            c.set_batching(Some(library_batching()));
            batched[k].push(library_rate(&c, &view, &presented, t, seconds));
            let s = c.batcher().unwrap().stats();
            checker = Some(c);
            stats[k].0 += s.presentations;
            stats[k].1 += s.batches;
            stats[k].2 += s.presentations + s.alone;
            eprintln!(
                "  library round {round}, {t} thread(s): raw {:.0}/s, alone {:.0}/s, batched {:.0}/s ({s:?}), pooled {:.0}/s ({ps:?})",
                raw[k][round], alone[k][round], batched[k][round], pooled[k][round]
            );
        }
    }
    threads
        .iter()
        .enumerate()
        .map(|(k, &t)| LibraryRow {
            threads: t,
            raw: median(raw[k].clone()),
            alone: median(alone[k].clone()),
            batched: median(batched[k].clone()),
            batch_size: stats[k].0 as f64 / stats[k].1.max(1) as f64,
            pooled: median(pooled[k].clone()),
            many: median(many[k].clone()),
            pool_batch: pool_stats[k].0 as f64 / pool_stats[k].1.max(1) as f64,
            batched_share: stats[k].0 as f64 / stats[k].2.max(1) as f64,
        })
        .collect()
}

/// The batching of the library's batched figure: the service's default,
/// or `VOUCH_HTTP_LOAD_LIBRARY_BATCH=MAX,MICROS` for batches of up to `MAX`
/// open `MICROS` µs, not adaptive.
fn library_batching() -> BatchConfig {
    match std::env::var("VOUCH_HTTP_LOAD_LIBRARY_BATCH") {
        Ok(spec) => {
            let (max, micros) = spec.split_once(',').unwrap();
            BatchConfig {
                max: max.trim().parse().unwrap(),
                window: Duration::from_micros(micros.trim().parse().unwrap()),
                adaptive: false,
            }
        }
        Err(_) => BatchConfig::DEFAULT,
    }
}

/// `n` checks of `presented` on this thread (for instruction counts).
#[inline(never)]
fn measured_checks(
    checker: &Checker,
    view: &ChainView,
    presented: &[Presented],
    t: usize,
    n: usize,
) {
    let ask = Ask::default();
    for i in 0..n {
        let p = &presented[(t * 17 + i) % presented.len()];
        let checked = checker.check(view, p, &ask, vouch_verifier::now()).unwrap();
        assert!(checked.is_valid(), "{:?}", checked.reason);
    }
}

/// `n` raw `verify_strict`s (for instruction counts).
#[inline(never)]
fn measured_raw(
    key: &ed25519_dalek::VerifyingKey,
    message: &[u8],
    signature: &ed25519_dalek::Signature,
    n: usize,
) {
    for _ in 0..n {
        assert!(key.verify_strict(black_box(message), signature).is_ok());
    }
}

/// `n` checks of a block's signed note (node signature and cosignatures).
#[inline(never)]
fn measured_note(trust: &vouch_core::log::TrustPolicy, note: &str, n: usize) {
    for _ in 0..n {
        assert!(trust
            .with_need(0)
            .verify(black_box(note.as_bytes()))
            .is_ok());
    }
}

/// `VOUCH_HTTP_LOAD_CALLGRIND=THREADS,N,BATCH`: `N` checks on each of
/// `THREADS` threads, batching off (`BATCH` 0), adaptive (1, the default
/// configuration) or in batches of exactly `BATCH` (2 or more), and `N` raw
/// `verify_strict`s, in the `measured_*` functions, for
/// `valgrind --tool=callgrind --toggle-collect='http_load::measured_*'`.
fn callgrind_run(chain: &Chain, dir: &Path, rt: &tokio::runtime::Runtime, spec: &str) {
    let spec: Vec<usize> = spec.split(',').map(|x| x.trim().parse().unwrap()).collect();
    let (threads, n, batch) = (spec[0], spec[1], spec[2]);
    let mut v = Verifier::open(dir, None).unwrap();
    rt.block_on(v.sync(None)).unwrap();
    let view = v.view().unwrap();
    let (mut checker, _replica) = v.into_parts();
    checker.set_batching(match batch {
        0 => None,
        1 => Some(BatchConfig::DEFAULT),
        // Batches of exactly `batch` (valgrind runs one thread at a time,
        // so adaptive batches would rarely form).
        k => Some(BatchConfig {
            max: k,
            window: Duration::from_secs(30),
            adaptive: false,
        }),
    });
    let presented = library_presentations(chain, rt);
    // The view's cosignature check is made once per view: made here,
    // outside the count, as a running service makes it at its first check.
    checker
        .check(&view, &presented[0], &Ask::default(), vouch_verifier::now())
        .unwrap();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (checker, view, presented) = (&checker, &view, &presented);
            s.spawn(move || measured_checks(checker, view, presented, t, n));
        }
    });
    let (key, message, signature) = raw_input(chain);
    measured_raw(&key, &message, &signature, n);
    // What each check cost before the cosignature check was made once per
    // view: the block's signed note checked under the trust policy.
    let trust = checker
        .policy_file()
        .policy(&checker.config().node_vkey)
        .unwrap()
        .trust;
    measured_note(&trust, view.note(), n);
    println!(
        "callgrind: {} checks ({threads} thread(s) × {n}, batching {}), {n} raw verify_strict; {:?}",
        threads * n,
        match batch {
            0 => "off".to_owned(),
            1 => "adaptive".to_owned(),
            k => format!("batches of {k}"),
        },
        checker.batcher().map(|b| b.stats())
    );
}

fn print_library(rows: &[LibraryRow]) {
    println!(
        "| threads | raw verify_strict/s | limit (raw ÷ 2)/s | Checker::check alone/s | × limit | \
         batched/s | × limit | presentations per batch | share batched | pooled/s | × limit | \
         presentations per pool batch | check_many (16)/s | × limit |"
    );
    println!(
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for r in rows {
        let limit = r.raw / 2.0;
        println!(
            "| {} | {:.0} | {limit:.0} | {:.0} | {:.2} | {:.0} | {:.2} | {:.1} | {:.0}% | {:.0} | {:.2} | {:.1} | {:.0} | {:.2} |",
            r.threads,
            r.raw,
            r.alone,
            r.alone / limit,
            r.batched,
            r.batched / limit,
            r.batch_size,
            100.0 * r.batched_share,
            r.pooled,
            r.pooled / limit,
            r.pool_batch,
            r.many,
            r.many / limit
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let seconds: f64 = env_or("VOUCH_HTTP_LOAD_SECONDS", 10.0);
    let conns: Vec<usize> = std::env::var("VOUCH_HTTP_LOAD_CONNS")
        .unwrap_or_else(|_| "1,4,16,64".into())
        .split(',')
        .map(|c| c.trim().parse().unwrap())
        .collect();
    let pool: usize = env_or("VOUCH_HTTP_LOAD_POOL", 8_000);
    let scans: usize = env_or("VOUCH_HTTP_LOAD_SCANS", 200);
    let rounds: usize = env_or("VOUCH_HTTP_LOAD_ROUNDS", 3);
    let library_seconds: f64 = env_or("VOUCH_HTTP_LOAD_LIBRARY_SECONDS", 2.0);
    let parts =
        std::env::var("VOUCH_HTTP_LOAD_PARTS").unwrap_or_else(|_| "library,http,scan".into());
    let part = |name: &str| parts.split(',').any(|p| p.trim() == name);

    let root = TempDir::new();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let chain = rt.block_on(chain(&root.0));
    let sample = envelope::encode(&chain.present(0, "library-figure-nonce")).unwrap();
    println!(
        "verifier over HTTP: {} transcripts of 12 courses, presentations of 3 courses \
         ({} characters as VCH1: text), {seconds} s per run",
        HOLDERS,
        sample.len()
    );

    // The library figure, in this process, on the no-nonce verifier.
    let open_policy = PolicyFile {
        require_nonce: false,
        ..PolicyFile::default()
    };
    let open_dir = root.0.join("hr-open");
    rt.block_on(verifier_dir(&chain, &open_dir, &open_policy));
    if let Ok(k) = std::env::var("VOUCH_HTTP_LOAD_SERIAL") {
        let ks: Vec<usize> = k.split(',').map(|x| x.trim().parse().unwrap()).collect();
        serial_run(&chain, &open_dir, &rt, &ks, library_seconds);
        return;
    }
    if let Ok(spec) = std::env::var("VOUCH_HTTP_LOAD_CALLGRIND") {
        callgrind_run(&chain, &open_dir, &rt, &spec);
        return;
    }
    let library = if part("library") {
        let rows = library_table(&chain, &open_dir, &rt, library_seconds, rounds);
        println!(
            "library (in process; medians of {rounds} interleaved rounds of {library_seconds} s):"
        );
        print_library(&rows);
        rows
    } else {
        Vec::new()
    };
    if !part("http") && !part("scan") {
        return;
    }

    let mut runs: Vec<(&str, Run)> = Vec::new();
    print_header();

    // No nonces: a pool of distinct presentations, cycled.
    if part("http") {
        let service = Service::start(&open_dir, &root.0.join("hr-open.log"));
        let nonces: Vec<String> = (0..2000)
            .map(|i| format!("load-test-nonce-{i:06}"))
            .collect();
        let requests = verify_requests(service.addr, &chain.envelopes(&nonces), None);
        run(&service, &requests, 4, 1.0, true);
        for &c in &conns {
            let r = run(&service, &requests, c, seconds, true);
            print_run("no nonces", &r);
            runs.push(("no nonces", r));
        }
        service.stop();
    }

    // Nonces: every presentation answers its own request, redeemed once.
    // The requests are issued through the library into the service's nonce
    // book before it starts (a service restart per run): issuing them over
    // HTTP draws a QR PNG for each, too slow for a pool of this size (its
    // rate is measured below).
    let nonce_policy = PolicyFile {
        max_open_requests: vouch_verifier::policy::MAX_OPEN_REQUESTS,
        request_ttl: 3600,
        ..PolicyFile::default()
    };
    let log = root.0.join("hr-nonces.log");
    for &c in conns.iter().filter(|_| part("http")) {
        // A fresh verifier per run: issuing a request counts the open ones
        // (a full scan of the nonce book), so leftovers would slow the next
        // pool's issuing.
        let nonce_dir = root.0.join(format!("hr-nonces-{c}"));
        rt.block_on(verifier_dir(&chain, &nonce_dir, &nonce_policy));
        let t = Instant::now();
        let nonces = issue_nonces(&nonce_dir, pool);
        let issued = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let envelopes = chain.envelopes(&nonces);
        let made = t.elapsed().as_secs_f64();
        let service = Service::start(&nonce_dir, &log);
        let requests = verify_requests(service.addr, &envelopes, Some(&nonces));
        eprintln!(
            "  {c} connections: {pool} requests issued in {issued:.1} s ({:.0}/s, library), \
             presentations made in {made:.1} s",
            pool as f64 / issued
        );
        let r = run(&service, &requests, c, seconds, false);
        print_run("nonces", &r);
        runs.push(("nonces", r));
        service.stop();
    }

    if !part("scan") {
        println!();
        println!("summary:");
        print_header();
        for (policy, r) in &runs {
            print_run(policy, r);
        }
        if !library.is_empty() {
            println!("library:");
            print_library(&library);
        }
        return;
    }

    // Scan: one wallet QR PNG at a time, frame to verdict; and requests
    // issued over HTTP (`POST /api/requests`, 8 connections).
    let nonce_dir = root.0.join("hr-scan");
    rt.block_on(verifier_dir(&chain, &nonce_dir, &nonce_policy));
    let nonces = issue_nonces(&nonce_dir, scans);
    let frames: Vec<Vec<u8>> = chain
        .envelopes(&nonces)
        .iter()
        .map(|e| {
            let code = vouch_core::qr::qr_code(e, vouch_core::qr::EcLevel::M).unwrap();
            vouch_core::qr::png(&code, 8, 4).unwrap()
        })
        .collect();
    let version = vouch_core::qr::version(
        &vouch_core::qr::qr_code(&sample, vouch_core::qr::EcLevel::M).unwrap(),
    );
    let service = Service::start(&nonce_dir, &log);
    let scan_requests: Vec<Vec<u8>> = frames
        .iter()
        .zip(&nonces)
        .map(|(png, n)| {
            post(
                service.addr,
                &format!("/api/scan?nonce={n}"),
                "image/png",
                png,
            )
        })
        .collect();
    let scan = run(&service, &scan_requests, 1, 600.0, false);
    let t = Instant::now();
    let over_http = issue_requests(service.addr, scans).len();
    let requests_rate = over_http as f64 / t.elapsed().as_secs_f64();
    service.stop();

    println!();
    println!("summary:");
    print_header();
    for (policy, r) in &runs {
        print_run(policy, r);
    }
    println!();
    println!(
        "/api/scan, one wallet QR PNG at a time (version {version}, {}×{} px, {} bytes): \
         {} frames, {} verified, p50 {:.1} ms, p99 {:.1} ms, errors {}",
        (version as usize * 4 + 17 + 8) * 8,
        (version as usize * 4 + 17 + 8) * 8,
        frames[0].len(),
        scan_requests.len(),
        scan.verified,
        percentile(&scan.latencies_us, 0.50),
        percentile(&scan.latencies_us, 0.99),
        scan.not_valid + scan.http_errors + scan.io_errors,
    );
    if let Some(f) = &scan.first_failure {
        println!(
            "  first failure: {}",
            f.chars().take(300).collect::<String>()
        );
    }
    println!("POST /api/requests (a request and its QR PNG), 8 connections: {requests_rate:.0}/s");
    if !library.is_empty() {
        println!("library:");
        print_library(&library);
    }
}

//! Chain throughput: append with flush (one entry per flush, and group
//! commit), replica sync over loopback HTTP with every signature, rule, block
//! and root checked, reopen time (node and replica), disk bytes per entry,
//! resident memory (peak).
//!
//! `cargo bench -p vouch-registry --bench chain` (sizes from
//! `VOUCH_CHAIN_BENCH_SIZES`, default `100000,1000000`). Without `--bench`
//! (as `cargo test --benches` runs it) it does one small size as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/memory.rs"]
mod support_memory;
use support_memory::memory;

use std::sync::Arc;
use std::time::Instant;

use ed25519_dalek::SigningKey;
use rand::rngs::StdRng;
use rand::SeedableRng;
use vouch_core::chain::{Action, Entry};
use vouch_core::DidKey;
use vouch_registry::node::{Node, NodeConfig};
use vouch_registry::replica::{Replica, Trust};
use vouch_registry::{keys, now, testkit};

/// A directory removed when dropped; the node or replica goes in `node`.
struct Dir {
    _root: tempfile::TempDir,
    path: std::path::PathBuf,
}

fn dir(name: &str) -> Dir {
    let root = tempfile::Builder::new()
        .prefix(&format!("vouch-bench-{name}-"))
        .tempdir()
        .unwrap();
    let path = root.path().join("node");
    Dir { _root: root, path }
}

fn new_node(path: &std::path::Path) -> (Node, SigningKey, SigningKey) {
    let config = NodeConfig {
        origin: "bench.example/registry".into(),
        witnesses: vec![],
        need: 0,
    };
    Node::init(path, config, now(), &mut StdRng::seed_from_u64(1)).unwrap();
    let authority = keys::read(&path.join("authority.key")).unwrap();
    let issuer = SigningKey::from_bytes(&[2; 32]);
    let node = Node::open(path).unwrap();
    let accredit = Entry::sign(
        &authority,
        1,
        now(),
        Action::Accredit {
            issuer: DidKey::from_public_key(&issuer.verifying_key())
                .as_str()
                .into(),
            name: "Bench University".into(),
            kinds: vec!["transcript".into()],
        },
    );
    node.submit(accredit.as_bytes(), now()).unwrap();
    (node, authority, issuer)
}

/// `n` anchor entries by `issuer`, signed on all cores.
fn anchors(issuer: &SigningKey, n: u64) -> Vec<Entry> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let t = now();
    let per = n.div_ceil(threads);
    let list = vouch_core::chain::ListUri::format(
        "https://bench.example",
        vouch_core::DidKey::from_public_key(&issuer.verifying_key()).as_str(),
        "1",
    );
    let list = &list;
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..threads)
            .map(|k| {
                s.spawn(move || {
                    (k * per..((k + 1) * per).min(n))
                        .map(|seq| {
                            Entry::sign(
                                issuer,
                                seq,
                                t,
                                Action::Anchor {
                                    list: list.clone(),
                                    root: format!("{:064x}", seq),
                                    count: 100,
                                    first: seq * 100,
                                    last: seq * 100 + 99,
                                },
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts.into_iter().flat_map(|p| p.join().unwrap()).collect()
    })
}

fn per_entry_flush(count: u64) {
    let d = dir("flush");
    let (node, _, issuer) = new_node(&d.path);
    let entries = anchors(&issuer, count);
    let start = Instant::now();
    for e in &entries {
        node.submit(e.as_bytes(), now()).unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "append, one flush per entry: {count} entries in {secs:.2} s = {:.0} entries/s",
        count as f64 / secs
    );
}

fn run(n: u64, rt: &tokio::runtime::Runtime) {
    println!("== {n} entries ==");
    let d = dir(&format!("node{n}"));
    let (node, _, issuer) = new_node(&d.path);
    let t = Instant::now();
    let entries = anchors(&issuer, n - 2);
    println!(
        "signing {} entries (setup): {:.1} s",
        entries.len(),
        t.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    for chunk in entries.chunks(10_000) {
        let bytes: Vec<&[u8]> = chunk.iter().map(Entry::as_bytes).collect();
        node.submit_batch(&bytes, now()).unwrap();
    }
    node.seal(now()).unwrap();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "append, group commit of 10,000 per flush: {:.2} s = {:.0} entries/s",
        secs,
        entries.len() as f64 / secs
    );
    drop(entries);
    println!("memory after append: {}", memory());
    let vkey = node.vkey();
    let disk = node.store().disk_bytes().unwrap();
    println!(
        "node disk: {:.1} MB = {:.0} bytes/entry",
        disk as f64 / 1e6,
        disk as f64 / n as f64
    );
    drop(node);
    std::thread::sleep(std::time::Duration::from_millis(500));
    let t = Instant::now();
    let mut node = Node::open(&d.path).unwrap();
    println!(
        "reopen (state snapshot + head check): {:.3} s",
        t.elapsed().as_secs_f64()
    );
    if reopen_twice() {
        // sled replays its log since the last open when it opens: the
        // second open shows what is left without that.
        drop(node);
        std::thread::sleep(std::time::Duration::from_millis(500));
        let t = Instant::now();
        node = Node::open(&d.path).unwrap();
        println!(
            "reopen again (sled's log already replayed): {:.3} s",
            t.elapsed().as_secs_f64()
        );
    }
    println!("memory after node reopen: {}", memory());

    let node = Arc::new(node);
    let r = dir(&format!("replica{n}"));
    rt.block_on(async {
        let server = testkit::serve_node(node.clone()).await.unwrap();
        let client = server.client();
        let trust = Trust {
            node_vkey: vkey,
            witnesses: vec![],
            need: 0,
        };
        let mut replica = Replica::open(&r.path, trust.policy().unwrap()).unwrap();
        println!("memory before sync: {}", memory());
        let cpu = cpu_seconds();
        let start = Instant::now();
        let report = replica.sync(&client).await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu;
        assert_eq!(report.to, n);
        println!(
            "replica sync over loopback HTTP, all checked: {n} entries in {secs:.2} s = {:.0} entries/s",
            n as f64 / secs
        );
        println!(
            "  CPU time of the process (node serving + replica) during the sync: {cpu:.2} s = {:.1} µs/entry",
            cpu * 1e6 / n as f64
        );
        println!("  phases: {:?}", report.timings);
        println!(
            "replica disk: {:.0} bytes/entry",
            replica.store().disk_bytes().unwrap() as f64 / n as f64
        );
        println!("memory after sync: {}", memory());
        drop(replica);
        println!("memory after dropping the replica: {}", memory());
        std::thread::sleep(std::time::Duration::from_millis(500));
        let t = Instant::now();
        let replica = Replica::open(&r.path, trust.policy().unwrap()).unwrap();
        println!(
            "replica reopen (head check, state snapshot, anchor records): {:.3} s",
            t.elapsed().as_secs_f64()
        );
        assert_eq!(replica.head().unwrap().block.size, n);
        println!("memory after replica reopen: {}", memory());
        let t = Instant::now();
        let view = replica.view().unwrap();
        assert!(view.anchor(n / 2).is_some());
        println!(
            "view and one anchor look-up after reopen: {:.3} s",
            t.elapsed().as_secs_f64()
        );
        drop(view);
        if reopen_twice() {
            drop(replica);
            std::thread::sleep(std::time::Duration::from_millis(500));
            let t = Instant::now();
            let replica = Replica::open(&r.path, trust.policy().unwrap()).unwrap();
            println!(
                "replica reopen again (sled's log already replayed): {:.3} s",
                t.elapsed().as_secs_f64()
            );
            drop(replica);
        }
    });
    drop(node);
    println!("memory after dropping the node: {}", memory());
}

/// Whether to open each store a second time (`VOUCH_CHAIN_BENCH_REOPEN_TWICE=1`)
/// to split sled's log replay from the rest of the reopen.
fn reopen_twice() -> bool {
    std::env::var("VOUCH_CHAIN_BENCH_REOPEN_TWICE").is_ok_and(|v| v == "1")
}

/// User + system CPU time of this process so far, in seconds (Linux,
/// `/proc/self/stat`, clock ticks of 1/100 s).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (in parentheses): utime and stime
    // are the 12th and 13th of them.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: Vec<f64> = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse().ok())
        .collect();
    ticks.iter().sum::<f64>() / 100.0
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<u64> = if full {
        std::env::var("VOUCH_CHAIN_BENCH_SIZES")
            .unwrap_or_else(|_| "100000,1000000".into())
            .split(',')
            .map(|s| s.trim().parse().expect("VOUCH_CHAIN_BENCH_SIZES: numbers"))
            .collect()
    } else {
        vec![2_000]
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    per_entry_flush(if full { 2_000 } else { 50 });
    for n in sizes {
        run(n, &rt);
    }
}

//! sled against redb for what a replica writes when it syncs (issue 14
//! §3): the same tile records (256 entries of 436 bytes: a 372-byte entry
//! and its two tree hashes) under the same keys, one atomic write per
//! range of 10,000 entries (a sled batch, a redb write transaction that
//! is not made durable), and one durable write at the end (sled's flush,
//! a redb commit with `Durability::Immediate`); then the store is closed
//! and opened twice, and every tile read back once.
//!
//! A bench-only experiment: the chain store stays on sled.
//! `VOUCH_STORE_BENCH_TILE=N` writes records of N entries instead of 256.
//!
//! `VOUCH_STORE_BENCH_ENGINE=sled|redb VOUCH_STORE_BENCH_ENTRIES=1000000
//! cargo bench -p vouch-registry --bench store_engines` (one engine per
//! run, so that each has the process's memory to itself). Without
//! `--bench` (as `cargo test --benches` runs it) it writes 20,000 entries
//! with both, as a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "support/memory.rs"]
mod support_memory;
use support_memory::memory;

use std::path::Path;
use std::time::Instant;

/// Entries per tile record (the chain store's: 256), or
/// `VOUCH_STORE_BENCH_TILE` (to see what smaller records change).
fn tile_width() -> u64 {
    std::env::var("VOUCH_STORE_BENCH_TILE")
        .map_or(256, |n| n.parse().expect("VOUCH_STORE_BENCH_TILE"))
}
/// Entries per atomic write (a replica's range).
const RANGE: u64 = 10_000;
/// Bytes of one entry with its tree hashes in a tile record.
const ENTRY: usize = 372 + 64;
/// sled's page cache and log segment size, as the chain store opens it.
const SLED_CACHE: u64 = 256 << 20;
const SLED_SEGMENT: usize = 8 << 20;

const TILES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("tiles");

/// The tile record of tile `t` (its bytes vary with `t`).
fn tile(t: u64, width: u64) -> Vec<u8> {
    let len = width as usize * ENTRY;
    let mut out = Vec::with_capacity(len);
    let mut x = t.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn key(t: u64) -> [u8; 9] {
    let mut k = [b't'; 9];
    k[1..].copy_from_slice(&t.to_be_bytes());
    k
}

/// The tiles each range completes: ranges of `RANGE` entries, tiles of
/// `width`.
fn ranges(entries: u64, width: u64) -> Vec<std::ops::Range<u64>> {
    let mut out = Vec::new();
    let mut done = 0;
    let mut at = 0;
    while at < entries {
        let end = (at + RANGE).min(entries);
        let tiles = end / width;
        out.push(done..tiles);
        done = tiles;
        at = end;
    }
    out
}

trait Engine {
    const NAME: &'static str;
    fn create(dir: &Path) -> Self;
    fn open(dir: &Path) -> Self;
    /// One atomic, not yet durable, write of these tiles.
    fn write(&mut self, tiles: &[(u64, Vec<u8>)]);
    /// Makes everything written durable.
    fn sync(&mut self);
    /// Reads every tile once; returns the bytes read.
    fn read_all(&self) -> u64;
}

struct Sled(sled::Db);

impl Sled {
    fn config(dir: &Path) -> sled::Config {
        sled::Config::new()
            .path(dir.join("sled"))
            .cache_capacity(SLED_CACHE)
            .segment_size(SLED_SEGMENT)
    }
}

impl Engine for Sled {
    const NAME: &'static str = "sled 0.34";
    fn create(dir: &Path) -> Self {
        Sled(Self::config(dir).open().unwrap())
    }
    fn open(dir: &Path) -> Self {
        Self::create(dir)
    }
    fn write(&mut self, tiles: &[(u64, Vec<u8>)]) {
        let mut batch = sled::Batch::default();
        for (t, bytes) in tiles {
            batch.insert(&key(*t), bytes.as_slice());
        }
        self.0.apply_batch(batch).unwrap();
    }
    fn sync(&mut self) {
        self.0.flush().unwrap();
    }
    fn read_all(&self) -> u64 {
        self.0
            .range(key(0)..)
            .map(|kv| kv.unwrap().1.len() as u64)
            .sum()
    }
}

struct Redb(redb::Database);

impl Engine for Redb {
    const NAME: &'static str = "redb 2.6";
    fn create(dir: &Path) -> Self {
        Redb(redb::Database::create(dir.join("redb")).unwrap())
    }
    fn open(dir: &Path) -> Self {
        Redb(redb::Database::open(dir.join("redb")).unwrap())
    }
    fn write(&mut self, tiles: &[(u64, Vec<u8>)]) {
        let mut tx = self.0.begin_write().unwrap();
        tx.set_durability(redb::Durability::None);
        {
            let mut table = tx.open_table(TILES).unwrap();
            for (t, bytes) in tiles {
                table.insert(*t, bytes.as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    fn sync(&mut self) {
        let tx = self.0.begin_write().unwrap();
        tx.open_table(TILES).unwrap();
        tx.commit().unwrap();
    }
    fn read_all(&self) -> u64 {
        let tx = self.0.begin_read().unwrap();
        let table = tx.open_table(TILES).unwrap();
        table
            .range(0..)
            .unwrap()
            .map(|kv| kv.unwrap().1.value().len() as u64)
            .sum()
    }
}

fn run<E: Engine>(entries: u64) {
    let root = tempfile::Builder::new()
        .prefix("vouch-bench-engines-")
        .tempdir()
        .unwrap();
    let dir = root.path();
    let width = tile_width();
    println!("== {}: {entries} entries, {width} per record ==", E::NAME);
    println!("memory before: {}", memory());
    let plan = ranges(entries, width);
    let mut written = 0u64;
    let mut spent = std::time::Duration::ZERO;
    let mut db = E::create(dir);
    for tiles in plan {
        // Making the records is not the engine's time.
        let records: Vec<(u64, Vec<u8>)> = tiles.map(|t| (t, tile(t, width))).collect();
        written += records.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
        let t = Instant::now();
        db.write(&records);
        spent += t.elapsed();
    }
    let t = Instant::now();
    db.sync();
    let synced = t.elapsed();
    println!(
        "write {:.0} MB of tile records in ranges of {RANGE} entries: {:.2} s, durable write at the end {:.3} s",
        written as f64 / 1e6,
        spent.as_secs_f64(),
        synced.as_secs_f64()
    );
    println!("memory after writing: {}", memory());
    drop(db);
    println!(
        "disk: {:.0} MB = {:.0} bytes/entry",
        disk(dir) as f64 / 1e6,
        disk(dir) as f64 / entries as f64
    );
    for open in ["open", "open again"] {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let t = Instant::now();
        let db = E::open(dir);
        let opened = t.elapsed();
        let t = Instant::now();
        let read = db.read_all();
        println!(
            "{open}: {:.3} s; reading every tile: {:.3} s ({:.0} MB)",
            opened.as_secs_f64(),
            t.elapsed().as_secs_f64(),
            read as f64 / 1e6
        );
        assert_eq!(read, written);
    }
    println!("memory after: {}", memory());
}

/// Bytes of the files under `dir`.
fn disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                disk(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    if !full {
        run::<Sled>(20_000);
        run::<Redb>(20_000);
        return;
    }
    let entries = std::env::var("VOUCH_STORE_BENCH_ENTRIES")
        .map_or(1_000_000, |n| n.parse().expect("VOUCH_STORE_BENCH_ENTRIES"));
    match std::env::var("VOUCH_STORE_BENCH_ENGINE").as_deref() {
        Ok("redb") => run::<Redb>(entries),
        Ok("sled") | Err(_) => run::<Sled>(entries),
        Ok(other) => panic!("VOUCH_STORE_BENCH_ENGINE: sled or redb, not {other}"),
    }
}

//! Batch issuance throughput: N transcripts (12 courses each) from CSV to
//! one JSON Lines archive, then to one file per credential, anchoring
//! included, on the embedded registry, as `vouch-issuer issue` runs it
//! (every row checked, then read again while signing, by the reader that
//! checked it, so its cells are not checked twice); compared with the
//! raw ed25519-dalek sign rate measured in the same run.
//!
//! `cargo bench -p vouch-issuer --bench issue` (N from `VOUCH_ISSUE_BENCH_N`,
//! default 100000; `VOUCH_ISSUE_BENCH_FORMATS=jsonl` or `files` issues only
//! that output, for a profile of one). Without `--bench` it issues 200 as
//! a smoke test.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use ed25519_dalek::{Signer as _, SigningKey};
use vouch_core::DidKey;
use vouch_issuer::archive;
use vouch_issuer::input;
use vouch_issuer::issuer::{self, BatchRows, Issuer, OutputFormat, OutputOptions, Progress};
use vouch_issuer::keystore::Cost;
use vouch_issuer::template;

fn csv(n: usize) -> Vec<u8> {
    let holders: Vec<String> = (0..1000u32)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_be_bytes());
            DidKey::from_public_key(&SigningKey::from_bytes(&seed).verifying_key())
                .as_str()
                .to_owned()
        })
        .collect();
    let mut text = String::from(
        "holder,institution,student_name,student_id,programme,degree,award_date,gpa,courses\n",
    );
    let grades = ["A", "B", "C", "A", "B"];
    for i in 0..n {
        let courses: Vec<String> = (0..12)
            .map(|c| {
                format!(
                    "CS{c:03}|Course number {c}|6|{}|{}",
                    grades[(i + c) % grades.len()],
                    if c < 6 { "2024-S1" } else { "2025-S1" }
                )
            })
            .collect();
        text.push_str(&format!(
            "{},University of Example,Student {i},S{i:08},Computer Science,Bachelor of Science,2025-07-15,3.{:02},\"{}\"\n",
            holders[i % holders.len()],
            i % 100,
            courses.join("; ")
        ));
    }
    text.into_bytes()
}

/// CPU seconds (user + system) this process has used so far, from
/// `/proc/self/stat` (Linux; clock ticks of 1/100 s). On a shared machine
/// the wall clock also counts other processes' turns; this does not.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name (which is in parentheses).
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = fields.get(11)?.parse().ok()?;
            let stime: f64 = fields.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

/// One phase: its name, when it started (wall and CPU), how long it took.
type Phase = (String, Instant, f64, Option<(Duration, f64)>);

/// Records how long each phase of the pipeline took, in wall and CPU time.
struct Phases(std::sync::Mutex<Vec<Phase>>);

impl Progress for Phases {
    fn start(&self, phase: &str, _: u64) {
        self.0
            .lock()
            .unwrap()
            .push((phase.to_owned(), Instant::now(), cpu_seconds(), None));
    }
    fn step(&self) {}
    fn finish(&self) {
        if let Some(last) = self.0.lock().unwrap().last_mut() {
            last.3 = Some((last.1.elapsed(), cpu_seconds() - last.2));
        }
    }
}

/// Raw signatures per second of wall time and per second of CPU time.
fn raw_sign_rate(message: &[u8]) -> (f64, f64) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let start = Instant::now();
    let cpu = cpu_seconds();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..100 {
            std::hint::black_box(key.sign(std::hint::black_box(message)));
        }
        n += 100;
    }
    (
        n as f64 / start.elapsed().as_secs_f64(),
        n as f64 / (cpu_seconds() - cpu).max(0.01),
    )
}

/// Peak resident memory of this process so far (Linux), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Issues the CSV at `input_path` as one batch into `root/<label>`, as the
/// CLI does (scan, then read again while signing); returns the seconds
/// and CPU seconds taken and one credential's issuer JWT. Never inlined:
/// callgrind's `--dump-before=issue::run` profiles each call alone.
#[inline(never)]
fn run(
    rt: &tokio::runtime::Runtime,
    root: &std::path::Path,
    input_path: &std::path::Path,
    n: usize,
    format: OutputFormat,
    label: &str,
) -> (f64, f64, String) {
    let dir = root.join(format!("issuer-{label}"));
    issuer::init(&dir, "Bench University", None, "bench", Cost::TEST).unwrap();
    let template = template::find("transcript").unwrap();
    let iss = Issuer::open(&dir, "bench").unwrap();
    let phases = Phases(std::sync::Mutex::new(Vec::new()));
    let out = root.join(format!("out-{label}"));
    let start = Instant::now();
    let cpu = cpu_seconds();
    let bytes = std::fs::read(input_path).unwrap();
    let csv = input::CsvRows::new(&bytes, &template).unwrap();
    let scan = csv.scan(&phases).unwrap();
    assert!(scan.errors.is_empty());
    let id = issuer::batch_id(&template, &bytes, false);
    let options = OutputOptions {
        out: out.clone(),
        qr: false,
        format,
    };
    let rows = BatchRows::Csv {
        csv: &csv,
        valid: &scan.valid,
    };
    let report = rt
        .block_on(iss.issue_batch(&template, &id, rows, &options, &phases))
        .unwrap();
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu;
    assert_eq!(report.issued, n);
    assert_eq!(issuer::check_manifest(&out, false).unwrap(), 1);
    let sample = match &report.archive {
        Some(archive) => {
            archive::read(archive)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .sd_jwt
        }
        None => std::fs::read_to_string(
            out.join(
                serde_json::from_slice::<serde_json::Value>(
                    &std::fs::read(out.join("manifest.json")).unwrap(),
                )
                .unwrap()["credentials"][0]["file"]
                    .as_str()
                    .unwrap(),
            ),
        )
        .unwrap(),
    };
    let output = match &report.archive {
        Some(a) => format!(
            "one JSON Lines file ({:.0} MB)",
            std::fs::metadata(a).unwrap().len() as f64 / 1e6
        ),
        None => format!("{n} files"),
    };
    println!(
        "{n} transcripts (12 courses, 18 disclosures each) CSV -> {output} + manifest, anchored: {secs:.2} s = {:.0} credentials/s ({cpu:.2} s of CPU)",
        n as f64 / secs
    );
    let mut in_phases = 0.0;
    for (name, _, _, took) in phases.0.lock().unwrap().iter() {
        let (wall, cpu) = took.unwrap_or_default();
        in_phases += wall.as_secs_f64();
        println!("  {name}: {:.2} s ({cpu:.2} s of CPU)", wall.as_secs_f64());
    }
    // Reading the CSV, the batch id, the journal, the accreditation
    // check, the pending lines' last sync (after the signing phase), the
    // tree, the anchor entry: what no phase reports.
    println!("  outside the phases: {:.2} s", secs - in_phases);
    if let Some(mb) = peak_rss_mb() {
        println!("  peak RSS of the bench process so far: {mb:.0} MB");
    }
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&dir);
    (secs, cpu, sample.split('~').next().unwrap().to_owned())
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n: usize = if full {
        std::env::var("VOUCH_ISSUE_BENCH_N")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000)
    } else {
        200
    };
    let tmp = tempfile::Builder::new()
        .prefix("vouch-issue-bench-")
        .tempdir()
        .unwrap();
    let root = tmp.path();
    let input_path = root.join("transcripts.csv");
    std::fs::write(&input_path, csv(n)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let formats = std::env::var("VOUCH_ISSUE_BENCH_FORMATS").unwrap_or_default();
    let wanted = |label: &str| formats.is_empty() || formats.split(',').any(|f| f == label);
    println!("== vouch-issuer batch issuance ==");
    let mut runs = Vec::new();
    let mut jwt = String::new();
    for (format, label) in [
        (OutputFormat::Jsonl, "jsonl"),
        (OutputFormat::Files, "files"),
    ] {
        if wanted(label) {
            let (secs, cpu, sample) = run(&rt, root, &input_path, n, format, label);
            runs.push((label, secs, cpu));
            jwt = sample;
        }
    }
    let (raw, raw_cpu) = raw_sign_rate(jwt.as_bytes());
    let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
    println!(
        "  raw ed25519 sign of the {}-byte issuer JWT: {raw:.0} /s on one core ({:.0} /s on {cores} cores); {raw_cpu:.0} per CPU second",
        jwt.len(),
        raw * cores
    );
    for (label, secs, cpu) in runs {
        let rate = n as f64 / secs;
        println!(
            "  {label}: issuance reaches {:.0}% of the raw sign rate of all cores ({:.0}% of one core); per CPU second {:.0} credentials = {:.0}% of raw signing",
            100.0 * rate / (raw * cores),
            100.0 * rate / raw,
            n as f64 / cpu,
            100.0 * (n as f64 / cpu) / raw_cpu
        );
    }
}

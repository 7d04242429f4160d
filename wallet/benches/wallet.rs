//! Wallet figures: open + list of a wallet of 10,000 credentials (the KDF
//! at its cheapest, so the figure is the store and the parsing), and the QR
//! code a presentation needs: three courses and the degree, the whole
//! 12-course transcript, an employment record.
//!
//! `cargo bench -p vouch-wallet --bench wallet`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Map, Value};
use vouch_core::sample;
use vouch_core::seal::Cost;
use vouch_core::template::Templates;
use vouch_core::DidKey;
use vouch_wallet::credential::{read_stored, Listing, StoredCredential};
use vouch_wallet::share::QrShare;
use vouch_wallet::store::{to_json, Table, Write};
use vouch_wallet::{Binding, Wallet};

const CREDENTIALS: usize = 10_000;
const NOW: i64 = 1_780_000_000;

fn transcript_claims(i: usize) -> Map<String, Value> {
    let courses: Vec<Value> = (0..12)
        .map(|c| {
            json!({"code": format!("CS{:03}", 100 + c), "title": format!("Course title number {c}"),
                   "credits": 6, "grade": "A", "term": "2025-S1"})
        })
        .collect();
    json!({"institution": "State University", "student_name": format!("Student {i}"),
           "student_id": format!("S{i:05}"), "programme": "Computer Science", "degree": "BSc",
           "award_date": "2025-07-15", "gpa": 3.4, "courses": courses})
    .as_object()
    .unwrap()
    .clone()
}

fn issue(template: &str, claims: Map<String, Value>, holder: &DidKey, rng: &mut StdRng) -> String {
    let templates = Templates::builtin().unwrap();
    let t = templates.by_name(template).unwrap();
    sample::issue_as(t, claims, holder, NOW, rng).unwrap()
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let (mut wallet, _) = Wallet::create(dir.path(), "pw", Cost::MIN, &mut rng).unwrap();
    let did = wallet.receive(NOW, &mut rng).unwrap();

    // Sizes first.
    let id = wallet
        .import(
            &issue("transcript", transcript_claims(0), &did, &mut rng),
            None,
            NOW,
            &mut rng,
        )
        .unwrap();
    let binding = Binding {
        aud: "https://hr.example".into(),
        nonce: "n-0123456789abcdef".into(),
        channel: "qr".into(),
    };
    let three: Vec<String> = [
        "degree",
        "courses[CS101]",
        "courses[CS104]",
        "courses[CS107]",
    ]
    .map(String::from)
    .to_vec();
    let all: Vec<String> = wallet
        .show(&id, NOW)
        .unwrap()
        .1
        .iter()
        .filter(|l| l.selective)
        .map(|l| l.name.clone())
        .collect();
    let did2 = wallet.receive(NOW, &mut rng).unwrap();
    let employment =
        json!({"employer": "Acme Corp", "employee": "Ada Lovelace", "title": "Engineer",
        "department": "Research", "start": "2020-01-06", "end": "2025-06-30"})
        .as_object()
        .unwrap()
        .clone();
    let eid = wallet
        .import(
            &issue("employment", employment, &did2, &mut rng),
            None,
            NOW,
            &mut rng,
        )
        .unwrap();
    let eall: Vec<String> = wallet
        .show(&eid, NOW)
        .unwrap()
        .1
        .iter()
        .filter(|l| l.selective)
        .map(|l| l.name.clone())
        .collect();
    for (what, cid, names) in [
        ("3 courses + degree + KB-JWT", &id, &three),
        ("whole 12-course transcript", &id, &all),
        ("employment record, every claim", &eid, &eall),
    ] {
        let p = wallet.prepare(cid, names, &binding, NOW).unwrap();
        match QrShare::new(&p.text) {
            Ok(q) => println!(
                "{what}: presentation {} B, envelope {} chars, QR version {} (level M)",
                p.text.len(),
                q.text.len(),
                q.version()
            ),
            Err(e) => println!(
                "{what}: presentation {} B: {e} (the wallet sends it through the relay)",
                p.text.len()
            ),
        }
    }

    // 10,000 credentials, written in one batch (import's checks are not
    // what this measures).
    let key_index = 0;
    let templates = Templates::builtin().unwrap();
    let t = Instant::now();
    let mut records = Vec::with_capacity(CREDENTIALS);
    for i in 0..CREDENTIALS {
        let sd_jwt = issue("transcript", transcript_claims(i), &did, &mut rng);
        // The record as an import writes it, listing included.
        let facts = read_stored(&sd_jwt).unwrap();
        let listing = Listing::of(&facts, templates.by_vct(&facts.vct));
        let stored = StoredCredential {
            sd_jwt,
            key_index,
            anchor: None,
            imported_at: NOW,
            listing: Some(listing),
        };
        records.push((format!("{i:08x}"), to_json(&stored).unwrap()));
    }
    let writes: Vec<Write<'_>> = records
        .iter()
        .map(|(id, json)| Write::Put(Table::Credentials, id.as_bytes(), json.clone()))
        .collect();
    wallet.store().write(&writes, &mut rng).unwrap();
    println!(
        "setup: {CREDENTIALS} credentials issued and stored in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(wallet);

    let mut group = c.benchmark_group("wallet");
    group.sample_size(10);
    group.bench_function("open (KDF at Cost::MIN) + list 10k", |b| {
        b.iter(|| {
            let w = Wallet::open(dir.path(), "pw").unwrap();
            let list = w.list(NOW).unwrap();
            assert_eq!(list.len(), CREDENTIALS + 2);
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

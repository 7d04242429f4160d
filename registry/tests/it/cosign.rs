//! `POST /v1/blocks/{h}/cosignature` keeps only cosignatures that verify
//! under a configured witness key, one per witness: junk lines can neither
//! fill the note's 100 signature lines nor make a note unreadable, and a
//! replica ignores signature lines it cannot verify.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::SigningKey;
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use vouch_core::log;
use vouch_registry::node::Node;
use vouch_registry::now;
use vouch_registry::replica::{Replica, Trust};

use crate::common::*;

/// Three witness keys and their verifier keys.
fn witnesses() -> Vec<(String, SigningKey, String)> {
    (1..=3u8)
        .map(|i| {
            let name = format!("w{i}");
            let key = SigningKey::from_bytes(&[40 + i; 32]);
            let vkey = log::witness_vkey(&name, &key.verifying_key());
            (name, key, vkey)
        })
        .collect()
}

/// A node trusting `vkeys`, with block 1 sealed over one new entry.
fn node_with_block(dir: &std::path::Path, vkeys: Vec<String>, need: usize) -> Node {
    let authority = init_node(dir, vkeys, need);
    let node = Node::open(dir).unwrap();
    node.submit(
        accredit(&authority, 1, &key(2), &["transcript"]).as_bytes(),
        now(),
    )
    .unwrap();
    node.seal(now()).unwrap().unwrap();
    node
}

/// A signature line that verifies under no key: `name`, key id `id`, and
/// 72 bytes of junk (the size of a cosignature).
fn junk_line(name: &str, id: u32, n: u32) -> String {
    let mut raw = id.to_be_bytes().to_vec();
    raw.extend(n.to_be_bytes().iter().cycle().take(72));
    format!("— {name} {}\n", STANDARD.encode(raw))
}

/// The key id a signature line carries.
fn line_id(line: &str) -> u32 {
    let b64 = line.trim_end().rsplit(' ').next().unwrap();
    let raw = STANDARD.decode(b64).unwrap();
    u32::from_be_bytes(raw[..4].try_into().unwrap())
}

/// The signature lines of a note.
fn sig_lines(note: &str) -> Vec<String> {
    let (_, sigs) = note.rsplit_once("\n\n").unwrap();
    sigs.lines().map(|l| format!("{l}\n")).collect()
}

async fn post_cosignature(app: &axum::Router, height: u64, note: String) -> (StatusCode, String) {
    let req = Request::post(format!("/v1/blocks/{height}/cosignature"))
        .body(Body::from(note))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn junk_signature_lines_never_stop_a_real_cosignature() {
    let dir = tempdir("cosign-junk");
    let w = witnesses();
    let vkeys: Vec<String> = w.iter().map(|(_, _, v)| v.clone()).collect();
    let node = Arc::new(node_with_block(dir.path(), vkeys, 2));
    let app = vouch_registry::api::app(node.clone()).unwrap();
    let block = node.block(1).unwrap().unwrap();
    let t = u64::try_from(now()).unwrap();

    // w1 cosigns for real.
    let by_w1 = log::cosign(&block, &w[0].0, &w[0].1, t).unwrap();
    let (s, body) = post_cosignature(&app, 1, by_w1.clone()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("\"w1\""), "{body}");
    let stored = node.block(1).unwrap().unwrap();
    assert_eq!(sig_lines(&stored).len(), 2, "node + w1:\n{stored}");

    // Anyone copies w1's valid cosignature and adds 150 junk lines, in two
    // posts (a note holds at most 100 lines), under unknown names and under
    // the names and key ids of w2 and w3.
    let w2_id = line_id(&sig_lines(&log::cosign(&block, &w[1].0, &w[1].1, t).unwrap())[1]);
    let w3_id = line_id(&sig_lines(&log::cosign(&block, &w[2].0, &w[2].1, t).unwrap())[1]);
    let mut n = 0;
    for count in [98, 52] {
        let mut junk = by_w1.clone();
        for _ in 0..count {
            n += 1;
            junk.push_str(&match n % 3 {
                0 => junk_line(&format!("junk{n}"), n, n),
                1 => junk_line(&w[1].0, w2_id, n),
                _ => junk_line(&w[2].0, w3_id, n),
            });
        }
        let (s, body) = post_cosignature(&app, 1, junk).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert_eq!(
            node.block(1).unwrap().unwrap(),
            stored,
            "junk changed the stored block"
        );
    }
    assert_eq!(n, 150);

    // w1 again, later: the first cosignature of a witness wins.
    let again = log::cosign(&block, &w[0].0, &w[0].1, t + 60).unwrap();
    let (s, _) = post_cosignature(&app, 1, again).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(node.block(1).unwrap().unwrap(), stored);

    // A note with nothing valid from a witness is refused.
    let mut only_junk = block.clone();
    only_junk.push_str(&junk_line(&w[1].0, w2_id, 7));
    let (s, body) = post_cosignature(&app, 1, only_junk).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    // w2's real cosignature still merges, and the block is final.
    let by_w2 = log::cosign(&block, &w[1].0, &w[1].1, t).unwrap();
    let (s, body) = post_cosignature(&app, 1, by_w2).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body.contains("\"w1\",\"w2\""), "{body}");
    let merged = node.block(1).unwrap().unwrap();
    assert_eq!(sig_lines(&merged).len(), 3, "node + w1 + w2:\n{merged}");
    assert_eq!(node.checkpoint(), merged);
    let signed = node.policy().verify(merged.as_bytes()).unwrap();
    assert_eq!(signed.cosigned_by, vec!["w1".to_string(), "w2".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_junk_line_under_a_trusted_witness_name_does_not_stop_a_replica() {
    let root = tempdir("cosign-replica");
    let dir = root.path().join("node");
    let w = witnesses();
    let vkeys: Vec<String> = w.iter().map(|(_, _, v)| v.clone()).collect();
    let node = node_with_block(&dir, vkeys.clone(), 2);
    let block = node.block(1).unwrap().unwrap();
    let t = u64::try_from(now()).unwrap();
    for (name, k, _) in &w[..2] {
        node.add_cosignature(1, &log::cosign(&block, name, k, t).unwrap())
            .unwrap();
    }
    // Through the API, a junk line under w3's name and key id is dropped.
    let app = vouch_registry::api::app(Arc::new(node)).unwrap();
    let cosigned = {
        let w3_line = &sig_lines(&log::cosign(&block, &w[2].0, &w[2].1, t).unwrap())[1];
        let mut note = log::cosign(&block, &w[0].0, &w[0].1, t).unwrap();
        note.push_str(&junk_line(&w[2].0, line_id(w3_line), 1));
        let (s, body) = post_cosignature(&app, 1, note).await;
        assert_eq!(s, StatusCode::OK, "{body}");
        assert!(!body.contains("w3"), "{body}");
        drop(app);
        let node = Node::open(&dir);
        let node = node.unwrap();
        let stored = node.block(1).unwrap().unwrap();
        assert_eq!(sig_lines(&stored).len(), 3, "{stored}");
        stored
    };

    // A block stored with such a line anyway (by an older node, say), with
    // the junk line ahead of the real ones: the node still opens and a
    // replica that trusts all three witnesses still syncs on the two valid
    // cosignatures.
    let lines = sig_lines(&cosigned);
    let w1_id = line_id(&lines[1]);
    let (text, _) = cosigned.rsplit_once("\n\n").unwrap();
    let mut forged = format!("{text}\n\n{}", lines[0]);
    forged.push_str(&junk_line(&w[0].0, w1_id, 9));
    forged.push_str(&lines[1..].concat());
    {
        let node = Node::open(&dir).unwrap();
        node.store().put_block(1, &forged, true).unwrap();
    }
    let node = Arc::new(Node::open(&dir).unwrap());
    assert_eq!(node.checkpoint(), forged);
    let server = serve(node.clone()).await;
    let client = server.client();
    let trust = Trust {
        node_vkey: node.vkey(),
        witnesses: vkeys,
        need: 2,
    };
    let mut replica = Replica::open(&root.path().join("replica"), trust.policy().unwrap()).unwrap();
    let report = replica.sync(&client).await.unwrap();
    assert_eq!((report.to, report.height), (2, 1));
    assert_eq!(report.cosigned_by, vec!["w1".to_string(), "w2".to_string()]);
}

//! kill -9 of the real `vouch-registry serve` while clients submit: no
//! acknowledged entry is lost, and `vouch-registry verify` accepts the chain
//! after every restart.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng as _;
use vouch_core::log::Hash;
use vouch_registry::client::NodeClient;

use crate::common::*;

async fn start(dir: &Path) -> (Child, NodeClient) {
    let port = vouch_registry::testkit::free_port().unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--dir"])
        .arg(dir)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--block-interval",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = NodeClient::new(&format!("http://127.0.0.1:{port}")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.info().await.is_err() {
        assert!(Instant::now() < deadline, "node did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_entry() {
    let root = tempdir("crash");
    let dir = root.path().join("node");
    run_on_dir("init", &dir);
    let authority = vouch_registry::keys::read(&dir.join("authority.key")).unwrap();
    let uni = key(2);
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut rng = rand::thread_rng();

    for round in 0..6 {
        let (mut child, client) = start(&dir).await;
        if round == 0 {
            client
                .submit(accredit(&authority, 1, &uni, &["transcript"]).as_bytes())
                .await
                .unwrap();
        }
        // Every acknowledged entry from earlier rounds is still there.
        let so_far = acked.lock().unwrap().clone();
        for leaf in so_far {
            let h = Hash(hex::decode(&leaf).unwrap().try_into().unwrap());
            assert!(
                client.index_of(&h).await.unwrap().is_some(),
                "round {round}: acknowledged entry {leaf} was lost"
            );
        }
        // Two submitters race the kill.
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let client = client.clone();
            let uni = uni.clone();
            let acked = acked.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let Ok(seq) = client.next_seq(&did(&uni)).await else {
                        break;
                    };
                    let entry = anchor(&uni, seq, seq);
                    match client.submit(entry.as_bytes()).await {
                        Ok(r) => acked.lock().unwrap().push(r.leaf_hash),
                        // The other submitter took this sequence number.
                        Err(vouch_registry::client::ClientError::Api { status: 409, .. }) => {}
                        Err(_) => break,
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..900))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for t in tasks {
            t.await.unwrap();
        }
        run_on_dir("verify", &dir);
    }
    let (mut child, client) = start(&dir).await;
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "only {} entries were acknowledged",
        acked.len()
    );
    for leaf in &acked {
        let h = Hash(hex::decode(leaf).unwrap().try_into().unwrap());
        assert!(client.index_of(&h).await.unwrap().is_some(), "{leaf} lost");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    run_on_dir("verify", &dir);
}

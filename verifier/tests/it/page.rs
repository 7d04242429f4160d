//! The web page in headless Chromium (Debian's `chromium`) with a fake
//! camera playing a y4m video of a wallet's QR code: the page scans it
//! through `/api/scan` and shows the verdict, read back from its DOM.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};

use vouch_core::envelope;
use vouch_verifier::service::{self, AppState};

use crate::common::{serve, Fixture};

/// A y4m video (one 4:2:0 frame, looped by Chromium) of `text`'s QR code,
/// black on white, centred in `width`×`height`.
fn y4m(text: &str, width: usize, height: usize) -> Vec<u8> {
    let code = vouch_core::qr::qr_code(text, vouch_core::qr::EcLevel::M).unwrap();
    let modules = code.width();
    let colors = code.to_colors();
    let scale = (height * 9 / 10) / (modules + 8);
    let side = (modules + 8) * scale;
    let (x0, y0) = ((width - side) / 2, (height - side) / 2);
    let mut luma = vec![235u8; width * height];
    for my in 0..modules {
        for mx in 0..modules {
            if colors[my * modules + mx] == qrcode::Color::Dark {
                for y in 0..scale {
                    let row = y0 + (my + 4) * scale + y;
                    let start = row * width + x0 + (mx + 4) * scale;
                    luma[start..start + scale].fill(16);
                }
            }
        }
    }
    let mut out =
        format!("YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\nFRAME\n").into_bytes();
    out.extend_from_slice(&luma);
    out.extend(std::iter::repeat_n(128u8, width * height / 2));
    out
}

/// Headless Chromium driven over the DevTools protocol (a minimal
/// WebSocket client: text frames only, which is all the protocol uses).
struct Browser {
    child: tokio::process::Child,
    ws: tokio::net::TcpStream,
    next_id: u64,
}

impl Browser {
    async fn launch(video: &Path) -> Browser {
        let mut child = tokio::process::Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=720,1400",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                &format!("--use-file-for-fake-video-capture={}", video.display()),
                "--remote-debugging-port=0",
                "about:blank",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("Debian's chromium is installed (apt-get install chromium)");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let endpoint = loop {
            let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
                .await
                .expect("chromium starts within 30 s")
                .unwrap()
                .expect("chromium prints its DevTools endpoint");
            if let Some(rest) = line.strip_prefix("DevTools listening on ws://") {
                break rest.split('/').next().unwrap().to_owned();
            }
        };
        // Keep draining stderr so chromium never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let targets: serde_json::Value = reqwest::get(format!("http://{endpoint}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .unwrap()["webSocketDebuggerUrl"]
            .as_str()
            .unwrap()
            .to_owned();
        let path = page.splitn(4, '/').nth(3).unwrap();
        let mut ws = tokio::net::TcpStream::connect(&endpoint).await.unwrap();
        ws.write_all(
            format!(
                "GET /{path} HTTP/1.1\r\nHost: {endpoint}\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                 Sec-WebSocket-Version: 13\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(ws.read_u8().await.unwrap());
        }
        assert!(
            head.starts_with(b"HTTP/1.1 101"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        Browser {
            child,
            ws,
            next_id: 1,
        }
    }

    async fn send(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut frame = vec![0x81u8];
        match bytes.len() {
            n if n < 126 => frame.push(0x80 | u8::try_from(n).unwrap()),
            n if n <= 0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        // A zero mask key: clients must mask, and XOR with zeros is the
        // payload itself.
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(bytes);
        self.ws.write_all(&frame).await.unwrap();
    }

    async fn receive(&mut self) -> serde_json::Value {
        let mut message = Vec::new();
        loop {
            let b0 = self.ws.read_u8().await.unwrap();
            let b1 = self.ws.read_u8().await.unwrap();
            let len = match b1 & 0x7F {
                126 => u64::from(self.ws.read_u16().await.unwrap()),
                127 => self.ws.read_u64().await.unwrap(),
                n => u64::from(n),
            };
            let mut payload = vec![0; usize::try_from(len).unwrap()];
            self.ws.read_exact(&mut payload).await.unwrap();
            message.extend_from_slice(&payload);
            if b0 & 0x80 != 0 {
                return serde_json::from_slice(&message).unwrap();
            }
        }
    }

    /// Calls a DevTools method and waits for its result.
    async fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = serde_json::json!({ "id": id, "method": method, "params": params });
        self.send(&msg.to_string()).await;
        loop {
            let reply = self.receive().await;
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    async fn eval(&mut self, expression: &str) -> serde_json::Value {
        let r = self
            .call(
                "Runtime.evaluate",
                serde_json::json!({ "expression": expression, "returnByValue": true }),
            )
            .await;
        r["result"]["value"].clone()
    }

    /// Opens `url` and waits (at most 60 s) for the verdict headline.
    async fn verdict(&mut self, url: &str) -> String {
        self.call("Page.navigate", serde_json::json!({ "url": url }))
            .await;
        for _ in 0..240 {
            let headline = self
                .eval("(document.getElementById('headline') || {}).textContent || ''")
                .await;
            if headline.as_str().is_some_and(|h| !h.is_empty()) {
                return self
                    .eval("document.getElementById('verdict').innerText")
                    .await
                    .as_str()
                    .unwrap()
                    .to_owned();
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!(
            "no verdict on the page after 60 s; scan status: {}",
            self.eval("document.getElementById('scan-status').textContent")
                .await
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_scans_a_fake_camera_and_shows_the_verdict() {
    let f = Fixture::new("page").await;
    let v = f.verifier("hr").await;
    let view = v.view().unwrap();
    let (checker, _replica) = v.into_parts();
    let state = AppState::new(checker, Some(view));
    let base = serve(service::app(state.clone())).await;

    let request = state
        .checker()
        .request(Vec::new(), vouch_verifier::now())
        .unwrap();
    let text = envelope::encode(&f.present(0, request.aud(), request.nonce())).unwrap();
    let video = f.root.path().join("camera.y4m");
    std::fs::write(&video, y4m(&text, 640, 480)).unwrap();
    let url = format!("{base}/?nonce={}&scan", request.nonce());
    let mut browser = Browser::launch(&video).await;
    let shown = browser.verdict(&url).await;
    assert!(shown.starts_with("VALID\n"), "{shown}");
    assert!(
        shown.contains("Issued by University of Example (accredited)"),
        "{shown}"
    );
    assert!(shown.contains("Checked against chain block"), "{shown}");
    // The replica's age in its largest unit ("42 s", "3 min", …).
    let as_of = shown
        .lines()
        .find(|l| l.starts_with("Checked against chain block"))
        .unwrap();
    assert!(
        [" s old.", " min old.", " h old.", " day old.", " days old."]
            .iter()
            .any(|end| as_of.ends_with(end)),
        "{as_of}"
    );
    assert!(
        shown.contains("CS005"),
        "the disclosed courses, as a table: {shown}"
    );

    // A screenshot of the verdict view, for the README, when asked for.
    if let Ok(out) = std::env::var("VOUCH_VERDICT_SCREENSHOT") {
        let shot = browser
            .call(
                "Page.captureScreenshot",
                serde_json::json!({ "format": "png" }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::write(out, png).unwrap();
    }
    drop(browser);

    // The revoked credential: REVOKED, with the reason.
    let request = state
        .checker()
        .request(Vec::new(), vouch_verifier::now())
        .unwrap();
    let text = envelope::encode(&f.present(1, request.aud(), request.nonce())).unwrap();
    std::fs::write(&video, y4m(&text, 640, 480)).unwrap();
    let url = format!("{base}/?nonce={}&scan", request.nonce());
    let mut browser = Browser::launch(&video).await;
    let shown = browser.verdict(&url).await;
    assert!(shown.starts_with("REVOKED\n"), "{shown}");
    assert!(shown.contains("revoked"), "{shown}");
}

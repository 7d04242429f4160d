//! The real `vouch-app` binary under Xvfb draws its window: started by
//! `xvfb-run` on a fresh wallet directory, the screen holds the window
//! named "Vouch wallet" and more than a handful of colours (an empty X
//! screen has one or two), then the app is stopped.
//!
//! Ignored by default: it needs `xvfb-run`, `xwininfo`, `xwd` and
//! ImageMagick's `convert` (scripts/install-deps.sh installs them);
//! scripts/test runs it (`cargo test -p vouch-ui -- --ignored`), which costs
//! a few seconds once the binary is built.

use std::process::Command;

/// Started, waited for (up to 20 s), looked at, stopped.
const SCRIPT: &str = r#"
app="$1"; dir="$2"
"$app" --dir "$dir" 2>"$dir.err" &
pid=$!
for _ in $(seq 100); do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "vouch-app exited before drawing:"; cat "$dir.err"; exit 3
    fi
    if xwininfo -root -tree | grep -q '"Vouch wallet"'; then
        colours=$(xwd -root -silent | convert xwd:- -format '%k' info:)
        if [ "$colours" -gt 16 ]; then
            kill "$pid"; wait "$pid" 2>/dev/null
            echo "drawn: $colours colours"; exit 0
        fi
    fi
    sleep 0.2
done
kill "$pid"; echo "no window drawn in 20 s"; exit 4
"#;

#[test]
#[ignore = "needs xvfb-run, xwd and ImageMagick; scripts/test runs it"]
fn the_real_binary_draws_its_window_under_xvfb() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wallet");
    let out = Command::new("xvfb-run")
        .args([
            "-a",
            "-s",
            "-screen 0 1200x820x24",
            "sh",
            "-c",
            SCRIPT,
            "sh",
        ])
        .arg(env!("CARGO_BIN_EXE_vouch-app"))
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("drawn: "), "{stdout}");
    assert!(
        !dir.exists(),
        "the first-run view creates nothing by itself"
    );
}

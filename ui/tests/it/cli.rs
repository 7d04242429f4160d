//! The `vouch-app` binary: its help, and a plain error (not a panic) when
//! there is no display to open a window on.

use std::process::Command;

fn app() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vouch-app"))
}

#[test]
fn help_names_the_wallet_directory_and_hides_the_demo_flag() {
    let out = app().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("--dir"), "{help}");
    assert!(help.contains("vouch/wallet"), "{help}");
    assert!(!help.contains("--demo-view"), "{help}");
}

#[test]
fn fail_without_a_display_says_so_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let out = app()
        .arg("--dir")
        .arg(tmp.path().join("wallet"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("vouch-app: cannot open a window"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!tmp.path().join("wallet").exists(), "no wallet made");
}

#[test]
fn fail_on_an_unknown_demo_view() {
    let out = app().args(["--demo-view", "nowhere"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("invalid value"));
}

//! What the headless view tests share: the one `#[test]` that sets up
//! Slint's testing backend (it can be set up once per process, so every
//! scenario runs inside it, one after the other), and helpers that find
//! elements by accessible label, click, type and wait for worker results.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use i_slint_backend_testing::ElementHandle;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use slint::ComponentHandle;
use vouch_core::jws::PublicKey;
use vouch_core::template::Templates;
use vouch_core::vc::{self, CredentialRequest, IssuerKey};
use vouch_core::DidKey;
use vouch_ui::ui::{AppWindow, NavAdapter, Page};

/// Every scenario, on the one testing backend.
#[test]
fn the_app_headless() {
    i_slint_backend_testing::init_integration_test_with_system_time();
    crate::flow::create_lock_refuse_wrong_passphrase_unlock_import_and_share_three_courses();
    crate::restore::restore_from_a_backup_file();
    crate::sync::settings_sync_now_against_real_registries();
}

pub const PASS: &str = "correct horse battery staple";

/// Runs the event loop until `done` holds and no work is running (worker
/// results come back through the loop), failing after 60 s. The loop is
/// run again when it returns early (a quit left over from an earlier run),
/// and quit only once per run.
pub fn wait_until(window: &AppWindow, what: &str, done: impl Fn(&AppWindow) -> bool + 'static) {
    let ready = move |w: &AppWindow| !w.global::<NavAdapter>().get_busy() && done(w);
    let done = Rc::new(ready);
    let start = Instant::now();
    while !done(window) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        let weak = window.as_weak();
        let check = done.clone();
        let quitting = Rc::new(Cell::new(false));
        let timer = slint::Timer::default();
        timer.start(
            slint::TimerMode::Repeated,
            Duration::from_millis(10),
            move || {
                let Some(w) = weak.upgrade() else { return };
                let over = start.elapsed() > Duration::from_secs(60);
                if !quitting.get() && (over || check(&w)) {
                    quitting.set(true);
                    slint::quit_event_loop().unwrap();
                }
            },
        );
        slint::run_event_loop().unwrap();
    }
}

pub fn one(window: &AppWindow, label: &str) -> ElementHandle {
    let found: Vec<ElementHandle> =
        ElementHandle::find_by_accessible_label(window, label).collect();
    assert!(!found.is_empty(), "no element labelled {label:?}");
    found.into_iter().next().unwrap()
}

pub fn click(window: &AppWindow, label: &str) {
    one(window, label).invoke_accessible_default_action();
}

pub fn type_in(window: &AppWindow, label: &str, text: &str) {
    one(window, label).set_accessible_value(text);
}

pub fn page(window: &AppWindow) -> Page {
    window.global::<NavAdapter>().get_page()
}

/// A 12-course transcript (CS100 … CS111) for `holder`.
pub fn transcript(holder: &DidKey, iat: i64) -> String {
    let templates = Templates::builtin().unwrap();
    let template = templates.by_name("transcript").unwrap();
    let courses: Vec<Value> = (0..12)
        .map(|i| {
            json!({"code": format!("CS{}", 100 + i), "title": format!("Hidden Topic {i}"),
                   "credits": 6, "grade": "A", "term": "2025-S1"})
        })
        .collect();
    let claims = json!({
        "institution": "State University", "student_name": "Ada Lovelace",
        "student_id": "S00042", "programme": "Computer Science", "degree": "BSc",
        "award_date": "2025-07-15", "gpa": 3.4, "courses": courses,
    })
    .as_object()
    .unwrap()
    .clone();
    let request = CredentialRequest {
        vct: template.vct.clone(),
        iat,
        exp: None,
        holder: PublicKey::Ed25519(*holder.verifying_key()),
        status: None,
        concealment: template.concealment(&claims),
        claims,
    };
    let issuer = IssuerKey::new(SigningKey::from_bytes(&[42; 32]));
    vc::issue(request, &issuer, &mut StdRng::seed_from_u64(1))
        .unwrap()
        .serialize()
}

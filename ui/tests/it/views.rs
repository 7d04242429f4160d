//! What the headless view tests share: the one `#[test]` that sets up
//! Slint's testing backend (it can be set up once per process, so every
//! scenario runs inside it, one after the other), and helpers that find
//! elements by accessible label, click, type and wait for worker results.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use i_slint_backend_testing::ElementHandle;
use rand::rngs::StdRng;
use rand::SeedableRng;
use slint::ComponentHandle;
use vouch_core::sample;
use vouch_core::template::Templates;
use vouch_core::DidKey;
use vouch_ui::ui::{AppWindow, NavAdapter, Page};

/// Every scenario, on the one testing backend.
#[test]
fn the_app_headless() {
    i_slint_backend_testing::init_integration_test_with_system_time();
    crate::flow::create_lock_refuse_wrong_passphrase_unlock_import_and_share_three_courses();
    crate::restore::restore_from_a_backup_file();
    crate::sync::settings_sync_now_against_real_registries();
    crate::relay::too_dense_for_a_qr_code_goes_through_the_relay();
    crate::request::a_verifiers_request_read_from_text_or_its_qr_image();
    crate::drop::dropped_files_are_imported_while_open_only();
    crate::panic::work_that_panics_clears_busy_and_says_so();
}

pub const PASS: &str = "correct horse battery staple";

/// What the share view shows as its QR code, as PNG bytes (for
/// `vouch_core::scan::decode`).
pub fn shown_qr_png(window: &AppWindow) -> Vec<u8> {
    let image = window.global::<vouch_ui::ui::ShareAdapter>().get_qr();
    let pixels = image.to_rgba8().unwrap();
    let mut png = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut png, pixels.width(), pixels.height());
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(pixels.as_bytes()).unwrap();
    }
    png
}

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
    transcript_titled(holder, iat, |i| format!("Hidden Topic {i}"))
}

pub use vouch_core::sample::incompressible_title;

/// A 12-course transcript for `holder`, course `i` titled `title(i)`.
pub fn transcript_titled(holder: &DidKey, iat: i64, title: impl Fn(usize) -> String) -> String {
    let templates = Templates::builtin().unwrap();
    let template = templates.by_name("transcript").unwrap();
    let claims = sample::template_transcript_claims("Ada Lovelace", "S00042", title);
    sample::issue_as(template, claims, holder, iat, &mut StdRng::seed_from_u64(1)).unwrap()
}

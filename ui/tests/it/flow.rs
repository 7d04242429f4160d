//! The app end to end, headless: create a wallet, lock, a wrong passphrase
//! (an error, still locked), unlock, receive a DID, import a transcript
//! issued to it, open it, share three of its twelve courses, and check the
//! presentation with `vouch_core::vc::verify_presentation`.

use i_slint_backend_testing::ElementHandle;
use slint::{ComponentHandle, Model};
use vouch_core::seal::Cost;
use vouch_core::vc::{self, PresentationRequest};
use vouch_core::{DidKey, SdJwt};
use vouch_ui::ui::{AppWindow, NavAdapter, OnboardingAdapter, Page, ShareAdapter, UnlockAdapter};
use vouch_ui::{connect, App, Options};

use crate::views::{click, one, page, transcript, type_in, wait_until, PASS};

/// Create, lock, a wrong passphrase refused, unlock, import, share three
/// courses (run by [`crate::views::the_app_headless`]).
pub fn create_lock_refuse_wrong_passphrase_unlock_import_and_share_three_courses() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wallet");
    let window = AppWindow::new().unwrap();
    let app = App::new(Options {
        dir: dir.clone(),
        cost: Cost::TEST,
    });
    let _connection = connect(&window, app);
    assert_eq!(page(&window), Page::Onboarding);

    // Create: passphrase twice, the phrase shown, three words asked back.
    click(&window, "Create a new wallet");
    type_in(&window, "New passphrase", PASS);
    type_in(&window, "Passphrase again", "something else");
    click(&window, "Create wallet");
    let error = window.global::<OnboardingAdapter>().get_error();
    assert!(error.contains("differ"), "{error}");
    assert!(!dir.join("store").exists(), "nothing created on a mismatch");
    type_in(&window, "Passphrase again", PASS);
    assert!(window.global::<OnboardingAdapter>().get_strength() >= 3);
    click(&window, "Create wallet");
    wait_until(&window, "the recovery phrase", |w| {
        w.global::<OnboardingAdapter>().get_step() == 2
    });
    let words: Vec<String> = window
        .global::<OnboardingAdapter>()
        .get_phrase_words()
        .iter()
        .map(|w| w.to_string())
        .collect();
    assert_eq!(words.len(), 24);
    assert_eq!(one(&window, "Word 1").accessible_label().unwrap(), "Word 1");
    click(&window, "I have written it down");
    let positions: Vec<usize> = window
        .global::<OnboardingAdapter>()
        .get_quiz_positions()
        .iter()
        .map(|p| usize::try_from(p).unwrap())
        .collect();
    type_in(&window, "Check word 1", &words[positions[0] - 1]);
    type_in(&window, "Check word 2", "wrong");
    type_in(&window, "Check word 3", &words[positions[2] - 1]);
    click(&window, "Check words");
    assert_eq!(
        page(&window),
        Page::Onboarding,
        "a wrong word does not pass"
    );
    assert!(window
        .global::<OnboardingAdapter>()
        .get_error()
        .contains("does not match"));
    type_in(
        &window,
        "Check word 2",
        &words[positions[1] - 1].to_uppercase(),
    );
    click(&window, "Check words");
    assert_eq!(page(&window), Page::Credentials);

    // Lock; a wrong passphrase says so and stays locked.
    click(&window, "Lock");
    assert_eq!(page(&window), Page::Unlock);
    type_in(&window, "Passphrase", "not my passphrase");
    click(&window, "Unlock");
    wait_until(&window, "the wrong passphrase refused", |w| {
        !w.global::<UnlockAdapter>().get_error().is_empty()
    });
    let error = window.global::<UnlockAdapter>().get_error();
    assert!(error.contains("does not open this wallet"), "{error}");
    assert_eq!(page(&window), Page::Unlock);
    assert!(ElementHandle::find_by_accessible_label(&window, "Receive")
        .next()
        .is_none());

    type_in(&window, "Passphrase", PASS);
    click(&window, "Unlock");
    wait_until(&window, "unlocking", |w| {
        w.global::<NavAdapter>().get_page() == Page::Credentials
    });

    // Receive a DID; an issuer issues a transcript to it; import the file.
    click(&window, "Receive");
    click(&window, "New DID");
    let did_text = one(&window, "Your DID")
        .accessible_value()
        .unwrap()
        .to_string();
    let did = DidKey::parse(&did_text).unwrap();
    let now = vouch_ui::connect::now();
    let file = tmp.path().join("transcript.sd-jwt");
    std::fs::write(&file, transcript(&did, now - 60)).unwrap();
    type_in(&window, "Credential file path", "/no/such/file.sd-jwt");
    click(&window, "Import file");
    wait_until(&window, "the missing file refused", |w| {
        !w.global::<vouch_ui::ui::ReceiveAdapter>()
            .get_error()
            .is_empty()
    });
    type_in(&window, "Credential file path", file.to_str().unwrap());
    click(&window, "Import file");
    wait_until(&window, "the import", |w| {
        let ra = w.global::<vouch_ui::ui::ReceiveAdapter>();
        !ra.get_notice().is_empty() || !ra.get_error().is_empty()
    });
    let refused = window.global::<vouch_ui::ui::ReceiveAdapter>().get_error();
    assert!(refused.is_empty(), "the import was refused: {refused}");
    let notice = window.global::<vouch_ui::ui::ReceiveAdapter>().get_notice();
    assert_eq!(notice, "Imported: BSc Computer Science — State University.");

    // The card, then the detail, then share three courses.
    click(&window, "Credentials");
    type_in(&window, "Search", "state university");
    click(&window, "Open BSc Computer Science — State University");
    assert_eq!(page(&window), Page::Detail);
    click(&window, "Share…");
    assert_eq!(page(&window), Page::Share);
    let choices = window.global::<ShareAdapter>().get_choices();
    let labels: Vec<String> = choices.iter().map(|c| c.label.to_string()).collect();
    for code in ["CS101", "CS104", "CS107"] {
        let label = labels
            .iter()
            .find(|l| l.starts_with("Courses: ") && l.contains(code))
            .unwrap_or_else(|| panic!("no choice for {code} in {labels:?}"));
        click(&window, label);
    }
    click(&window, "Make QR code");
    let error = window.global::<ShareAdapter>().get_error();
    assert!(error.contains("audience"), "no audience: {error}");
    type_in(&window, "Verifier audience", "https://verifier.example");
    type_in(&window, "Verifier nonce", "nonce-4711");
    click(&window, "Make QR code");
    let share = window.global::<ShareAdapter>();
    assert_eq!(share.get_error(), "");
    assert!(share.get_has_qr());
    assert!(share.get_qr_info().starts_with("QR version "));
    assert_eq!(share.get_will_see().row_count(), 3);
    let qr = one(&window, "Presentation QR code");
    assert!(qr.size().width >= 300.0, "a large code on screen");
    let text = one(&window, "Presentation text")
        .accessible_value()
        .unwrap()
        .to_string();
    let request = PresentationRequest {
        aud: "https://verifier.example".into(),
        nonce: "nonce-4711".into(),
        max_age: 300,
    };
    let verdict = vc::verify_presentation(&text, &request, now).unwrap();
    assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
    let revealed = SdJwt::parse(&text).unwrap().reveal().unwrap();
    let courses = revealed.claims["courses"].as_array().unwrap();
    let codes: Vec<&str> = courses
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["CS101", "CS104", "CS107"]);
    assert!(
        !serde_json::to_string(&revealed.claims)
            .unwrap()
            .contains("Hidden Topic 2"),
        "a course not ticked is not shown"
    );

    // Logged as shared.
    click(&window, "Activity");
    let rows = window.global::<vouch_ui::ui::ActivityAdapter>().get_rows();
    assert_eq!(rows.row_count(), 1);
    assert_eq!(
        rows.row_data(0).unwrap().audience,
        "https://verifier.example"
    );
}

//! Share every claim of a transcript too dense for one QR code: without a
//! registry the view says why there is no code and offers the file; with
//! the wallet's registry (served on loopback) the presentation goes
//! through its encrypted relay off the UI thread, the view says where and
//! until when, and the code on screen decodes to a link that fetches, once,
//! a presentation that verifies.

use rand::rngs::StdRng;
use rand::SeedableRng;
use slint::{ComponentHandle, Model};
use vouch_core::seal::Cost;
use vouch_core::vc::{self, PresentationRequest};
use vouch_registry::relay_link::RelayLink;
use vouch_registry::testkit::LoopbackNode;
use vouch_ui::ui::{ActivityAdapter, AppWindow, NavAdapter, Page, ShareAdapter};
use vouch_ui::{connect, App, Options};
use vouch_wallet::Wallet;

use crate::views::{
    click, incompressible_title, one, page, shown_qr_png, transcript_titled, type_in, wait_until,
};

/// Presses "Make QR code" and waits for the code or an error.
fn make(window: &AppWindow) {
    click(window, "Make QR code");
    wait_until(window, "the QR code", |w| {
        let sa = w.global::<ShareAdapter>();
        sa.get_has_qr() || !sa.get_error().is_empty()
    });
}

/// Too dense: no registry, then the relay.
pub fn too_dense_for_a_qr_code_goes_through_the_relay() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let net = rt
        .block_on(LoopbackNode::start(&tmp.path().join("net"), &[], 0))
        .unwrap();
    let mut rng = StdRng::seed_from_u64(51);
    let dir = tmp.path().join("w");
    let (mut wallet, _) = Wallet::create(&dir, "long enough", Cost::TEST, &mut rng).unwrap();
    let did = wallet.receive(0, &mut rng).unwrap();
    let now = vouch_ui::connect::now();
    let text = transcript_titled(&did, now - 60, incompressible_title);
    wallet.import(&text, None, now, &mut rng).unwrap();

    let window = AppWindow::new().unwrap();
    let app = App::new(Options {
        dir,
        cost: Cost::TEST,
    });
    let _connection = connect(&window, app.clone());
    app.adopt(&window, wallet);
    click(&window, "Open BSc Computer Science — State University");
    click(&window, "Share…");
    assert_eq!(page(&window), Page::Share);
    // Every claim ticked. Most check boxes are below the scroll view's
    // fold, where the testing backend finds no element by label, so each
    // is ticked through the callback a check box's `toggled` runs.
    let sa = window.global::<ShareAdapter>();
    let choices = sa.get_choices();
    assert!(choices.row_count() >= 12);
    for i in 0..choices.row_count() {
        sa.invoke_toggle(i32::try_from(i).unwrap(), true);
        let mut c = choices.row_data(i).unwrap();
        c.checked = true;
        choices.set_row_data(i, c);
    }
    type_in(&window, "Verifier audience", "https://verifier.example");
    type_in(&window, "Verifier nonce", "nonce-relay-1");

    // No registry: why there is no code, and the file offered.
    make(&window);
    let sa = window.global::<ShareAdapter>();
    assert!(!sa.get_has_qr());
    let error = sa.get_error();
    assert!(error.contains("no registry is set"), "{error}");
    assert!(error.contains("save it as a file"), "{error}");

    // The wallet's registry: through its relay.
    app.session()
        .wallet()
        .unwrap()
        .set_registry(net.server.url(), &mut rng)
        .unwrap();
    make(&window);
    let sa = window.global::<ShareAdapter>();
    assert_eq!(sa.get_error(), "");
    assert!(sa.get_has_qr());
    assert!(!window.global::<NavAdapter>().get_busy());
    let info = sa.get_qr_info().to_string();
    let host = net.server.url().trim_start_matches("http://");
    assert!(
        info.starts_with(&format!(
            "Sent through the encrypted relay at {host}; the verifier can fetch it once before "
        )),
        "{info}"
    );
    assert!(one(&window, "Presentation QR code").size().width >= 200.0);
    let link = vouch_core::scan::decode(&shown_qr_png(&window)).unwrap();
    assert!(link.starts_with(net.server.url()), "{link}");
    let link = RelayLink::parse(&link).unwrap();
    let fetched = rt.block_on(link.fetch()).unwrap();
    let presentation = vouch_core::presentation::Presentation::read(&fetched).unwrap();
    let request = PresentationRequest {
        aud: "https://verifier.example".into(),
        nonce: "nonce-relay-1".into(),
        max_age: 300,
    };
    let verdict =
        vc::verify_presentation(&presentation.sd_jwt, &request, vouch_ui::connect::now()).unwrap();
    assert!(verdict.is_valid(), "{:?}", verdict.first_failure());
    assert!(rt.block_on(link.fetch()).is_err(), "served once");

    click(&window, "Activity");
    let rows = window.global::<ActivityAdapter>().get_rows();
    assert_eq!(rows.row_count(), 1, "logged once, when it went through");
    assert_eq!(rows.row_data(0).unwrap().channel, "relay");
    drop(net);
}

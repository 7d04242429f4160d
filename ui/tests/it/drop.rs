//! Files dropped on the window. The real window gets them from winit's
//! `DroppedFile` event (watched in `connect`), which forwards to
//! `ReceiveAdapter.file-dropped`; the testing backend has no winit window,
//! so this drives that callback as the event does. Locked: refused with a
//! word, nothing imported. Open: the receive view opens, a credential file
//! and the image of its QR code are imported... the first only once (the
//! second is a duplicate), and a file that is no credential is named with
//! its reason.

use rand::rngs::StdRng;
use rand::SeedableRng;
use slint::{ComponentHandle, Model};
use vouch_core::qr::{self, EcLevel};
use vouch_core::seal::Cost;
use vouch_ui::ui::{
    AppWindow, CredentialsAdapter, NavAdapter, Page, ReceiveAdapter, UnlockAdapter,
};
use vouch_ui::{connect, App, Options};
use vouch_wallet::Wallet;

use crate::views::{page, transcript, wait_until};

/// Drops, locked and open.
pub fn dropped_files_are_imported_while_open_only() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(71);
    let dir = tmp.path().join("w");
    let (mut wallet, _) = Wallet::create(&dir, "long enough", Cost::TEST, &mut rng).unwrap();
    let did = wallet.receive(0, &mut rng).unwrap();
    let now = vouch_ui::connect::now();
    let text = transcript(&did, now - 60);
    let file = tmp.path().join("transcript.sd-jwt");
    std::fs::write(&file, &text).unwrap();
    let image = tmp.path().join("transcript-qr.png");
    let envelope = vouch_core::envelope::encode(&text).unwrap();
    let code = qr::qr_code(&envelope, EcLevel::M).unwrap();
    std::fs::write(&image, qr::png(&code, 4, 4).unwrap()).unwrap();
    let junk = tmp.path().join("holiday.txt");
    std::fs::write(&junk, "not a credential").unwrap();
    drop(wallet);

    let window = AppWindow::new().unwrap();
    let app = App::new(Options {
        dir: dir.clone(),
        cost: Cost::TEST,
    });
    let _connection = connect(&window, app.clone());
    assert_eq!(page(&window), Page::Unlock);
    let ra = window.global::<ReceiveAdapter>();
    ra.invoke_file_dropped(file.to_str().unwrap().into());
    assert_eq!(page(&window), Page::Unlock);
    let error = window.global::<UnlockAdapter>().get_error();
    assert!(error.contains("Unlock the wallet first"), "{error}");
    assert!(!window.global::<NavAdapter>().get_busy(), "nothing started");

    app.adopt(
        &window,
        vouch_ui::controller::session::unlock(&dir, "long enough").unwrap(),
    );
    assert_eq!(page(&window), Page::Credentials);
    for dropped in [&file, &junk, &image] {
        window
            .global::<ReceiveAdapter>()
            .invoke_file_dropped(dropped.to_str().unwrap().into());
    }
    assert_eq!(page(&window), Page::Receive);
    wait_until(&window, "the dropped files", |w| {
        let ra = w.global::<ReceiveAdapter>();
        ra.get_notice().contains("Imported") && ra.get_error().contains("transcript-qr.png")
    });
    let ra = window.global::<ReceiveAdapter>();
    let notice = ra.get_notice();
    let error = ra.get_error();
    assert!(
        notice.contains("Imported: BSc Computer Science — State University."),
        "{notice}"
    );
    assert!(error.contains("holiday.txt: refused:"), "{error}");
    assert!(
        error.contains("transcript-qr.png: refused: this credential is already in the wallet"),
        "{error}"
    );
    let cards = window.global::<CredentialsAdapter>().get_cards();
    assert_eq!(cards.row_count(), 1);
}

//! First run: restore a wallet from a backup file. A file that is not a
//! backup and a wrong passphrase are refused inline and create nothing;
//! the right passphrase brings the credential back.

use rand::rngs::StdRng;
use rand::SeedableRng;
use slint::{ComponentHandle, Model};
use vouch_core::seal::Cost;
use vouch_ui::ui::{AppWindow, CredentialsAdapter, OnboardingAdapter, Page};
use vouch_ui::{connect, App, Options};
use vouch_wallet::Wallet;

use crate::views::{click, page, transcript, type_in, wait_until};

/// Waits for the restore to end with an error, and returns it.
fn refused(window: &AppWindow) -> String {
    click(window, "Restore backup");
    wait_until(window, "the restore refused", |w| {
        !w.global::<OnboardingAdapter>().get_error().is_empty()
    });
    window.global::<OnboardingAdapter>().get_error().to_string()
}

/// Restores a backup file on the first-run view.
pub fn restore_from_a_backup_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(31);
    let (mut old, _) = Wallet::create(
        &tmp.path().join("old"),
        "old passphrase",
        Cost::TEST,
        &mut rng,
    )
    .unwrap();
    let did = old.receive(0, &mut rng).unwrap();
    let now = vouch_ui::connect::now();
    old.import(&transcript(&did, now - 60), None, now, &mut rng)
        .unwrap();
    let backup = tmp.path().join("wallet.backup");
    std::fs::write(&backup, old.backup("backup passphrase").unwrap()).unwrap();
    drop(old);
    let not_a_backup = tmp.path().join("notes.txt");
    std::fs::write(&not_a_backup, "not a backup").unwrap();

    let dir = tmp.path().join("new");
    let window = AppWindow::new().unwrap();
    let _connection = connect(
        &window,
        App::new(Options {
            dir: dir.clone(),
            cost: Cost::TEST,
        }),
    );
    assert_eq!(page(&window), Page::Onboarding);
    click(&window, "Restore from a backup file");
    type_in(&window, "Backup file path", not_a_backup.to_str().unwrap());
    type_in(&window, "Backup passphrase", "backup passphrase");
    let error = refused(&window);
    assert!(error.contains("not a wallet backup"), "{error}");
    assert!(
        !dir.exists(),
        "nothing created for a file that is not a backup"
    );

    type_in(&window, "Backup file path", backup.to_str().unwrap());
    type_in(&window, "Backup passphrase", "not the passphrase");
    let error = refused(&window);
    assert!(error.contains("wrong backup passphrase"), "{error}");
    assert!(!dir.exists(), "nothing created for a wrong passphrase");
    assert_eq!(page(&window), Page::Onboarding);

    type_in(&window, "Backup passphrase", "backup passphrase");
    click(&window, "Restore backup");
    wait_until(&window, "the restore", |w| {
        w.global::<vouch_ui::ui::NavAdapter>().get_page() == Page::Credentials
            || !w.global::<OnboardingAdapter>().get_error().is_empty()
    });
    assert_eq!(window.global::<OnboardingAdapter>().get_error(), "");
    assert_eq!(page(&window), Page::Credentials);
    let cards = window.global::<CredentialsAdapter>().get_cards();
    assert_eq!(cards.row_count(), 1);
    assert_eq!(
        cards.row_data(0).unwrap().title,
        "BSc Computer Science — State University"
    );
    // The backup's passphrase is the wallet's now.
    click(&window, "Lock");
    assert!(vouch_ui::controller::session::unlock(&dir, "backup passphrase").is_ok());
}

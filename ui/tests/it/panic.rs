//! Long work that panics stops the spinner and says so, instead of leaving
//! the window busy (and every later action refused) for good.

use slint::ComponentHandle;
use vouch_ui::connect::off_thread;
use vouch_ui::ui::{AppWindow, NavAdapter};

use crate::views::{click, wait_until};

/// Run by [`crate::views::the_app_headless`].
pub fn work_that_panics_clears_busy_and_says_so() {
    let window = AppWindow::new().unwrap();
    let started = off_thread(
        &window,
        "Reading the image",
        || -> u32 { panic!("a decoder bug") },
        |_, _| unreachable!("done is not called after a panic"),
    );
    assert!(started);
    wait_until(&window, "the panic reported", |w| {
        !w.global::<NavAdapter>().get_failure().is_empty()
    });
    let failure = window.global::<NavAdapter>().get_failure();
    assert!(
        failure.contains("Reading the image") && failure.contains("a decoder bug"),
        "{failure}"
    );
    // Not busy: the next work runs and its result arrives.
    use std::sync::atomic::{AtomicU32, Ordering};
    let got = std::sync::Arc::new(AtomicU32::new(0));
    let seen = got.clone();
    assert!(off_thread(
        &window,
        "Next",
        || 7,
        move |_, n| seen.store(n, Ordering::SeqCst)
    ));
    wait_until(&window, "the next work", move |_| {
        got.load(Ordering::SeqCst) == 7
    });
    assert!(
        window.global::<NavAdapter>().get_failure().is_empty(),
        "new work clears the old failure"
    );
    // The banner is dismissed by the user.
    window
        .global::<NavAdapter>()
        .set_failure("stopped on an internal error".into());
    click(&window, "Dismiss");
    assert!(window.global::<NavAdapter>().get_failure().is_empty());
}

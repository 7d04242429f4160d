//! Wires a window's adapters to the controllers.
//!
//! Callbacks hold weak handles to the window. Work that runs the
//! passphrase KDF (create, restore, unlock, passphrase change) or may search
//! many keys (import) runs on a worker thread; its result comes back to the
//! UI thread with `upgrade_in_event_loop`, and a spinner shows meanwhile.
//! Errors land inline in the view they belong to, in plain words.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::rngs::OsRng;
use slint::{ComponentHandle, Model, ModelRc, SharedString, StandardListViewItem, VecModel};
use vouch_core::presentation_request::PresentationRequest;
use vouch_core::seal::Cost;
use vouch_wallet::keys::RecoveryPhrase;
use vouch_wallet::Wallet;

use crate::controller::credentials::{self, Card};
use crate::controller::detail::Detail;
use crate::controller::onboarding::{self, Quiz};
use crate::controller::settings::{self, AutoLock};
use crate::controller::share::{self, ShareForm, Shared};
use crate::controller::{
    activity, plain, receive, request, session, session::Session, session::SessionError, sync,
};
use crate::ui::{
    AboutAdapter, ActivityAdapter, AppWindow, CredentialsAdapter, DetailAdapter, NavAdapter,
    OnboardingAdapter, Page, ReceiveAdapter, SettingsAdapter, ShareAdapter, UnlockAdapter,
};

/// How often the auto-lock is checked.
const AUTO_LOCK_CHECK: Duration = Duration::from_secs(5);

/// What the app is started with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The wallet directory.
    pub dir: PathBuf,
    /// KDF cost for new passphrases ([`Cost::DEFAULT`]; tests use
    /// [`Cost::TEST`]).
    pub cost: Cost,
}

/// The app's state behind the views: the wallet session and what the views
/// are in the middle of. Cheap to clone (shared).
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    session: Mutex<Session>,
    view: Mutex<ViewState>,
}

/// What the views are in the middle of (UI thread and workers).
struct ViewState {
    phrase: Option<RecoveryPhrase>,
    quiz: Option<Quiz>,
    cards: Vec<Card>,
    detail: Option<String>,
    form: Option<ShareForm>,
    shared: Option<Shared>,
    /// The verifier's request the share form answers, when one was read.
    request: Option<PresentationRequest>,
    /// Files dropped on the window, waiting for their import.
    dropped: Vec<PathBuf>,
    auto_lock: AutoLock,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").finish_non_exhaustive()
    }
}

impl App {
    /// A locked app over the wallet directory in `options`.
    pub fn new(options: Options) -> App {
        App {
            inner: Arc::new(Inner {
                session: Mutex::new(Session::new(options.dir, options.cost)),
                view: Mutex::new(ViewState {
                    phrase: None,
                    quiz: None,
                    cards: Vec::new(),
                    detail: None,
                    form: None,
                    shared: None,
                    request: None,
                    dropped: Vec::new(),
                    auto_lock: AutoLock::new(settings::DEFAULT_AUTO_LOCK_MINUTES, Instant::now()),
                }),
            }),
        }
    }

    /// The session (a poisoned lock is taken over: the session holds no
    /// invariant a panicking worker could break halfway).
    pub fn session(&self) -> MutexGuard<'_, Session> {
        self.inner
            .session
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn view(&self) -> MutexGuard<'_, ViewState> {
        self.inner
            .view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn touch(&self) {
        self.view().auto_lock.touch(Instant::now());
    }

    /// Takes `wallet` as the unlocked wallet and shows the credentials (what
    /// a successful unlock does; `vouch-app --demo-view` uses it after
    /// opening the wallet itself).
    pub fn adopt(&self, window: &AppWindow, wallet: Wallet) {
        let minutes =
            settings::auto_lock_minutes(&wallet).unwrap_or(settings::DEFAULT_AUTO_LOCK_MINUTES);
        self.session().set_open(wallet);
        {
            let mut view = self.view();
            view.auto_lock.set_minutes(minutes);
            view.auto_lock.touch(Instant::now());
        }
        window
            .global::<SettingsAdapter>()
            .set_auto_lock_minutes(to_i32(minutes));
        show_credentials(window, self);
    }
}

/// Keeps the auto-lock timer running; drop it with the window.
pub struct Connection {
    _auto_lock: slint::Timer,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

/// The current time, Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn model<T: Clone + 'static>(items: Vec<T>) -> ModelRc<T> {
    ModelRc::new(VecModel::from(items))
}

fn strings(items: &[String]) -> ModelRc<SharedString> {
    model(items.iter().map(SharedString::from).collect())
}

/// Runs `work` on a worker thread with the spinner on, then `done` on the
/// UI thread. Refused (returns false) while other work runs. Should `work`
/// panic (a bug, or a library failing on input it should have refused),
/// the spinner stops and the window says so (`NavAdapter.failure`) instead
/// of staying busy for good; `done` is not called. (Public for the
/// headless tests.)
#[doc(hidden)]
pub fn off_thread<T: Send + 'static>(
    window: &AppWindow,
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
    done: impl FnOnce(AppWindow, T) + Send + 'static,
) -> bool {
    let nav = window.global::<NavAdapter>();
    if nav.get_busy() {
        return false;
    }
    nav.set_busy(true);
    nav.set_busy_text(what.into());
    nav.set_failure("".into());
    let weak = window.as_weak();
    let what = what.to_owned();
    std::thread::spawn(move || {
        // The work's state is its own or behind the store's atomic writes
        // and recovered mutexes, so nothing half-made is used after this.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        // Fails only when the event loop has ended (the window is gone):
        // nothing is left to show the result in.
        let _ = weak.upgrade_in_event_loop(move |window| {
            let nav = window.global::<NavAdapter>();
            nav.set_busy(false);
            match result {
                Ok(result) => done(window, result),
                Err(panic) => nav.set_failure(panic_text(&what, panic.as_ref()).into()),
            }
        });
    });
    true
}

/// What the window says when the work `what` panicked.
fn panic_text(what: &str, panic: &(dyn std::any::Any + Send)) -> String {
    let why = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no reason given");
    format!("{what} stopped on an internal error ({why}). Nothing more was done; please report it.")
}

/// Wires `window` to `app`: the first-run view when the directory holds no
/// wallet, else the unlock view. Keep the returned [`Connection`] while the
/// window runs.
pub fn connect(window: &AppWindow, app: App) -> Connection {
    let (exists, dir) = {
        let s = app.session();
        (s.exists(), s.dir().display().to_string())
    };
    window
        .global::<OnboardingAdapter>()
        .set_dir(dir.clone().into());
    window.global::<UnlockAdapter>().set_dir(dir.clone().into());
    window.global::<SettingsAdapter>().set_dir(dir.into());
    window
        .global::<AboutAdapter>()
        .set_version(env!("CARGO_PKG_VERSION").into());
    window.global::<NavAdapter>().set_page(if exists {
        Page::Unlock
    } else {
        Page::Onboarding
    });
    wire_nav(window, &app);
    wire_onboarding(window, &app);
    wire_unlock(window, &app);
    wire_credentials(window, &app);
    wire_detail(window, &app);
    wire_share(window, &app);
    wire_receive(window, &app);
    wire_settings(window, &app);

    watch_dropped_files(window);

    let timer = slint::Timer::default();
    let weak = window.as_weak();
    timer.start(slint::TimerMode::Repeated, AUTO_LOCK_CHECK, move || {
        let Some(window) = weak.upgrade() else { return };
        // Not while the recovery phrase is being written down and checked.
        if window.global::<NavAdapter>().get_page() == Page::Onboarding {
            return;
        }
        // A worker holding the session (a passphrase change) is no time to
        // lock; the next tick looks again.
        let open = app
            .inner
            .session
            .try_lock()
            .map(|s| s.is_open())
            .unwrap_or(false);
        let due = app.view().auto_lock.due(Instant::now());
        if open && due {
            let minutes = app.view().auto_lock.minutes();
            lock_now(
                &window,
                &app,
                &format!("Locked after {minutes} minutes without use."),
            );
        }
    });
    Connection { _auto_lock: timer }
}

/// Locks: drops the wallet and everything shown from it.
fn lock_now(window: &AppWindow, app: &App, reason: &str) {
    app.session().lock();
    {
        let mut view = app.view();
        view.cards.clear();
        view.detail = None;
        view.form = None;
        view.shared = None;
        view.request = None;
        view.dropped.clear();
        view.phrase = None;
        view.quiz = None;
    }
    window
        .global::<OnboardingAdapter>()
        .set_phrase_words(model(Vec::new()));
    window
        .global::<CredentialsAdapter>()
        .set_cards(model(Vec::new()));
    window.global::<ShareAdapter>().set_has_qr(false);
    window.global::<ShareAdapter>().set_text("".into());
    window.global::<ReceiveAdapter>().set_did("".into());
    window.global::<ReceiveAdapter>().set_has_qr(false);
    window
        .global::<DetailAdapter>()
        .set_claims(model(Vec::new()));
    window
        .global::<DetailAdapter>()
        .set_course_rows(model(Vec::new()));
    let unlock = window.global::<UnlockAdapter>();
    unlock.set_passphrase("".into());
    unlock.set_error(reason.into());
    window.global::<NavAdapter>().set_page(Page::Unlock);
}

fn wire_nav(window: &AppWindow, app: &App) {
    let nav = window.global::<NavAdapter>();
    let (weak, a) = (window.as_weak(), app.clone());
    nav.on_navigate(move |page| {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        match page {
            Page::Credentials => show_credentials(&window, &a),
            Page::Activity => show_activity(&window, &a),
            Page::Receive => {
                let r = window.global::<ReceiveAdapter>();
                r.set_error("".into());
                r.set_notice("".into());
                window.global::<NavAdapter>().set_page(page);
            }
            Page::Settings => {
                let s = window.global::<SettingsAdapter>();
                s.set_error("".into());
                s.set_notice("".into());
                s.set_sync_error("".into());
                s.set_sync_notice("".into());
                s.set_auto_lock_minutes(to_i32(a.view().auto_lock.minutes()));
                if let Ok(w) = a.session().wallet() {
                    s.set_registry(w.registry().ok().flatten().unwrap_or_default().into());
                    s.set_last_sync(sync::last_sync(w).into());
                }
                window.global::<NavAdapter>().set_page(page);
            }
            other => window.global::<NavAdapter>().set_page(other),
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    nav.on_lock(move || {
        if let Some(window) = weak.upgrade() {
            lock_now(&window, &a, "");
        }
    });
}

fn wire_onboarding(window: &AppWindow, app: &App) {
    let ob = window.global::<OnboardingAdapter>();
    let weak = window.as_weak();
    ob.on_start_create(move || {
        if let Some(w) = weak.upgrade() {
            let ob = w.global::<OnboardingAdapter>();
            ob.set_error("".into());
            ob.set_step(1);
        }
    });
    let weak = window.as_weak();
    ob.on_start_restore(move || {
        if let Some(w) = weak.upgrade() {
            let ob = w.global::<OnboardingAdapter>();
            ob.set_error("".into());
            ob.set_step(4);
        }
    });
    let weak = window.as_weak();
    ob.on_start_restore_backup(move || {
        if let Some(w) = weak.upgrade() {
            let ob = w.global::<OnboardingAdapter>();
            ob.set_error("".into());
            ob.set_step(5);
        }
    });
    let weak = window.as_weak();
    ob.on_back(move || {
        if let Some(w) = weak.upgrade() {
            let ob = w.global::<OnboardingAdapter>();
            ob.set_error("".into());
            ob.set_step(match ob.get_step() {
                3 => 2,
                _ => 0,
            });
        }
    });
    let weak = window.as_weak();
    ob.on_passphrase_edited(move || {
        if let Some(w) = weak.upgrade() {
            let ob = w.global::<OnboardingAdapter>();
            let s = onboarding::strength(&ob.get_passphrase());
            ob.set_strength(i32::from(s.score));
            ob.set_strength_hint(s.hint.into());
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    ob.on_create(move || {
        let Some(window) = weak.upgrade() else { return };
        let ob = window.global::<OnboardingAdapter>();
        let (pass, again) = (
            ob.get_passphrase().to_string(),
            ob.get_confirm().to_string(),
        );
        if let Err(e) = onboarding::check_new(&pass, &again) {
            ob.set_error(e.to_string().into());
            return;
        }
        ob.set_error("".into());
        let (dir, cost) = {
            let s = a.session();
            (s.dir().to_owned(), s.cost())
        };
        let a = a.clone();
        off_thread(
            &window,
            "Creating the wallet…",
            move || session::create(&dir, &pass, &again, cost, &mut OsRng),
            move |window, result| {
                let ob = window.global::<OnboardingAdapter>();
                match result {
                    Ok((wallet, phrase)) => {
                        a.session().set_open(wallet);
                        a.view().auto_lock.touch(Instant::now());
                        let words: Vec<String> =
                            phrase.words().iter().map(|w| (*w).to_owned()).collect();
                        a.view().phrase = Some(phrase);
                        ob.set_passphrase("".into());
                        ob.set_confirm("".into());
                        ob.set_phrase_words(strings(&words));
                        ob.set_step(2);
                    }
                    Err(e) => ob.set_error(plain(&e).into()),
                }
            },
        );
    });
    let (weak, a) = (window.as_weak(), app.clone());
    ob.on_phrase_written(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        let ob = window.global::<OnboardingAdapter>();
        let words = ob.get_phrase_words().row_count();
        let quiz = Quiz::pick(words, &mut OsRng);
        let positions: Vec<i32> = quiz
            .positions
            .iter()
            .map(|&p| i32::try_from(p).unwrap_or(0))
            .collect();
        a.view().quiz = Some(quiz);
        ob.set_quiz_positions(model(positions));
        ob.set_answer_1("".into());
        ob.set_answer_2("".into());
        ob.set_answer_3("".into());
        ob.set_error("".into());
        ob.set_step(3);
    });
    let (weak, a) = (window.as_weak(), app.clone());
    ob.on_check_words(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        let ob = window.global::<OnboardingAdapter>();
        let answers = [ob.get_answer_1(), ob.get_answer_2(), ob.get_answer_3()];
        let checked = {
            let view = a.view();
            match (&view.quiz, &view.phrase) {
                (Some(quiz), Some(phrase)) => quiz.check(
                    phrase,
                    [&answers[0], &answers[1], &answers[2]].map(|s| s.as_str()),
                ),
                _ => return,
            }
        };
        match checked {
            Ok(()) => {
                {
                    let mut view = a.view();
                    view.phrase = None;
                    view.quiz = None;
                }
                ob.set_phrase_words(model(Vec::new()));
                ob.set_step(0);
                show_credentials(&window, &a);
            }
            Err(e) => ob.set_error(e.to_string().into()),
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    ob.on_restore(move || {
        let Some(window) = weak.upgrade() else { return };
        let ob = window.global::<OnboardingAdapter>();
        let phrase = ob.get_restore_phrase().to_string();
        let (pass, again) = (
            ob.get_passphrase().to_string(),
            ob.get_confirm().to_string(),
        );
        let (dir, cost) = {
            let s = a.session();
            (s.dir().to_owned(), s.cost())
        };
        ob.set_error("".into());
        let a = a.clone();
        off_thread(
            &window,
            "Restoring the wallet…",
            move || session::restore(&dir, &phrase, &pass, &again, cost, &mut OsRng),
            move |window, result| {
                let ob = window.global::<OnboardingAdapter>();
                match result {
                    Ok(wallet) => {
                        ob.set_restore_phrase("".into());
                        ob.set_passphrase("".into());
                        ob.set_confirm("".into());
                        ob.set_step(0);
                        a.adopt(&window, wallet);
                    }
                    Err(e) => ob.set_error(plain(&e).into()),
                }
            },
        );
    });
    let (weak, a) = (window.as_weak(), app.clone());
    ob.on_restore_backup(move || {
        if let Some(window) = weak.upgrade() {
            restore_backup_off_thread(&window, &a);
        }
    });
}

/// Restores from a backup file on a worker thread (scrypt, then the KDF).
fn restore_backup_off_thread(window: &AppWindow, app: &App) {
    let ob = window.global::<OnboardingAdapter>();
    let path = ob.get_backup_path().to_string();
    let pass = ob.get_backup_passphrase().to_string();
    let (dir, cost) = {
        let s = app.session();
        (s.dir().to_owned(), s.cost())
    };
    ob.set_error("".into());
    let a = app.clone();
    off_thread(
        window,
        "Restoring the backup…",
        move || session::restore_backup(&dir, &path, &pass, cost, &mut OsRng),
        move |window, result| {
            let ob = window.global::<OnboardingAdapter>();
            ob.set_backup_passphrase("".into());
            match result {
                Ok(wallet) => {
                    ob.set_backup_path("".into());
                    ob.set_step(0);
                    a.adopt(&window, wallet);
                }
                Err(e) => ob.set_error(plain(&e).into()),
            }
        },
    );
}

fn wire_unlock(window: &AppWindow, app: &App) {
    let (weak, a) = (window.as_weak(), app.clone());
    window.global::<UnlockAdapter>().on_unlock(move || {
        let Some(window) = weak.upgrade() else { return };
        let un = window.global::<UnlockAdapter>();
        let pass = un.get_passphrase().to_string();
        if pass.is_empty() {
            un.set_error(SessionError::EmptyPassphrase.to_string().into());
            return;
        }
        un.set_error("".into());
        let dir = a.session().dir().to_owned();
        let a = a.clone();
        off_thread(
            &window,
            "Unlocking…",
            move || session::unlock(&dir, &pass),
            move |window, result| {
                let un = window.global::<UnlockAdapter>();
                match result {
                    Ok(wallet) => {
                        un.set_passphrase("".into());
                        un.set_error("".into());
                        a.adopt(&window, wallet);
                    }
                    Err(e) => un.set_error(plain(&e).into()),
                }
            },
        );
    });
}

/// Reloads the cards from the wallet and shows the list.
fn show_credentials(window: &AppWindow, app: &App) {
    let listed = app.session().wallet().and_then(|w| {
        // A replica that cannot be read leaves the statuses unknown.
        let view = w.chain_view().ok().flatten();
        w.list_as_of(view.as_ref(), now())
            .map_err(SessionError::from)
    });
    match listed {
        Ok(list) => {
            let cards: Vec<Card> = list.iter().map(Card::from_summary).collect();
            let ca = window.global::<CredentialsAdapter>();
            ca.set_error("".into());
            ca.set_total(i32::try_from(cards.len()).unwrap_or(i32::MAX));
            ca.set_kinds(strings(&credentials::kinds(&cards)));
            app.view().cards = cards;
            apply_filter(window, app);
            window.global::<NavAdapter>().set_page(Page::Credentials);
        }
        Err(SessionError::Locked) => lock_now(window, app, ""),
        Err(e) => {
            // The list could not be read: say so where the list would be.
            let ca = window.global::<CredentialsAdapter>();
            ca.set_total(0);
            ca.set_cards(model(Vec::new()));
            ca.set_error(format!("The credentials could not be read: {}", plain(&e)).into());
            window.global::<NavAdapter>().set_page(Page::Credentials);
        }
    }
}

fn apply_filter(window: &AppWindow, app: &App) {
    let ca = window.global::<CredentialsAdapter>();
    let shown = credentials::filter(&app.view().cards, &ca.get_search(), &ca.get_kind());
    ca.set_cards(model(
        shown
            .into_iter()
            .map(|c| crate::ui::Card {
                id: c.id.into(),
                title: c.title.into(),
                issuer: c.issuer.into(),
                kind: c.kind.into(),
                status: c.status.into(),
                as_of: c.as_of.into(),
                issued: c.issued.into(),
            })
            .collect(),
    ));
}

fn wire_credentials(window: &AppWindow, app: &App) {
    let ca = window.global::<CredentialsAdapter>();
    let (weak, a) = (window.as_weak(), app.clone());
    ca.on_filter_changed(move || {
        if let Some(window) = weak.upgrade() {
            a.touch();
            apply_filter(&window, &a);
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    ca.on_open(move |id| {
        if let Some(window) = weak.upgrade() {
            a.touch();
            show_detail(&window, &a, &id);
        }
    });
}

/// Shows credential `id` in the detail view.
fn show_detail(window: &AppWindow, app: &App, id: &str) {
    let detail = {
        let session = app.session();
        session.wallet().and_then(|w| {
            let view = w.chain_view().ok().flatten();
            let (summary, lines, facts) = w.show_as_of(id, view.as_ref(), now())?;
            let stored = w.credential(id)?;
            Ok(Detail::new(&summary, &lines, &facts, &stored))
        })
    };
    let da = window.global::<DetailAdapter>();
    match detail {
        Ok(d) => {
            app.view().detail = Some(id.to_owned());
            da.set_error("".into());
            da.set_title(d.card.title.into());
            da.set_issuer(d.issuer.into());
            da.set_kind(d.card.kind.into());
            da.set_status(d.card.status.into());
            da.set_status_note(d.card.as_of.into());
            da.set_issued(d.issued.into());
            da.set_expires(d.expires.into());
            da.set_holder(d.holder.into());
            da.set_anchor(d.anchor.into());
            da.set_claims(model(
                d.claims
                    .into_iter()
                    .map(|c| crate::ui::ClaimRow {
                        label: c.label.into(),
                        value: c.value.into(),
                        always_shown: c.always_shown,
                    })
                    .collect(),
            ));
            let columns = d
                .table
                .columns
                .iter()
                .map(|title| {
                    let mut c = slint::language::TableColumn::default();
                    c.title = title.into();
                    c.horizontal_stretch = if title == "title" { 3.0 } else { 1.0 };
                    c
                })
                .collect();
            da.set_course_columns(model(columns));
            da.set_course_rows(model(
                d.table
                    .rows
                    .into_iter()
                    .map(|row| {
                        model(
                            row.iter()
                                .map(|cell| StandardListViewItem::from(SharedString::from(cell)))
                                .collect(),
                        )
                    })
                    .collect(),
            ));
            window.global::<NavAdapter>().set_page(Page::Detail);
        }
        Err(SessionError::Locked) => lock_now(window, app, ""),
        Err(e) => {
            da.set_error(plain(&e).into());
            window.global::<NavAdapter>().set_page(Page::Detail);
        }
    }
}

fn wire_detail(window: &AppWindow, app: &App) {
    let da = window.global::<DetailAdapter>();
    let (weak, a) = (window.as_weak(), app.clone());
    da.on_back(move || {
        if let Some(window) = weak.upgrade() {
            a.touch();
            show_credentials(&window, &a);
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    da.on_share(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        let Some(id) = a.view().detail.clone() else {
            return;
        };
        let form = {
            let session = a.session();
            session
                .wallet()
                .and_then(|w| Ok(w.show(&id, now())?))
                .map(|(summary, lines, _)| ShareForm::new(&summary, &lines))
        };
        match form {
            Ok(form) => {
                let sa = window.global::<ShareAdapter>();
                sa.set_title(form.title.clone().into());
                sa.set_choices(choices(&form));
                sa.set_always_shown(strings(&form.always_shown));
                sa.set_has_qr(false);
                sa.set_text("".into());
                sa.set_error("".into());
                sa.set_notice("".into());
                sa.set_will_see(model(Vec::new()));
                sa.set_hidden(model(Vec::new()));
                sa.set_has_request(false);
                sa.set_request_input("".into());
                sa.set_request_summary("".into());
                sa.set_request_error("".into());
                let mut view = a.view();
                view.form = Some(form);
                view.shared = None;
                view.request = None;
                drop(view);
                window.global::<NavAdapter>().set_page(Page::Share);
            }
            Err(SessionError::Locked) => lock_now(&window, &a, ""),
            Err(e) => window.global::<DetailAdapter>().set_error(plain(&e).into()),
        }
    });
}

fn choices(form: &ShareForm) -> ModelRc<crate::ui::Choice> {
    model(
        form.choices
            .iter()
            .map(|c| crate::ui::Choice {
                name: c.name.clone().into(),
                label: c.label.clone().into(),
                value: "".into(),
                checked: c.checked,
            })
            .collect(),
    )
}

fn wire_share(window: &AppWindow, app: &App) {
    let sa = window.global::<ShareAdapter>();
    let a = app.clone();
    sa.on_toggle(move |index, checked| {
        a.touch();
        if let (Ok(i), Some(form)) = (usize::try_from(index), a.view().form.as_mut()) {
            form.toggle(i, checked);
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    sa.on_make(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        let sa = window.global::<ShareAdapter>();
        sa.set_notice("".into());
        // Bound to the verifier's request when one was read (its audience
        // and nonce fill the fields, read-only), if it has not expired.
        let asked = a.view().request.clone();
        if let Some(r) = &asked {
            if let Err(e) = request::check_fresh(r, now()) {
                sa.set_error(plain(&e).into());
                return;
            }
            sa.set_aud(r.aud().into());
            sa.set_nonce(r.nonce().into());
        }
        let binding = match share::binding(&sa.get_aud(), &sa.get_nonce(), "qr", &mut OsRng) {
            Ok(b) => b,
            Err(e) => {
                sa.set_error(plain(&e).into());
                return;
            }
        };
        let Some(form) = a.view().form.clone() else {
            return;
        };
        let made = {
            let mut session = a.session();
            match session.wallet_mut() {
                Ok(w) => share::make(w, &form, &binding, now(), &mut OsRng).map_err(|e| plain(&e)),
                Err(e) => Err(plain(&e)),
            }
        };
        match made {
            Ok(shared) => {
                sa.set_error("".into());
                sa.set_nonce(binding.nonce.clone().into());
                sa.set_text(shared.presentation.text.clone().into());
                sa.set_will_see(strings(&shared.will_see));
                sa.set_hidden(strings(&shared.hidden));
                let job = shared.relay.clone();
                show_qr(&sa, &shared);
                a.view().shared = Some(shared);
                if let Some(job) = job {
                    relay_off_thread(&window, &a, job);
                }
            }
            Err(e) => sa.set_error(e.into()),
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    sa.on_read_request(move || {
        let Some(window) = weak.upgrade() else { return };
        let input = window
            .global::<ShareAdapter>()
            .get_request_input()
            .to_string();
        let typed = input.trim();
        if typed.starts_with(vouch_core::presentation_request::PREFIX)
            || !std::path::Path::new(typed).is_file()
        {
            take_request(&window, &a, request::read(&input, now()));
            return;
        }
        // An image: decoded on a worker, the window stays live.
        window.global::<ShareAdapter>().set_request_error("".into());
        let done_app = a.clone();
        let started = off_thread(
            &window,
            "Reading the request's QR code…",
            move || request::read(&input, now()),
            move |window, read| take_request(&window, &done_app, read),
        );
        if !started {
            window.global::<ShareAdapter>().set_request_error(
                "other work is running; press Read request again in a moment".into(),
            );
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    sa.on_clear_request(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        a.view().request = None;
        let sa = window.global::<ShareAdapter>();
        sa.set_has_request(false);
        sa.set_request_summary("".into());
        sa.set_request_error("".into());
    });
    let (weak, a) = (window.as_weak(), app.clone());
    sa.on_copied(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        window
            .global::<ShareAdapter>()
            .set_notice("Copied the presentation text to the clipboard.".into());
    });
    let (weak, a) = (window.as_weak(), app.clone());
    sa.on_save_text(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        let sa = window.global::<ShareAdapter>();
        let path = sa.get_save_path().to_string();
        let saved = {
            let mut view = a.view();
            let mut session = a.session();
            match (view.shared.as_mut(), session.wallet_mut()) {
                (Some(shared), Ok(w)) => {
                    share::save_text(w, shared, &path, &mut OsRng).map_err(|e| plain(&e))
                }
                (None, _) => Err("make the presentation first".to_owned()),
                (_, Err(e)) => Err(plain(&e)),
            }
        };
        report_save(&sa, saved);
    });
    let (weak, a) = (window.as_weak(), app.clone());
    sa.on_save_png(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        let sa = window.global::<ShareAdapter>();
        let path = sa.get_save_path().to_string();
        let saved = match a.view().shared.as_ref() {
            Some(shared) => share::save_png(shared, &path).map_err(|e| plain(&e)),
            None => Err("make the presentation first".to_owned()),
        };
        report_save(&sa, saved);
    });
    let (weak, a) = (window.as_weak(), app.clone());
    sa.on_back(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        match a.view().detail.clone() {
            Some(id) => show_detail(&window, &a, &id),
            None => show_credentials(&window, &a),
        }
    });
}

/// Takes a verifier's request read from text or an image: its audience and
/// nonce fill the form, the claims it asks for are ticked; a refusal shows
/// inline and changes nothing.
fn take_request(
    window: &AppWindow,
    app: &App,
    read: Result<PresentationRequest, request::RequestError>,
) {
    app.touch();
    let sa = window.global::<ShareAdapter>();
    let request = match read {
        Ok(r) => r,
        Err(e) => {
            sa.set_request_error(plain(&e).into());
            return;
        }
    };
    let mut view = app.view();
    let Some(form) = view.form.as_mut() else {
        return;
    };
    let asked = request::apply(form, &request);
    sa.set_choices(choices(form));
    view.request = Some(request.clone());
    view.shared = None;
    drop(view);
    sa.set_request_error("".into());
    sa.set_error("".into());
    sa.set_request_input("".into());
    sa.set_aud(request.aud().into());
    sa.set_nonce(request.nonce().into());
    sa.set_request_summary(asked.summary().into());
    sa.set_has_request(true);
    sa.set_has_qr(false);
}

/// Shows the QR code of `shared` (or why there is none) on the share view.
fn show_qr(sa: &ShareAdapter<'_>, shared: &Shared) {
    sa.set_qr_info(shared.qr_info().into());
    match &shared.qr {
        Some((qr, png)) => match crate::image::from_png(png) {
            Ok(image) => {
                sa.set_qr_side(qr_side(qr.width()));
                sa.set_qr(image);
                sa.set_has_qr(true);
            }
            Err(e) => {
                sa.set_has_qr(false);
                sa.set_error(plain(&e).into());
            }
        },
        None => {
            sa.set_has_qr(false);
            if shared.relay.is_none() {
                // Too dense and no registry: the text and the file still
                // work; the info line says why there is no code.
                sa.set_error(shared.qr_info().into());
            }
        }
    }
}

/// Sends the presentation through the relay on a worker thread (spinner
/// on), then shows the link's QR code and where it went.
fn relay_off_thread(window: &AppWindow, app: &App, job: share::RelayJob) {
    let host = share::host_of(&job.url);
    let sa = window.global::<ShareAdapter>();
    sa.set_notice(
        format!(
            "Too large for one QR code (version {}): sending it through the encrypted relay at {host}…",
            job.version
        )
        .into(),
    );
    let a = app.clone();
    let started = off_thread(
        window,
        &format!("Sending through the encrypted relay at {host}…"),
        move || share::upload(&job, now(), &mut OsRng),
        move |window, result| {
            let sa = window.global::<ShareAdapter>();
            sa.set_notice("".into());
            let mut view = a.view();
            // Locked or left meanwhile: nothing to show it in (the item
            // expires unfetched).
            let Some(shared) = view.shared.as_mut() else {
                return;
            };
            let finished = result.and_then(|relayed| {
                let mut session = a.session();
                let wallet = session
                    .wallet_mut()
                    .map_err(|_| share::ShareError::Locked)?;
                share::finish_relay(wallet, shared, relayed, &mut OsRng)
            });
            match finished {
                Ok(()) => show_qr(&sa, shared),
                Err(e) => sa.set_error(plain(&e).into()),
            }
        },
    );
    if !started {
        sa.set_notice("".into());
        sa.set_error("other work is running; press Make QR code again in a moment".into());
    }
}

/// The QR code's side on screen: a whole number of pixels per module
/// (with the 4-module quiet zone on each side), about 400 pixels.
pub fn qr_side(modules: usize) -> f32 {
    let total = modules + 8;
    let per_module = (420 / total).max(3);
    // A few hundred pixels at most: exact in f32.
    (total * per_module) as f32
}

fn report_save(sa: &ShareAdapter<'_>, saved: Result<PathBuf, String>) {
    match saved {
        Ok(path) => {
            sa.set_error("".into());
            sa.set_notice(format!("Saved to {}.", path.display()).into());
        }
        Err(e) => {
            sa.set_notice("".into());
            sa.set_error(e.into());
        }
    }
}

/// Files dropped on the window are imported. Slint 1.18's winit backend
/// turns no dropped file into a view event, so the raw winit event is
/// watched ([`i_slint_backend_winit::WinitWindowAccessor`]); it forwards to
/// `ReceiveAdapter.file-dropped`, which the headless tests drive. A window
/// not backed by winit (the testing backend) delivers no drops.
fn watch_dropped_files(window: &AppWindow) {
    use i_slint_backend_winit::winit::event::WindowEvent;
    use i_slint_backend_winit::{EventResult, WinitWindowAccessor as _};
    let weak = window.as_weak();
    window
        .window()
        .on_winit_window_event(move |_, event| match event {
            WindowEvent::DroppedFile(path) => {
                if let Some(window) = weak.upgrade() {
                    window
                        .global::<ReceiveAdapter>()
                        .invoke_file_dropped(path.to_string_lossy().as_ref().into());
                }
                EventResult::PreventDefault
            }
            _ => EventResult::Propagate,
        });
}

/// A file dropped on the window: while the wallet is open, the receive
/// view opens and the file is imported (dropped files queue while an
/// import runs); while locked it is ignored, with a word on the unlock or
/// first-run view.
fn file_dropped(window: &AppWindow, app: &App, path: PathBuf) {
    let page = window.global::<NavAdapter>().get_page();
    // The wallet is open on every page but these two (and the session may
    // be busy with an import on a worker: not waited for here).
    if matches!(page, Page::Onboarding | Page::Unlock) {
        let why = "Unlock the wallet first, then drop the credential file again.";
        window.global::<UnlockAdapter>().set_error(why.into());
        return;
    }
    app.touch();
    let fresh = !window.global::<NavAdapter>().get_busy() && app.view().dropped.is_empty();
    if fresh || page != Page::Receive {
        let ra = window.global::<ReceiveAdapter>();
        ra.set_error("".into());
        ra.set_notice("".into());
    }
    window.global::<NavAdapter>().set_page(Page::Receive);
    app.view().dropped.push(path);
    import_dropped(window, app);
}

/// Imports the files dropped so far on a worker thread, then looks for
/// more; the notice and the error list each file.
fn import_dropped(window: &AppWindow, app: &App) {
    if window.global::<NavAdapter>().get_busy() {
        // Other work runs: look again shortly.
        let (weak, a) = (window.as_weak(), app.clone());
        slint::Timer::single_shot(Duration::from_millis(300), move || {
            if let Some(window) = weak.upgrade() {
                import_dropped(&window, &a);
            }
        });
        return;
    }
    let paths = std::mem::take(&mut app.view().dropped);
    if paths.is_empty() {
        return;
    }
    let ra = window.global::<ReceiveAdapter>();
    ra.set_path(
        paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
            .into(),
    );
    let (worker, a) = (app.clone(), app.clone());
    off_thread(
        window,
        "Importing the dropped files…",
        move || {
            paths
                .iter()
                .map(|path| {
                    let shown = path.display().to_string();
                    // One file panicking (a decoder bug) is that file's
                    // refusal: the others, and later drops, still go in.
                    let imported = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        receive::read_file(&path.to_string_lossy())
                            .map_err(|e| plain(&e))
                            .and_then(|text| {
                                let mut session = worker.session();
                                let wallet = session.wallet_mut().map_err(|e| plain(&e))?;
                                let id = receive::import(wallet, &text, now(), &mut OsRng)
                                    .map_err(|e| plain(&e))?;
                                Ok(wallet
                                    .show(&id, now())
                                    .map(|(s, _, _)| s.title)
                                    .unwrap_or(id))
                            })
                    }))
                    .unwrap_or_else(|panic| Err(panic_text("Importing it", panic.as_ref())));
                    (shown, imported)
                })
                .collect::<Vec<_>>()
        },
        move |window, results| {
            let ra = window.global::<ReceiveAdapter>();
            let imported: Vec<String> = results
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok().map(|t| format!("Imported: {t}.")))
                .collect();
            let refused: Vec<String> = results
                .iter()
                .filter_map(|(path, r)| r.as_ref().err().map(|e| format!("{path}: {e}")))
                .collect();
            // Added to what earlier files of the same drop said.
            let join = |before: slint::SharedString, more: Vec<String>, sep: &str| {
                let mut all: Vec<String> = Vec::new();
                if !before.is_empty() {
                    all.push(before.to_string());
                }
                all.extend(more);
                all.join(sep)
            };
            ra.set_path("".into());
            ra.set_notice(join(ra.get_notice(), imported.clone(), " ").into());
            ra.set_error(join(ra.get_error(), refused, "\n").into());
            if !imported.is_empty() {
                refresh_cards(&window, &a);
            }
            import_dropped(&window, &a);
        },
    );
}

/// Reloads the cards (after an import) without leaving the current view.
fn refresh_cards(window: &AppWindow, app: &App) {
    let listed = app.session().wallet().and_then(|w| {
        let view = w.chain_view().ok().flatten();
        Ok(w.list_as_of(view.as_ref(), now())?)
    });
    if let Ok(list) = listed {
        let cards: Vec<Card> = list.iter().map(Card::from_summary).collect();
        let ca = window.global::<CredentialsAdapter>();
        ca.set_total(i32::try_from(cards.len()).unwrap_or(i32::MAX));
        ca.set_kinds(strings(&credentials::kinds(&cards)));
        app.view().cards = cards;
        apply_filter(window, app);
    }
}

fn wire_receive(window: &AppWindow, app: &App) {
    let ra = window.global::<ReceiveAdapter>();
    let (weak, a) = (window.as_weak(), app.clone());
    ra.on_new_did(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        let ra = window.global::<ReceiveAdapter>();
        let made = {
            let mut session = a.session();
            match session.wallet_mut() {
                Ok(w) => receive::new_did(w, now(), &mut OsRng).map_err(|e| plain(&e)),
                Err(e) => Err(plain(&e)),
            }
        };
        match made.and_then(|(did, png)| {
            crate::image::from_png(&png)
                .map(|image| (did, image))
                .map_err(|e| plain(&e))
        }) {
            Ok((did, image)) => {
                ra.set_error("".into());
                ra.set_did(did.into());
                ra.set_did_qr(image);
                ra.set_has_qr(true);
            }
            Err(e) => ra.set_error(e.into()),
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    ra.on_import_file(move || {
        let Some(window) = weak.upgrade() else { return };
        let path = window.global::<ReceiveAdapter>().get_path().to_string();
        import_off_thread(&window, &a, move || receive::read_file(&path));
    });
    let (weak, a) = (window.as_weak(), app.clone());
    ra.on_file_dropped(move |path| {
        if let Some(window) = weak.upgrade() {
            file_dropped(&window, &a, PathBuf::from(path.as_str()));
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    ra.on_import_text(move || {
        let Some(window) = weak.upgrade() else { return };
        let text = window.global::<ReceiveAdapter>().get_pasted().to_string();
        import_off_thread(&window, &a, move || Ok(text));
    });
}

/// Reads (`source`) and imports a credential on a worker thread.
fn import_off_thread(
    window: &AppWindow,
    app: &App,
    source: impl FnOnce() -> Result<String, receive::ImportError> + Send + 'static,
) {
    app.touch();
    let ra = window.global::<ReceiveAdapter>();
    ra.set_error("".into());
    ra.set_notice("".into());
    let (worker, a) = (app.clone(), app.clone());
    off_thread(
        window,
        "Importing…",
        move || {
            let text = source().map_err(|e| plain(&e))?;
            let mut session = worker.session();
            let wallet = session.wallet_mut().map_err(|e| plain(&e))?;
            let id = receive::import(wallet, &text, now(), &mut OsRng).map_err(|e| plain(&e))?;
            let title = wallet
                .show(&id, now())
                .map(|(s, _, _)| s.title)
                .unwrap_or_else(|_| id.clone());
            Ok::<_, String>(title)
        },
        move |window, result| {
            let ra = window.global::<ReceiveAdapter>();
            match result {
                Ok(title) => {
                    ra.set_path("".into());
                    ra.set_pasted("".into());
                    ra.set_notice(format!("Imported: {title}.").into());
                    // Keep the list current for when the user goes back.
                    refresh_cards(&window, &a);
                }
                Err(e) => ra.set_error(e.into()),
            }
        },
    );
}

fn show_activity(window: &AppWindow, app: &App) {
    let log = app.session().wallet().and_then(|w| Ok(w.activity()?));
    match log {
        Ok(log) => {
            let rows = activity::rows(&log)
                .into_iter()
                .map(|r| crate::ui::ActivityRow {
                    when: r.when.into(),
                    title: r.title.into(),
                    audience: r.audience.into(),
                    channel: r.channel.into(),
                    disclosed: r.disclosed.into(),
                })
                .collect();
            let aa = window.global::<ActivityAdapter>();
            aa.set_error("".into());
            aa.set_rows(model(rows));
            window.global::<NavAdapter>().set_page(Page::Activity);
        }
        Err(SessionError::Locked) => lock_now(window, app, ""),
        Err(e) => {
            let aa = window.global::<ActivityAdapter>();
            aa.set_rows(model(Vec::new()));
            aa.set_error(format!("The activity log could not be read: {}", plain(&e)).into());
            window.global::<NavAdapter>().set_page(Page::Activity);
        }
    }
}

fn wire_settings(window: &AppWindow, app: &App) {
    let sa = window.global::<SettingsAdapter>();
    let (weak, a) = (window.as_weak(), app.clone());
    sa.on_auto_lock_changed(move |minutes| {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        let minutes = u32::try_from(minutes).unwrap_or(0);
        a.view().auto_lock.set_minutes(minutes);
        let sa = window.global::<SettingsAdapter>();
        let kept = a
            .session()
            .wallet()
            .and_then(|w| Ok(settings::set_auto_lock_minutes(w, minutes, &mut OsRng)?));
        match kept {
            Ok(()) => {
                sa.set_error("".into());
                sa.set_notice(match minutes {
                    0 => "The wallet no longer locks by itself.".into(),
                    m => format!("The wallet locks after {m} minutes without use.").into(),
                });
            }
            Err(e) => sa.set_error(plain(&e).into()),
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    sa.on_sync_now(move || {
        if let Some(window) = weak.upgrade() {
            sync_off_thread(&window, &a);
        }
    });
    let (weak, a) = (window.as_weak(), app.clone());
    sa.on_change_passphrase(move || {
        let Some(window) = weak.upgrade() else { return };
        a.touch();
        let sa = window.global::<SettingsAdapter>();
        let (current, new, again) = (
            sa.get_current().to_string(),
            sa.get_new_1().to_string(),
            sa.get_new_2().to_string(),
        );
        if let Err(e) = onboarding::check_new(&new, &again) {
            sa.set_error(e.to_string().into());
            return;
        }
        sa.set_error("".into());
        sa.set_notice("".into());
        let (worker, a) = (a.clone(), a.clone());
        off_thread(
            &window,
            "Changing the passphrase…",
            move || {
                let mut session = worker.session();
                settings::change_passphrase(&mut session, &current, &new, &again, &mut OsRng)
            },
            move |window, result| {
                let sa = window.global::<SettingsAdapter>();
                sa.set_current("".into());
                sa.set_new_1("".into());
                sa.set_new_2("".into());
                match result {
                    Ok(()) => sa.set_notice("Passphrase changed.".into()),
                    Err(SessionError::WrongPassphrase) => lock_now(
                        &window,
                        &a,
                        "The current passphrase was wrong, so the wallet was locked and nothing was changed. Unlock it with your passphrase.",
                    ),
                    Err(e) => sa.set_error(plain(&e).into()),
                }
            },
        );
    });
}

/// "Sync now": the replica syncs on a worker thread (network, every entry
/// checked) without holding the wallet; the URL is kept once it succeeded.
fn sync_off_thread(window: &AppWindow, app: &App) {
    app.touch();
    let sa = window.global::<SettingsAdapter>();
    sa.set_sync_error("".into());
    sa.set_sync_notice("".into());
    let target = {
        let session = app.session();
        session.wallet().map_err(|e| plain(&e)).and_then(|w| {
            sync::target(w, &sa.get_registry(), &sa.get_node_key()).map_err(|e| plain(&e))
        })
    };
    let target = match target {
        Ok(t) => t,
        Err(e) => {
            sa.set_sync_error(e.into());
            return;
        }
    };
    let what = format!(
        "Syncing from {}: fetching the chain and checking every entry and block…",
        target.url
    );
    let a = app.clone();
    off_thread(
        window,
        &what,
        move || sync::run(&target).map(|check| (target, check)),
        move |window, result| {
            let sa = window.global::<SettingsAdapter>();
            let finished = result.map_err(|e| plain(&e)).and_then(|(target, check)| {
                let session = a.session();
                let wallet = session.wallet().map_err(|e| plain(&e))?;
                let synced =
                    sync::finish(wallet, &target, &check, &mut OsRng).map_err(|e| plain(&e))?;
                Ok((synced, sync::last_sync(wallet)))
            });
            match finished {
                Ok((synced, last)) => {
                    sa.set_registry(synced.url.clone().into());
                    sa.set_node_key("".into());
                    sa.set_last_sync(last.into());
                    sa.set_sync_notice(synced.summary().into());
                }
                Err(e) => sa.set_sync_error(e.into()),
            }
        },
    );
}

//! `vouch-app`: the Vouch desktop wallet.

mod cli;

use anyhow::Context as _;
use clap::Parser as _;
use slint::ComponentHandle as _;
use vouch_core::seal::Cost;
use vouch_ui::controller::session;
use vouch_ui::ui::{AppWindow, CredentialsAdapter, DetailAdapter, NavAdapter, Page, ShareAdapter};
use vouch_ui::{connect, App, Options};

use cli::{Cli, DemoView};

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("vouch-app: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let dir = cli.wallet_dir()?;
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let window = AppWindow::new().context(
        "cannot open a window (no X11 display? set DISPLAY, or run under Xvfb; see the README)",
    )?;
    let app = App::new(Options {
        dir,
        cost: Cost::DEFAULT,
    });
    let _connection = connect(&window, app.clone());
    if let Some(view) = cli.demo_view {
        demo(&window, &app, view, cli.demo_request.as_deref())?;
    }
    window.run().context("running the window")?;
    Ok(())
}

/// Opens the wallet with VOUCH_PASSPHRASE and drives the views to `view`
/// through the same callbacks a click runs (for `share`, answering
/// `request` when given).
fn demo(
    window: &AppWindow,
    app: &App,
    view: DemoView,
    request: Option<&str>,
) -> anyhow::Result<()> {
    let pass = std::env::var("VOUCH_PASSPHRASE")
        .context("--demo-view needs the wallet's passphrase in VOUCH_PASSPHRASE")?;
    let dir = app.session().dir().to_owned();
    let wallet = session::unlock(&dir, &pass)?;
    app.adopt(window, wallet);
    let nav = window.global::<NavAdapter>();
    let first = || {
        let cards = window.global::<CredentialsAdapter>().get_cards();
        slint::Model::row_data(&cards, 0)
            .map(|c| c.id)
            .context("--demo-view needs a wallet holding a credential")
    };
    match view {
        DemoView::List => {}
        DemoView::Detail => window.global::<CredentialsAdapter>().invoke_open(first()?),
        DemoView::Share => {
            window.global::<CredentialsAdapter>().invoke_open(first()?);
            window.global::<DetailAdapter>().invoke_share();
            let share = window.global::<ShareAdapter>();
            if let Some(text) = request {
                share.set_request_input(text.into());
                share.invoke_read_request();
                let error = share.get_request_error();
                if !error.is_empty() {
                    anyhow::bail!("--demo-request: {error}");
                }
            }
            let choices = share.get_choices();
            // Three courses, of the shortest labels: the smallest code (a
            // code above QR version 25 goes through the relay of the
            // wallet's registry, or is refused without one).
            let mut courses: Vec<(usize, usize)> = (0..slint::Model::row_count(&choices))
                .filter_map(|i| slint::Model::row_data(&choices, i).map(|c| (i, c)))
                .filter(|(_, c)| c.name.starts_with("courses["))
                .map(|(i, c)| (c.label.chars().count(), i))
                .collect();
            courses.sort_unstable();
            let courses: Vec<usize> = courses.into_iter().take(3).map(|(_, i)| i).collect();
            for i in courses {
                share.invoke_toggle(i32::try_from(i)?, true);
                if let Some(mut c) = slint::Model::row_data(&choices, i) {
                    c.checked = true;
                    slint::Model::set_row_data(&choices, i, c);
                }
            }
            if request.is_none() {
                share.set_aud("https://verifier.example".into());
                share.set_nonce("demo-nonce".into());
            }
            share.invoke_make();
            let error = share.get_error();
            if !error.is_empty() {
                anyhow::bail!("--demo-view share: {error}");
            }
        }
        DemoView::Receive => {
            nav.invoke_navigate(Page::Receive);
            window
                .global::<vouch_ui::ui::ReceiveAdapter>()
                .invoke_new_did();
        }
        DemoView::Activity => nav.invoke_navigate(Page::Activity),
        DemoView::Settings => nav.invoke_navigate(Page::Settings),
        DemoView::About => nav.invoke_navigate(Page::About),
    }
    Ok(())
}

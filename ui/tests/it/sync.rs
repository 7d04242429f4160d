//! Settings: the registry URL and "Sync now" against real registries served
//! on loopback (`vouch_registry::testkit`): nothing listening, then the
//! registry whose node key is given (synced to its block, the URL kept),
//! then another registry with its own key (refused: not the one the wallet
//! trusts; nothing changed).

use std::sync::Arc;

use rand::rngs::StdRng;
use rand::SeedableRng;
use slint::ComponentHandle;
use vouch_core::seal::Cost;
use vouch_registry::node::{Node, NodeConfig};
use vouch_registry::testkit::{self, LoopbackNode, TestServer};
use vouch_ui::ui::{AppWindow, Page, SettingsAdapter};
use vouch_ui::{connect, App, Options};
use vouch_wallet::Wallet;

use crate::views::{click, one, page, type_in, wait_until};

/// A second registry with its own origin and node key, served on loopback.
pub fn other_registry(rt: &tokio::runtime::Runtime, dir: &std::path::Path) -> TestServer {
    let config = NodeConfig {
        origin: "other.example/registry".into(),
        witnesses: Vec::new(),
        need: 0,
    };
    Node::init(
        dir,
        config,
        vouch_registry::now(),
        &mut StdRng::seed_from_u64(99),
    )
    .unwrap();
    let node = Arc::new(Node::open(dir).unwrap());
    rt.block_on(testkit::serve_node(node)).unwrap()
}

/// Presses "Sync now" and waits for its result: (error, notice).
fn sync_now(window: &AppWindow) -> (String, String) {
    click(window, "Sync now");
    wait_until(window, "the sync", |w| {
        let sa = w.global::<SettingsAdapter>();
        !sa.get_sync_error().is_empty() || !sa.get_sync_notice().is_empty()
    });
    let sa = window.global::<SettingsAdapter>();
    (sa.get_sync_error().into(), sa.get_sync_notice().into())
}

/// Registry URL, sync, errors inline.
pub fn settings_sync_now_against_real_registries() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let net = rt
        .block_on(LoopbackNode::start(&tmp.path().join("net"), &[], 0))
        .unwrap();
    let other = other_registry(&rt, &tmp.path().join("other"));
    let mut rng = StdRng::seed_from_u64(41);
    let (wallet, _) =
        Wallet::create(&tmp.path().join("w"), "long enough", Cost::TEST, &mut rng).unwrap();

    let window = AppWindow::new().unwrap();
    let app = App::new(Options {
        dir: tmp.path().join("w"),
        cost: Cost::TEST,
    });
    let _connection = connect(&window, app.clone());
    app.adopt(&window, wallet);
    click(&window, "Settings");
    assert_eq!(page(&window), Page::Settings);
    let last = one(&window, "Last sync").accessible_label().unwrap();
    assert_eq!(last, "Last sync");
    assert!(window
        .global::<SettingsAdapter>()
        .get_last_sync()
        .starts_with("Not synced yet"));

    // Nothing listening.
    let port = testkit::free_port().unwrap();
    type_in(&window, "Registry URL", &format!("http://127.0.0.1:{port}"));
    let (error, _) = sync_now(&window);
    assert!(error.starts_with("cannot reach the registry at"), "{error}");
    let registry = || app.session().wallet().unwrap().registry().unwrap();
    assert_eq!(registry(), None, "a refused sync keeps no URL");

    // The registry, its node key given.
    type_in(&window, "Registry URL", net.server.url());
    type_in(&window, "Registry node key", &net.node.vkey());
    let (error, notice) = sync_now(&window);
    assert_eq!(error, "");
    assert!(notice.starts_with("Synced to block 0, as of "), "{notice}");
    assert!(notice.contains(net.server.url()), "{notice}");
    assert!(
        !notice.contains("trusts this registry's node key"),
        "{notice}"
    );
    assert_eq!(registry().as_deref(), Some(net.server.url()));
    let last = window.global::<SettingsAdapter>().get_last_sync();
    assert!(last.starts_with("Last synced to block 0, as of "), "{last}");
    assert_eq!(window.global::<SettingsAdapter>().get_node_key(), "");

    // Another registry: refused, nothing changed.
    type_in(&window, "Registry URL", other.url());
    let (error, notice) = sync_now(&window);
    assert_eq!(notice, "");
    assert!(
        error.contains("is not the one this wallet trusts"),
        "{error:?}"
    );
    assert_eq!(registry().as_deref(), Some(net.server.url()));
    // A node key other than the pinned one is refused before any request.
    type_in(&window, "Registry URL", net.server.url());
    type_in(
        &window,
        "Registry node key",
        "other.example/registry+0000+AAAA",
    );
    let (error, _) = sync_now(&window);
    assert!(
        error.contains("already trusts the registry node key"),
        "{error}"
    );

    // Syncing again from the kept URL (the field emptied) works.
    type_in(&window, "Registry node key", "");
    type_in(&window, "Registry URL", "");
    let (error, notice) = sync_now(&window);
    assert_eq!(error, "");
    assert!(notice.starts_with("Synced to block 0"), "{notice}");
    drop(other);
    drop(net);
}

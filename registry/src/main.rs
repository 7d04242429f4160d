//! `vouch-registry`: run and check the revocation chain. Parses arguments,
//! calls the library, prints.

mod cli;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser as _;
use serde_json::json;
use vouch_core::chain::Action;
use vouch_registry::client::NodeClient;
use vouch_registry::node::{Node, NodeConfig};
use vouch_registry::trust::{self, DirCheck, FirstSync, NodePin};
use vouch_registry::witness::Witness;
use vouch_registry::{keys, now, ServeOptions};

use cli::{Cli, Command};

fn main() {
    vouch_registry::cli_support::init_tracing("info");
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vouch-registry: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = runtime.block_on(run(cli.command)) {
        eprintln!("vouch-registry: {}", vouch_registry::report(&e));
        std::process::exit(1);
    }
}

fn pin(node_key: Option<String>, trust_on_first_use: bool) -> NodePin {
    match (node_key, trust_on_first_use) {
        (Some(key), _) => NodePin::Key(key),
        (None, true) => NodePin::FirstUse,
        (None, false) => NodePin::Pinned,
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Init {
            dir,
            origin,
            witnesses,
            need,
            force_weak_quorum,
            json,
        } => init(&dir, origin, witnesses, need, force_weak_quorum, json),
        Command::Serve {
            dir,
            listen,
            block_interval,
            heartbeat,
            addr_file,
        } => {
            serve(
                &dir,
                listen,
                block_interval,
                heartbeat,
                addr_file.as_deref(),
            )
            .await
        }
        Command::Status { registry, json } => {
            let client = NodeClient::new(&registry)?;
            let info = client.info().await?;
            let checkpoint = client.checkpoint().await?;
            if json {
                println!(
                    "{}",
                    json!({
                        "origin": info.origin,
                        "node_vkey": info.node_vkey,
                        "witnesses": info.witnesses,
                        "need": info.need,
                        "size": info.size,
                        "checkpoint": checkpoint,
                    })
                );
            } else {
                println!("origin: {}", info.origin);
                println!("node key: {}", info.node_vkey);
                println!("entries: {}", info.size);
                println!(
                    "witnesses: {} (blocks need {})",
                    info.witnesses.len(),
                    info.need
                );
                print!("latest checkpoint:\n{checkpoint}");
            }
            Ok(())
        }
        Command::Accredit {
            registry,
            authority_key,
            issuer,
            name,
            kind,
            json,
        } => {
            let action = Action::Accredit {
                issuer: issuer.clone(),
                name,
                kinds: kind,
            };
            let receipt = submit_as(&registry, &authority_key, action).await?;
            if json {
                println!(
                    "{}",
                    json!({ "issuer": issuer, "index": receipt.index, "leaf_hash": receipt.leaf_hash })
                );
            } else {
                println!("accredited {issuer} (entry {})", receipt.index);
            }
            Ok(())
        }
        Command::Withdraw {
            registry,
            authority_key,
            issuer,
            reason,
        } => {
            let action = Action::Withdraw {
                issuer: issuer.clone(),
                reason,
            };
            let receipt = submit_as(&registry, &authority_key, action).await?;
            println!("withdrew {issuer} (entry {})", receipt.index);
            Ok(())
        }
        Command::Witness {
            dir,
            registry,
            name,
            node_key,
            trust_on_first_use,
            show_key,
            once,
            interval,
        } => {
            let pin = pin(node_key, trust_on_first_use);
            witness(&dir, registry, name, pin, show_key, once, interval).await
        }
        Command::Verify {
            dir,
            registry,
            node_key,
            trust_on_first_use,
            witnesses,
            need,
            force_weak_quorum,
            json,
        } => {
            let check = match registry {
                Some(registry) => {
                    let first = FirstSync {
                        pin: pin(node_key, trust_on_first_use),
                        witnesses,
                        need,
                        force_weak_quorum,
                    };
                    let client = NodeClient::new(&registry)?;
                    trust::sync_dir(&dir, &client, first).await?
                }
                None => trust::audit_dir(&dir)?,
            };
            print_check(&check, json);
            Ok(())
        }
    }
}

fn init(
    dir: &Path,
    origin: String,
    witnesses: Vec<String>,
    need: usize,
    force_weak_quorum: bool,
    json: bool,
) -> anyhow::Result<()> {
    if need > witnesses.len() {
        bail!(
            "--need {need} is more than the {} witnesses given",
            witnesses.len()
        );
    }
    let config = NodeConfig {
        origin,
        witnesses,
        need,
    };
    config
        .check_quorum(force_weak_quorum)
        .context("--need (pass --force-weak-quorum to allow it anyway)")?;
    let report = Node::init(dir, config, now(), &mut rand::rngs::OsRng)?;
    if json {
        println!(
            "{}",
            json!({
                "node_vkey": report.node_vkey,
                "authority": report.authority,
                "authority_key": report.authority_key,
            })
        );
    } else {
        println!("node created in {}", dir.display());
        println!(
            "node key (give to witnesses and replicas): {}",
            report.node_vkey
        );
        println!("genesis authority: {}", report.authority);
        println!(
            "authority key: {} (keep it safe; `vouch-registry accredit` signs with it)",
            report.authority_key.display()
        );
    }
    Ok(())
}

async fn serve(
    dir: &Path,
    listen: std::net::SocketAddr,
    block_interval: u64,
    heartbeat: u64,
    addr_file: Option<&Path>,
) -> anyhow::Result<()> {
    let node =
        Arc::new(Node::open(dir).with_context(|| format!("opening node {}", dir.display()))?);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!("serving {} on {url}", node.config().origin);
    if let Some(path) = addr_file {
        vouch_registry::cli_support::write_addr_file(path, &url)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let options = ServeOptions {
        block_interval: Some(Duration::from_secs(block_interval.max(1))),
        heartbeat: (heartbeat > 0).then(|| Duration::from_secs(heartbeat)),
        ..ServeOptions::default()
    };
    vouch_registry::serve(node, listener, options, async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await?;
    Ok(())
}

async fn submit_as(
    registry: &str,
    key_file: &Path,
    action: Action,
) -> anyhow::Result<vouch_registry::node::Receipt> {
    let key = keys::read(key_file).with_context(|| format!("reading {}", key_file.display()))?;
    let client = NodeClient::new(registry)?;
    Ok(client.sign_and_submit(&key, action).await?)
}

async fn witness(
    dir: &Path,
    registry: Option<String>,
    name: Option<String>,
    pin: NodePin,
    show_key: bool,
    once: bool,
    interval: u64,
) -> anyhow::Result<()> {
    let mut w = Witness::open(dir, name.as_deref(), &mut rand::rngs::OsRng)?;
    if show_key {
        println!("{}", w.vkey());
        return Ok(());
    }
    let Some(registry) = registry else {
        bail!("--registry URL is needed (or --show-key)");
    };
    match pin {
        NodePin::Key(key) => w.pin_node(&key)?,
        NodePin::FirstUse => w.trust_on_first_use(),
        NodePin::Pinned if w.node_vkey().is_none() => bail!(
            "--node-key KEY is needed (the key `vouch-registry init` printed), or \
             --trust-on-first-use to follow the first key the registry shows"
        ),
        NodePin::Pinned => {}
    }
    let client = NodeClient::new(&registry)?;
    loop {
        match w.round(&client).await {
            Ok(Some((height, by))) => {
                tracing::info!("cosigned block {height}; cosigned by {}", by.join(", "));
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!("{e}");
                if once {
                    return Err(e.into());
                }
            }
        }
        if once {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(interval.max(1))).await;
    }
}

fn print_check(check: &DirCheck, json: bool) {
    let report = &check.audit;
    if let Some(key) = &check.trusted_on_first_use {
        eprintln!("trusting node key {key} on first use (--trust-on-first-use)");
    }
    if json {
        println!(
            "{}",
            json!({
                "ok": true,
                "entries": report.entries,
                "blocks": report.blocks,
                "cosigned_blocks": report.cosigned_blocks,
                "head": report.head.map(|(h, s)| json!({"height": h, "size": s})),
                "issuers": report.issuers,
                "lists": report.lists,
                "synced": check.synced.as_ref().map(|s| json!({"from": s.from, "to": s.to, "height": s.height, "cosigned_by": s.cosigned_by})),
            })
        );
        return;
    }
    if let Some(s) = &check.synced {
        println!(
            "synced entries {}..{} to block {} (cosigned by {})",
            s.from,
            s.to,
            s.height,
            if s.cosigned_by.is_empty() {
                "none".into()
            } else {
                s.cosigned_by.join(", ")
            }
        );
    }
    println!(
        "OK: {} entries, {} blocks ({} with {} cosignatures), {} issuers, {} status lists",
        report.entries,
        report.blocks,
        report.cosigned_blocks,
        check.policy.need(),
        report.issuers,
        report.lists
    );
}

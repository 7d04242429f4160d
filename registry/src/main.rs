//! `vouch-registry`: run and check the revocation chain.

mod cli;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Parser as _;
use serde_json::json;
use vouch_core::chain::{Action, Entry};
use vouch_core::log::TrustPolicy;
use vouch_registry::client::NodeClient;
use vouch_registry::node::{Node, NodeConfig};
use vouch_registry::relay::{Relay, RelayLimits};
use vouch_registry::replica::{audit, Replica, Trust, TrustFile};
use vouch_registry::store::Store;
use vouch_registry::witness::Witness;
use vouch_registry::{api, keys, now, ServeLimits};

use cli::{Cli, Command};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
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
            addr_file,
        } => serve(&dir, listen, block_interval, addr_file.as_deref()).await,
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
            let pin = match (node_key, trust_on_first_use) {
                (Some(key), _) => NodePin::Key(key),
                (None, true) => NodePin::FirstUse,
                (None, false) => NodePin::Pinned,
            };
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
            let pin = match (node_key, trust_on_first_use) {
                (Some(key), _) => NodePin::Key(key),
                (None, true) => NodePin::FirstUse,
                (None, false) => NodePin::Pinned,
            };
            verify(
                &dir,
                registry,
                pin,
                Quorum {
                    witnesses,
                    need,
                    force_weak_quorum,
                },
                json,
            )
            .await
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
    addr_file: Option<&Path>,
) -> anyhow::Result<()> {
    let node =
        Arc::new(Node::open(dir).with_context(|| format!("opening node {}", dir.display()))?);
    // Relay items used to live in the chain's own `Db`; drop any left there.
    let legacy = node.store().open_tree("relay")?;
    if !legacy.is_empty() {
        tracing::info!(
            "removing {} relay items from the chain's store",
            legacy.len()
        );
        legacy.clear()?;
    }
    let relay_dir = dir.join("relay");
    let relay = Arc::new(
        Relay::open(&relay_dir, RelayLimits::default())
            .with_context(|| format!("opening the relay store {}", relay_dir.display()))?,
    );
    let app = api::app_with(node.clone(), relay.clone());
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!("serving {} on {url}", node.config().origin);
    if let Some(path) = addr_file {
        std::fs::write(path, &url).with_context(|| format!("writing {}", path.display()))?;
    }
    let sealer = node.clone();
    let ticker = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(block_interval.max(1)));
        loop {
            tick.tick().await;
            let n = sealer.clone();
            match tokio::task::spawn_blocking(move || n.seal(now())).await {
                Ok(Ok(Some(_))) => tracing::info!("sealed block {}", sealer.head().height),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::error!("sealing failed: {e}"),
                Err(e) => tracing::error!("sealer task: {e}"),
            }
            let r = relay.clone();
            match tokio::task::spawn_blocking(move || r.sweep(now())).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::debug!("relay: {n} expired items removed"),
                Ok(Err(e)) => tracing::error!("relay sweep: {e}"),
                Err(e) => tracing::error!("relay sweep task: {e}"),
            }
        }
    });
    vouch_registry::serve(listener, app, ServeLimits::default(), async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
    .await?;
    ticker.abort();
    node.seal(now())?;
    node.store().flush()?;
    Ok(())
}

async fn submit_as(
    registry: &str,
    key_file: &Path,
    action: Action,
) -> anyhow::Result<vouch_registry::node::Receipt> {
    let key = keys::read(key_file).with_context(|| format!("reading {}", key_file.display()))?;
    let client = NodeClient::new(registry)?;
    let did = vouch_core::DidKey::from_public_key(&key.verifying_key());
    let seq = client.next_seq(did.as_str()).await?;
    let entry = Entry::sign(&key, seq, now(), action);
    Ok(client.submit(entry.as_bytes()).await?)
}

/// Where a witness's or a replica's node key comes from.
enum NodePin {
    /// `--node-key`.
    Key(String),
    /// `--trust-on-first-use`.
    FirstUse,
    /// Neither: it must be pinned in the directory already.
    Pinned,
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

/// The policy to check directory `dir` with: a node's own, a witness's, or a
/// replica's `trust.json`.
fn policy_of(dir: &Path) -> anyhow::Result<Option<(TrustPolicy, std::path::PathBuf)>> {
    if dir.join("config.json").exists() {
        let config: NodeConfig = serde_json::from_slice(&std::fs::read(dir.join("config.json"))?)?;
        let key = keys::read(&dir.join("node.key"))?;
        return Ok(Some((config.policy(&key.verifying_key())?, dir.join("db"))));
    }
    if dir.join("witness.json").exists() {
        let c: vouch_registry::witness::WitnessConfig =
            serde_json::from_slice(&std::fs::read(dir.join("witness.json"))?)?;
        let Some(vkey) = c.node_vkey else {
            bail!("witness in {} has not followed a node yet", dir.display());
        };
        let trust = Trust {
            node_vkey: vkey,
            witnesses: Vec::new(),
            need: 0,
        };
        return Ok(Some((trust.policy()?, dir.join("db"))));
    }
    if dir.join("trust.json").exists() {
        let trust: TrustFile = serde_json::from_slice(&std::fs::read(dir.join("trust.json"))?)
            .context("trust.json")?;
        return Ok(Some((
            trust.policy().context("trust.json")?,
            dir.join("db"),
        )));
    }
    Ok(None)
}

/// The witnesses and quorum a first `verify --registry` configures.
struct Quorum {
    witnesses: Vec<String>,
    need: usize,
    force_weak_quorum: bool,
}

async fn verify(
    dir: &Path,
    registry: Option<String>,
    pin: NodePin,
    quorum: Quorum,
    json: bool,
) -> anyhow::Result<()> {
    // Set when this run wrote `trust.json`: a first sync that fails removes
    // it again, so a retry (with the right key) starts afresh.
    let mut configured = None;
    if let Some(registry) = &registry {
        if policy_of(dir)?.is_none() {
            let node_vkey = match pin {
                NodePin::Key(k) => k,
                NodePin::FirstUse => {
                    let info = NodeClient::new(registry)?.info().await?;
                    eprintln!(
                        "trusting node key {} on first use (--trust-on-first-use)",
                        info.node_vkey
                    );
                    info.node_vkey
                }
                NodePin::Pinned => bail!(
                    "{} has no trust.json yet: --node-key KEY is needed (the key \
                     `vouch-registry init` printed), or --trust-on-first-use to trust the \
                     first key the registry shows",
                    dir.display()
                ),
            };
            let trust = TrustFile {
                trust: Trust {
                    node_vkey,
                    witnesses: quorum.witnesses,
                    need: quorum.need,
                },
                force_weak_quorum: quorum.force_weak_quorum,
            };
            trust
                .policy()
                .context("--need (pass --force-weak-quorum to allow it anyway)")?;
            std::fs::create_dir_all(dir)?;
            let path = dir.join("trust.json");
            std::fs::write(&path, serde_json::to_vec_pretty(&trust)?)?;
            configured = Some(path);
        }
    }
    let result = check(dir, registry.as_deref(), json).await;
    if let (Err(_), Some(path)) = (&result, configured) {
        // Best effort: the error being reported matters more.
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Syncs the replica in `dir` from `registry` (if given), then audits it.
async fn check(dir: &Path, registry: Option<&str>, json: bool) -> anyhow::Result<()> {
    let Some((policy, db)) = policy_of(dir)? else {
        bail!(
            "{} is not a node, witness or replica directory (no config.json, witness.json or trust.json)",
            dir.display()
        );
    };
    let (synced, report) = match registry {
        Some(registry) => {
            let client = NodeClient::new(registry)?;
            let mut replica = Replica::open(&db, policy.clone())?;
            let synced = replica.sync(&client).await?;
            (Some(synced), audit(replica.store(), &policy)?)
        }
        None => {
            let store = Store::open(&db)?;
            (None, audit(&store, &policy)?)
        }
    };
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
                "synced": synced.map(|s| json!({"from": s.from, "to": s.to, "height": s.height, "cosigned_by": s.cosigned_by})),
            })
        );
    } else {
        if let Some(s) = synced {
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
            policy.need(),
            report.issuers,
            report.lists
        );
    }
    Ok(())
}

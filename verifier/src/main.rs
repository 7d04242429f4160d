//! `vouch-verifier`: see `cli.rs` for the commands.

mod cli;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use vouch_core::ClaimPath;
use vouch_verifier::{
    report, service, Ask, BatchConfig, CheckPool, Input, NodePin, PolicyFile, Verifier,
};

use crate::cli::{Batching, Cli, Command, InitArgs, RequestArgs, ServeArgs, VerifyArgs};

/// mimalloc, not glibc's malloc: a check allocates and frees hundreds of
/// small values, on whichever worker thread runs it, and glibc's arenas
/// made malloc and free about a quarter of the native samples of checks
/// on many threads (docs/benchmarks.md, "Session 8: the allocator"). Without the
/// `mimalloc` feature (on by default), the system's, for comparison.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit code: the presentation is not valid.
const INVALID: u8 = 1;
/// Exit code: it could not be checked (or another command failed).
const COULD_NOT: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init(args) => init(args).await,
        Command::Request(args) => request(args),
        Command::Verify(args) => verify(args).await,
        Command::Serve(args) => serve(args).await,
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", vouch_registry::report(&e));
            ExitCode::from(COULD_NOT)
        }
    }
}

fn policy(path: Option<&std::path::Path>) -> anyhow::Result<Option<PolicyFile>> {
    Ok(match path {
        Some(p) => Some(PolicyFile::read(p)?),
        None => None,
    })
}

async fn init(args: InitArgs) -> anyhow::Result<u8> {
    let pin = match (args.node_key, args.trust_on_first_use) {
        (Some(key), _) => NodePin::Key(key),
        (None, true) => NodePin::FirstUse,
        (None, false) => anyhow::bail!(
            "--node-key KEY is needed (the key `vouch-registry init` printed), or \
             --trust-on-first-use to trust the key the registry shows now"
        ),
    };
    let first_use = pin == NodePin::FirstUse;
    let config = Verifier::init(&args.dir, &args.registry, pin, args.aud).await?;
    if first_use {
        eprintln!(
            "trusting node key {} on first use (--trust-on-first-use)",
            config.node_vkey
        );
    }
    let synced = match first_sync(&args.dir).await {
        Ok(synced) => synced,
        Err(e) => {
            // A retry (with the right key or registry) starts afresh; best
            // effort: the error being reported matters more.
            let _ = std::fs::remove_file(args.dir.join(vouch_verifier::verifier::CONFIG_FILE));
            return Err(e.context("first sync from the registry"));
        }
    };
    println!("verifier in {}", args.dir.display());
    println!("audience: {}", config.aud);
    println!("synced to block {} ({} entries)", synced.height, synced.to);
    Ok(0)
}

async fn first_sync(dir: &std::path::Path) -> anyhow::Result<vouch_registry::replica::SyncReport> {
    let mut verifier = Verifier::open(dir, None)?;
    Ok(verifier.sync(None).await?)
}

fn request(args: RequestArgs) -> anyhow::Result<u8> {
    let claims = args
        .claims
        .iter()
        .map(|c| ClaimPath::parse(c).with_context(|| format!("--claim {c}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let verifier = Verifier::open(&args.dir, policy(args.policy.as_deref())?)?;
    let request = verifier.request(claims, vouch_verifier::now())?;
    let text = request.to_text();
    if let Some(out) = &args.qr {
        let code = vouch_core::qr::qr_code(&text, vouch_core::qr::EcLevel::M)?;
        std::fs::write(out, vouch_core::qr::png(&code, 8, 4)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    if args.json {
        let json = serde_json::json!({
            "request": text,
            "aud": request.aud(),
            "nonce": request.nonce(),
            "expires": request.expires(),
            "claims": request.claims().iter().map(ToString::to_string).collect::<Vec<_>>(),
        });
        println!("{json}");
    } else {
        println!("{text}");
        eprintln!(
            "nonce {} for {}, open until {} (Unix time)",
            request.nonce(),
            request.aud(),
            request.expires()
        );
    }
    Ok(0)
}

async fn verify(args: VerifyArgs) -> anyhow::Result<u8> {
    let mut verifier = Verifier::open(&args.dir, policy(args.policy.as_deref())?)?;
    if let Some(registry) = &args.registry {
        let synced = verifier
            .sync(Some(registry))
            .await
            .with_context(|| format!("syncing from {registry}"))?;
        eprintln!("synced to block {}", synced.height);
    }
    let input = match (&args.qr, &args.input) {
        (Some(path), _) => {
            let input = Input::read_file(path)?;
            anyhow::ensure!(
                matches!(input, Input::Image(_)),
                "--qr {}: not a PNG or JPEG image",
                path.display()
            );
            input
        }
        (None, Some(path)) => Input::read_file(path)?,
        (None, None) => Input::read_stdin()?,
    };
    let presented = input
        .resolve_with(&verifier.checker().relay_hosts())
        .await?;
    let ask = Ask {
        aud: args.aud,
        nonce: args.nonce,
    };
    let checked = verifier.check(&presented, &ask, vouch_verifier::now())?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checked)?);
    } else {
        print!("{}", report::render(&checked));
    }
    Ok(if checked.is_valid() { 0 } else { INVALID })
}

async fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    vouch_registry::cli_support::init_tracing("info");
    // The lock is dropped last, once the stores are closed.
    let (verifier, mut lock) =
        Verifier::open_for_service(&args.dir, policy(args.policy.as_deref())?)?;
    let registry = args
        .registry
        .or_else(|| verifier.config().registry.clone())
        .context("no registry to sync from: pass --registry URL")?;
    let view = verifier.view().ok();
    let (mut checker, replica) = verifier.into_parts();
    let state = match args.batching {
        Batching::Pool => service::AppState::pooled(
            checker,
            view,
            service::PoolConfig {
                workers: args
                    .check_workers
                    .map(|n| usize::try_from(n).unwrap_or(CheckPool::MAX_WORKERS)),
                max: args.batch_max,
                max_queued: usize::try_from(args.max_queued).unwrap_or(usize::MAX),
            },
        )
        .context("starting the check workers")?,
        Batching::Gather => {
            checker.set_batching((args.batch_max > 1).then(|| BatchConfig {
                max: args.batch_max,
                window: std::time::Duration::from_micros(args.batch_window_us),
                adaptive: true,
            }));
            service::AppState::new(checker, view)
        }
    };
    let sync = tokio::spawn(service::sync_loop(
        state.clone(),
        replica,
        registry,
        std::time::Duration::from_secs(args.sync_interval.max(1)),
    ));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!("verifier on {url}");
    lock.publish(&url)?;
    if let Some(path) = &args.addr_file {
        vouch_registry::cli_support::write_addr_file(path, &url)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    vouch_registry::serve_router(
        listener,
        service::app(state),
        vouch_registry::ServeLimits::default(),
        shutdown(),
    )
    .await?;
    sync.abort();
    tracing::info!("stopped");
    Ok(0)
}

/// Ctrl-C or SIGTERM.
async fn shutdown() {
    let ctrl_c = async {
        // If the handler cannot be installed, wait for SIGTERM alone.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Vouch verifier: check a presented credential offline against this
/// verifier's replica of the revocation chain.
///
/// `verify` exits 0 when the presentation is valid, 1 when it is not
/// (the reason printed), 2 when it could not be checked.
#[derive(Debug, Parser)]
#[command(name = "vouch-verifier", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up a verifier in --dir for a registry: trust its node key.
    Init(InitArgs),
    /// Issue a presentation request (a fresh single-use nonce) and print its
    /// text for the holder's wallet.
    Request(RequestArgs),
    /// Check a presentation: a QR image, a file or standard input holding
    /// VCH1: text, a relay link, an SD-JWT presentation or a presentation
    /// file.
    Verify(VerifyArgs),
    /// Serve the HTTP API and the web page (camera scan) at /; sync the
    /// replica in the background.
    Serve(ServeArgs),
}

/// `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The verifier's directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The registry to sync from (default: the one `init` was given).
    #[arg(long)]
    pub registry: Option<String>,
    /// Address to listen on, e.g. 127.0.0.1:7500.
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// Write the URL the service listens on to this file once it is up
    /// (useful with port 0).
    #[arg(long)]
    pub addr_file: Option<PathBuf>,
    /// Seconds between background syncs.
    #[arg(long, default_value_t = 30)]
    pub sync_interval: u64,
    /// Policy file (default: <dir>/policy.toml, else the defaults).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// How concurrent verifications share signature checks: `pool` (worker
    /// threads, one per core by default, each checking what is queued as
    /// one batch) or `gather` (each request checked on its own thread, the
    /// signatures of concurrent ones gathered into a batch).
    #[arg(long, value_enum, default_value_t = Batching::Pool)]
    pub batching: Batching,
    /// Most presentations whose signatures are checked as one batch (0 or
    /// 1: each alone).
    #[arg(long, default_value_t = 64)]
    pub batch_max: usize,
    /// `gather` only: longest a batch stays open for more presentations,
    /// in microseconds (at most 2000). Batches close sooner whenever
    /// waiting would leave a core idle.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(0..=2000))]
    pub batch_window_us: u64,
    /// `pool` only: worker threads (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub check_workers: Option<u64>,
    /// `pool` only: most verifications waiting for a worker; more are
    /// answered `503 busy`.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_queued: u64,
}

/// How `serve` batches signature checks (see [`ServeArgs::batching`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Batching {
    /// Worker threads checking what is queued as one batch.
    Pool,
    /// The signatures of concurrent requests gathered into a batch.
    Gather,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The verifier's directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// The registry's URL.
    #[arg(long)]
    pub registry: String,
    /// The node key `vouch-registry init` printed.
    #[arg(long, conflicts_with = "trust_on_first_use")]
    pub node_key: Option<String>,
    /// Trust whatever node key the registry shows now.
    #[arg(long)]
    pub trust_on_first_use: bool,
    /// This verifier's audience (default: a fresh urn:vouch:verifier:…).
    #[arg(long)]
    pub aud: Option<String>,
}

/// `request`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// The verifier's directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// A claim the holder is asked to disclose (a path: /courses,
    /// /student_name); repeat or separate with commas.
    #[arg(long = "claim", value_delimiter = ',')]
    pub claims: Vec<String>,
    /// Also write the request as a QR code PNG here.
    #[arg(long, value_name = "OUT.png")]
    pub qr: Option<PathBuf>,
    /// Policy file (default: <dir>/policy.toml, else the defaults).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `verify`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["qr", "input", "stdin"]))]
pub struct VerifyArgs {
    /// The verifier's directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Sync the replica from this registry first (without it, the replica
    /// as last synced is used and its age reported).
    #[arg(long)]
    pub registry: Option<String>,
    /// A PNG or JPEG image of the QR code.
    #[arg(long, value_name = "IMAGE")]
    pub qr: Option<PathBuf>,
    /// A file: VCH1: text, a relay link, an SD-JWT presentation, a
    /// presentation file, or an image.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// `-`: read the input from standard input.
    #[arg(value_name = "-", value_parser = dash)]
    pub stdin: Option<bool>,
    /// The audience expected (default: the request's, else this verifier's).
    #[arg(long)]
    pub aud: Option<String>,
    /// The nonce expected, for a request made elsewhere. Not needed for a
    /// request this verifier issued (`request`): the nonce the
    /// presentation answers is found in its nonce book. A nonce may start
    /// with `-` (it is base64url).
    #[arg(long, allow_hyphen_values = true)]
    pub nonce: Option<String>,
    /// Policy file (default: <dir>/policy.toml, else the defaults).
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Print JSON (the full verification).
    #[arg(long)]
    pub json: bool,
}

fn dash(s: &str) -> Result<bool, String> {
    if s == "-" {
        Ok(true)
    } else {
        Err(format!(
            "unexpected argument {s:?}: give the input with --qr IMAGE, --input FILE or - (standard input)"
        ))
    }
}

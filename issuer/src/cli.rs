//! Command-line arguments of `vouch-issuer`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Issue verifiable credentials in batches, anchor them on the revocation
/// chain, revoke them.
#[derive(Debug, Parser)]
#[command(name = "vouch-issuer", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Passphrase sources, in order: --passphrase-file, VOUCH_PASSPHRASE, a
/// prompt.
#[derive(Debug, clap::Args)]
pub struct Passphrase {
    /// Read the keystore passphrase from this file (first line).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an issuer: its key in an encrypted keystore, and (without
    /// --registry) an embedded one-organisation registry in D/registry.
    Init {
        /// Issuer directory (created).
        #[arg(long)]
        dir: PathBuf,
        /// The issuer's name, as verifiers will see it.
        #[arg(long)]
        name: String,
        /// A remote registry to anchor on (default: the embedded one).
        #[arg(long)]
        registry: Option<String>,
        #[command(flatten)]
        passphrase: Passphrase,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue one credential per CSV row, anchor the batch, write the files
    /// and manifest.json.
    Issue(IssueArgs),
    /// Revoke (or suspend, or reinstate) a credential and publish the new
    /// status list.
    Revoke {
        /// Issuer directory.
        #[arg(long)]
        dir: PathBuf,
        /// The credential file.
        #[arg(
            long,
            conflicts_with = "status_index",
            required_unless_present = "status_index"
        )]
        credential: Option<PathBuf>,
        /// The status index.
        #[arg(long)]
        status_index: Option<u64>,
        /// The status list URI (needed with --status-index when the issuer
        /// has several lists).
        #[arg(long)]
        list: Option<String>,
        /// Suspend instead of revoke.
        #[arg(long, conflicts_with = "reinstate")]
        suspend: bool,
        /// Lift a suspension.
        #[arg(long)]
        reinstate: bool,
        /// Why, for your records (not published).
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        passphrase: Passphrase,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the built-in templates and their CSV columns.
    Templates {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `--output-format` of `issue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One `.sd-jwt` file per credential.
    Files,
    /// One JSON Lines file of all of them.
    Jsonl,
}

/// Arguments of `issue`.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// Issuer directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Template name (see `templates`) or a template .json file.
    #[arg(long)]
    pub template: String,
    /// The CSV of subjects.
    #[arg(long)]
    pub input: PathBuf,
    /// Where to write the credentials.
    #[arg(long)]
    pub out: PathBuf,
    /// Issue the valid rows and report each invalid one, instead of
    /// issuing nothing.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Also write a QR code PNG per credential (a `VCH1:` envelope, for a
    /// wallet's camera).
    #[arg(long)]
    pub qr: bool,
    /// How to write the credentials into --out: `files`, one `.sd-jwt`
    /// file each; or `jsonl`, one JSON Lines file `credentials.jsonl` (a
    /// line per credential: row, credential_id, file, holder, sd_jwt,
    /// anchor_proof). Both write manifest.json.
    #[arg(long, value_enum, default_value_t = OutputFormat::Files)]
    pub output_format: OutputFormat,
    #[command(flatten)]
    pub passphrase: Passphrase,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

//! Command-line arguments of `vouch-wallet`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Keep verifiable credentials under your own keys and share only the
/// claims you choose.
#[derive(Debug, Parser)]
#[command(name = "vouch-wallet", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the wallet is and how to open it.
#[derive(Debug, clap::Args)]
pub struct Open {
    /// Wallet directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Read the wallet passphrase from this file (first line). Otherwise
    /// VOUCH_PASSPHRASE, otherwise a prompt.
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
}

/// The cost of the KDF that protects a new wallet's passphrase.
#[derive(Debug, clap::Args)]
pub struct Kdf {
    /// Memory the passphrase KDF (Argon2id, 3 passes) uses, MiB: more is
    /// slower to guess; lower it only on small devices.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub kdf_memory_mib: u32,
}

impl Kdf {
    /// As a [`vouch_core::seal::Cost`].
    pub fn cost(&self) -> vouch_core::seal::Cost {
        vouch_core::seal::Cost {
            m_kib: self.kdf_memory_mib * 1024,
            ..vouch_core::seal::Cost::DEFAULT
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a wallet; prints its recovery phrase once.
    Init {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// The passphrase KDF's cost.
        #[command(flatten)]
        kdf: Kdf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore a wallet into an empty directory: from a backup file
    /// (`--from`; its passphrase becomes the wallet's), or from the
    /// recovery phrase (`--phrase`; read from --phrase-file, VOUCH_PHRASE,
    /// or a prompt), then import the issuers' files again.
    #[command(group(clap::ArgGroup::new("source").required(true).args(["from", "phrase"])))]
    Restore {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// A backup file made by `vouch-wallet backup`.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Restore from the recovery phrase.
        #[arg(long)]
        phrase: bool,
        /// Read the recovery phrase from this file.
        #[arg(long, requires = "phrase")]
        phrase_file: Option<PathBuf>,
        /// The passphrase KDF's cost.
        #[command(flatten)]
        kdf: Kdf,
    },
    /// Write the whole wallet to one file, encrypted (age) under the
    /// wallet's passphrase.
    Backup {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// The backup file (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// A fresh holder DID to give an issuer.
    Receive {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// Also write it as a QR code PNG here.
        #[arg(long)]
        qr: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Import credentials (SD-JWT VC files, or directories of them); each
    /// is checked and bound to one of this wallet's keys.
    Import {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// Files or directories (`.sd-jwt` files are read from a directory):
        /// SD-JWT or `VCH1:` text, or a PNG/JPEG image of an issuer's QR code;
        /// or an issuer's `credentials.jsonl` (a `.jsonl` file), from which
        /// the lines of this wallet's holders are imported (the others are
        /// counted as skipped; a file with a broken line is refused whole).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The issuer's batch manifest, for each credential's anchor proof.
        /// Without it, a `manifest.json` beside a file is used when present.
        #[arg(long)]
        manifest: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the credentials held.
    List {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One credential: every claim, and the names --disclose takes.
    Show {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// The credential's id (from `list`).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Present a credential, disclosing only the claims named.
    Present {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// The credential's id (from `list`).
        id: String,
        /// Claims to disclose, comma-separated: `degree,courses[CS101]`
        /// (`show` lists the names). Without it, the claims the request
        /// asks for.
        #[arg(long, value_delimiter = ',')]
        disclose: Vec<String>,
        /// The verifier's presentation request (`VCHR1:…` text, or `@FILE`).
        #[arg(long, conflicts_with_all = ["aud", "nonce"])]
        request: Option<String>,
        /// The verifier's audience (without --request).
        #[arg(long, requires = "nonce", required_unless_present = "request")]
        aud: Option<String>,
        /// The verifier's nonce (without --request).
        #[arg(long, requires = "aud", allow_hyphen_values = true)]
        nonce: Option<String>,
        /// Write the QR code here (`.png` or `.svg`).
        #[arg(long)]
        qr: Option<PathBuf>,
        /// Write the presentation to this file (JSON, with the anchor proof
        /// when the wallet holds one).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also draw the QR code in the terminal.
        #[arg(long)]
        terminal: bool,
        /// The registry whose relay takes a presentation too large for one
        /// QR code (remembered; default: the one set before).
        #[arg(long)]
        registry: Option<String>,
    },
    /// Sync the wallet's replica of the chain (statuses, issuer names) from
    /// a registry; the URL is remembered.
    Sync {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// The registry (default: the one set before).
        #[arg(long)]
        registry: Option<String>,
        /// The node's key (`vouch-registry init` printed it), pinned at the
        /// first sync.
        #[arg(long, conflicts_with = "trust_on_first_use")]
        node_key: Option<String>,
        /// Trust whatever node key the registry shows at the first sync.
        #[arg(long)]
        trust_on_first_use: bool,
        /// A witness key whose cosignature a block needs (repeat).
        #[arg(long)]
        witness: Vec<String>,
        /// How many of the witnesses must cosign.
        #[arg(long, default_value_t = 0)]
        need: usize,
        /// Allow a quorum of half the witnesses or fewer.
        #[arg(long)]
        force_weak_quorum: bool,
    },
    /// What was shared, when, with whom.
    Activity {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change the passphrase (read the new one from --new-passphrase-file,
    /// VOUCH_NEW_PASSPHRASE, or a prompt).
    Passwd {
        /// Where and how.
        #[command(flatten)]
        open: Open,
        /// Read the new passphrase from this file.
        #[arg(long)]
        new_passphrase_file: Option<PathBuf>,
    },
}

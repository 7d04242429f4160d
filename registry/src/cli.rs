//! Command-line arguments of `vouch-registry`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The Vouch revocation chain: a witnessed Merkle log sealed into blocks.
#[derive(Debug, Parser)]
#[command(name = "vouch-registry", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node: node key, genesis authority key (D/authority.key),
    /// genesis entry and block 0.
    Init {
        /// Node directory (created).
        #[arg(long)]
        dir: PathBuf,
        /// Log origin: the checkpoints' first line and the node key's name.
        #[arg(long, default_value = "vouch.example/registry")]
        origin: String,
        /// A witness verifier key whose cosignatures the node accepts
        /// (repeat for each; `vouch-registry witness --show-key` prints one).
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// Cosignatures a block needs to count as final: more than half of
        /// the witnesses (or 0 with no witnesses).
        #[arg(long, default_value_t = 0)]
        need: usize,
        /// Allow --need at most half of the witnesses (a weak quorum: two
        /// disjoint sets of witnesses could each cosign a different fork).
        #[arg(long)]
        force_weak_quorum: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the node's HTTP API until Ctrl-C.
    Serve {
        /// Node directory.
        #[arg(long)]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7400")]
        listen: SocketAddr,
        /// Seal a block this often (seconds) when there are new entries.
        #[arg(long, default_value_t = 5)]
        block_interval: u64,
        /// Seal a heartbeat block (no new entries, a new time) when the
        /// last block is this many seconds old, so replicas of a quiet
        /// chain stay fresh (a verifier refuses a replica older than its
        /// policy's max_replica_age, an hour by default); 0: never.
        #[arg(long, value_name = "SECS", default_value_t = vouch_registry::serve::DEFAULT_HEARTBEAT.as_secs())]
        heartbeat: u64,
        /// Write the URL the node listens on to this file once it is up
        /// (useful with port 0).
        #[arg(long)]
        addr_file: Option<PathBuf>,
    },
    /// Show a node's origin, key, size and latest checkpoint.
    Status {
        /// Registry base URL.
        #[arg(long)]
        registry: String,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Accredit an issuer for kinds of credential (signed by the authority).
    Accredit {
        /// Registry base URL.
        #[arg(long)]
        registry: String,
        /// The authority's key file.
        #[arg(long)]
        authority_key: PathBuf,
        /// The issuer's did:key.
        #[arg(long)]
        issuer: String,
        /// The issuer's display name.
        #[arg(long)]
        name: String,
        /// Credential kinds, comma-separated (e.g. transcript,employment).
        #[arg(long, value_delimiter = ',', required = true)]
        kind: Vec<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw an issuer's accreditation (signed by the authority).
    Withdraw {
        /// Registry base URL.
        #[arg(long)]
        registry: String,
        /// The authority's key file.
        #[arg(long)]
        authority_key: PathBuf,
        /// The issuer's did:key.
        #[arg(long)]
        issuer: String,
        /// Why, for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Follow a node, check each new checkpoint and cosign it.
    Witness {
        /// Witness directory (created; holds its key and its replica).
        #[arg(long)]
        dir: PathBuf,
        /// Registry base URL.
        #[arg(long)]
        registry: Option<String>,
        /// Witness name (its key name in cosignatures); set on first use.
        #[arg(long)]
        name: Option<String>,
        /// The node key to follow (`vouch-registry init` prints it); pinned
        /// in D/witness.json on first use. Needed, unless a key is pinned
        /// already or --trust-on-first-use is given.
        #[arg(long, conflicts_with = "trust_on_first_use")]
        node_key: Option<String>,
        /// With no node key pinned, follow whatever key the registry shows
        /// first (anyone who answers at that URL first is then trusted).
        #[arg(long)]
        trust_on_first_use: bool,
        /// Print this witness's verifier key and exit.
        #[arg(long)]
        show_key: bool,
        /// Check and cosign once, then exit.
        #[arg(long)]
        once: bool,
        /// Seconds between rounds.
        #[arg(long, default_value_t = 2)]
        interval: u64,
    },
    /// Re-check every entry, block and proof in a node, witness or replica
    /// directory; with --registry, first sync the replica in D from it.
    Verify {
        /// Directory to check (a node's, a witness's, or a replica's).
        #[arg(long)]
        dir: PathBuf,
        /// Sync the replica in D from this registry first.
        #[arg(long)]
        registry: Option<String>,
        /// The node key to trust (first sync only; saved in D/trust.json).
        /// Needed for a first sync, unless --trust-on-first-use is given.
        #[arg(long, conflicts_with = "trust_on_first_use")]
        node_key: Option<String>,
        /// On a first sync without --node-key, trust whatever key the
        /// registry shows (anyone who answers at that URL first is then
        /// trusted).
        #[arg(long)]
        trust_on_first_use: bool,
        /// A witness key to trust (repeat; first sync only).
        #[arg(long = "witness")]
        witnesses: Vec<String>,
        /// Cosignatures needed (first sync only): more than half of the
        /// witnesses (or 0 with no witnesses).
        #[arg(long, default_value_t = 0)]
        need: usize,
        /// Allow --need at most half of the witnesses (first sync only; a
        /// weak quorum: two disjoint sets of witnesses could each cosign a
        /// different fork, and this replica would accept either).
        #[arg(long)]
        force_weak_quorum: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

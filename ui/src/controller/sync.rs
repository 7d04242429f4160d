//! Settings, the registry: where the wallet syncs its chain replica from
//! (the statuses on the cards) and whose relay carries a presentation too
//! large for one QR code; and "Sync now".
//!
//! A sync is the CLI's `vouch-wallet sync`: `vouch_registry::trust::sync_dir`
//! on the wallet's replica directory. The first sync pins the registry's
//! node key (the one typed, else the one the registry shows: trust on first
//! use, said in the result); later syncs refuse a registry whose blocks that
//! key did not sign. The URL is kept in the wallet only once a sync from it
//! has succeeded, so the relay is only ever one of the registry the wallet
//! trusts.

use std::path::PathBuf;

use rand_core::CryptoRngCore;
use vouch_core::log::CheckpointError;
use vouch_registry::client::{ClientError, NodeClient};
use vouch_registry::replica::ReplicaError;
use vouch_registry::trust::{DirCheck, FirstSync, NodePin, TrustError, TrustFile};
use vouch_registry::SourceError;
use vouch_wallet::{Wallet, WalletError};

use crate::when;

/// Why a sync could not start or was refused. A refused sync changes
/// nothing: not the replica, not the registry kept in the wallet.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// No URL typed, and none kept.
    #[error("type the registry's URL, for example https://registry.example")]
    NoRegistry,
    /// Not an https:// URL, nor an http:// one of this computer.
    #[error("{0:?} is not a registry URL: it must start with https:// (or http:// for one on this computer: localhost, 127.0.0.1, [::1])")]
    NotHttp(String),
    /// The node key typed is not the one the wallet pinned before.
    #[error("the wallet already trusts the registry node key {pinned}, not the one typed; a registry with another key is not the one this wallet trusts")]
    KeyDiffers {
        /// The key pinned at the first sync.
        pinned: String,
    },
    /// The HTTP client could not be made.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Nothing answers at the URL.
    #[error(
        "cannot reach the registry at {url}; check the URL and the network (nothing was changed)"
    )]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: Box<TrustError>,
    },
    /// A registry answers, but not the one this wallet trusts.
    #[error("the registry at {url} is not the one this wallet trusts: its chain is not signed by the node key pinned at the first sync, or is not the chain synced before (nothing was changed)")]
    NotTrusted {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: Box<TrustError>,
    },
    /// The sync was refused for another reason.
    #[error("syncing from {url} failed (nothing was changed)")]
    Refused {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: Box<TrustError>,
    },
    /// The runtime the network client runs on could not start.
    #[error("cannot start the network runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The wallet (keeping the URL, reading the replica).
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// What a sync needs, read from the wallet and the form on the UI thread;
/// [`run`] needs nothing else (no wallet, so the session stays free).
#[derive(Debug, Clone)]
pub struct SyncTarget {
    /// The registry's base URL.
    pub url: String,
    /// The wallet's replica directory.
    pub replica: PathBuf,
    /// What a first sync trusts.
    pub first: FirstSync,
}

/// The sync `url_typed` (else the registry kept in the wallet) and
/// `node_key` (else trust on first use) ask for.
///
/// # Errors
/// [`SyncError::NoRegistry`], [`SyncError::NotHttp`],
/// [`SyncError::KeyDiffers`]; store errors.
pub fn target(wallet: &Wallet, url_typed: &str, node_key: &str) -> Result<SyncTarget, SyncError> {
    let url = match url_typed.trim() {
        "" => wallet.registry()?.ok_or(SyncError::NoRegistry)?,
        typed => typed.trim_end_matches('/').to_owned(),
    };
    let lower = url.to_ascii_lowercase();
    let allowed = if lower.starts_with("http://") {
        // Plain HTTP only to this computer: the first sync trusts the node
        // key the registry sends, which anyone on the way could replace.
        vouch_registry::client::is_loopback_url(&url)
    } else {
        lower.starts_with("https://")
    };
    if !allowed || url.contains(' ') {
        return Err(SyncError::NotHttp(url));
    }
    let replica = wallet.replica_dir();
    let node_key = node_key.trim();
    let pin = match node_key {
        "" => NodePin::FirstUse,
        key => {
            let pinned = TrustFile::read(&replica)
                .map_err(|source| SyncError::Refused {
                    url: url.clone(),
                    source: Box::new(source),
                })?
                .map(|t| t.trust.node_vkey);
            match pinned {
                Some(pinned) if pinned != key => return Err(SyncError::KeyDiffers { pinned }),
                _ => NodePin::Key(key.to_owned()),
            }
        }
    };
    Ok(SyncTarget {
        url,
        replica,
        first: FirstSync {
            pin,
            witnesses: Vec::new(),
            need: 0,
            force_weak_quorum: false,
        },
    })
}

/// Syncs the replica from the registry and audits it. Blocking (network,
/// signature checks): run it off the UI thread.
///
/// # Errors
/// [`SyncError::Unreachable`], [`SyncError::NotTrusted`],
/// [`SyncError::Refused`]; the replica is unchanged then.
pub fn run(target: &SyncTarget) -> Result<DirCheck, SyncError> {
    let client = NodeClient::new(&target.url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(SyncError::Runtime)?;
    runtime
        .block_on(vouch_registry::trust::sync_dir(
            &target.replica,
            &client,
            target.first.clone(),
        ))
        .map_err(|e| classify(&target.url, e))
}

/// Sorts a refused sync into what the holder can act on.
fn classify(url: &str, source: TrustError) -> SyncError {
    let url = url.to_owned();
    let source = Box::new(source);
    let unreachable = matches!(
        &*source,
        TrustError::Source(SourceError::Client(ClientError::Http { .. }))
            | TrustError::Replica(ReplicaError::Source(SourceError::Client(
                ClientError::Http { .. }
            )))
    );
    let untrusted = matches!(
        &*source,
        TrustError::Replica(
            // Another origin, another key, or a checkpoint that is none.
            ReplicaError::Checkpoint(
                CheckpointError::Unsigned(_)
                    | CheckpointError::Note(_)
                    | CheckpointError::Malformed(_)
            ) | ReplicaError::Fork { .. }
                | ReplicaError::Rollback { .. }
                | ReplicaError::Mismatch { .. }
        )
    );
    if unreachable {
        SyncError::Unreachable { url, source }
    } else if untrusted {
        SyncError::NotTrusted { url, source }
    } else {
        SyncError::Refused { url, source }
    }
}

/// A sync that succeeded, in the words the settings view shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synced {
    /// The registry.
    pub url: String,
    /// The block the replica is at.
    pub height: u64,
    /// That block's time, Unix seconds.
    pub time: i64,
    /// Entries checked.
    pub entries: u64,
    /// The node key trusted on first use by this sync, if it did.
    pub trusted_key: Option<String>,
}

impl Synced {
    /// `Synced to block 7, as of 2026-11-26 12:00 UTC, from … (… entries
    /// checked).`, and the key trusted on first use.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "Synced to block {}, as of {}, from {} ({} entries checked).",
            self.height,
            when::date_time(self.time),
            self.url,
            self.entries
        );
        if let Some(key) = &self.trusted_key {
            out.push_str(&format!(
                " First sync: the wallet now trusts this registry's node key {key}."
            ));
        }
        out
    }
}

/// Keeps the registry in the wallet after a successful [`run`], and reads
/// where the replica is now.
///
/// # Errors
/// Store errors; [`WalletError::Replica`] when the replica cannot be read.
pub fn finish(
    wallet: &Wallet,
    target: &SyncTarget,
    check: &DirCheck,
    rng: &mut impl CryptoRngCore,
) -> Result<Synced, SyncError> {
    if wallet.registry()?.as_deref() != Some(target.url.as_str()) {
        wallet.set_registry(&target.url, rng)?;
    }
    let (height, time) = match wallet.chain_view()? {
        Some(view) => (view.height(), view.time()),
        None => (check.synced.as_ref().map_or(0, |s| s.height), 0),
    };
    Ok(Synced {
        url: target.url.clone(),
        height,
        time,
        entries: check.audit.entries,
        trusted_key: check.trusted_on_first_use.clone(),
    })
}

/// Where the replica is, for the settings view: `Last synced to block 7, as
/// of …`, or that it never synced.
pub fn last_sync(wallet: &Wallet) -> String {
    match wallet.chain_view() {
        Ok(Some(view)) => format!(
            "Last synced to block {}, as of {}.",
            view.height(),
            when::date_time(view.time())
        ),
        Ok(None) => {
            "Not synced yet: statuses show as unknown until the wallet syncs a registry.".to_owned()
        }
        Err(e) => format!(
            "The wallet's chain replica cannot be read: {}",
            super::plain(&e)
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controller::tests_support::wallet_with_transcript;

    #[test]
    fn fail_target_without_a_url_or_with_a_bad_one() {
        let (_tmp, wallet, _) = wallet_with_transcript();
        assert!(matches!(
            target(&wallet, "  ", ""),
            Err(SyncError::NoRegistry)
        ));
        for bad in [
            "registry.example",
            "ftp://registry.example",
            "https://a b",
            "http://registry.example",
            "http://127.0.0.1.evil.example",
            "http://localhost@evil.example",
            "http://user@127.0.0.1:7400",
            "http://10.0.0.1:7400",
        ] {
            assert!(
                matches!(target(&wallet, bad, ""), Err(SyncError::NotHttp(_))),
                "{bad}"
            );
        }
        for local in [
            "http://127.0.0.1:7400",
            "http://localhost:7400/",
            "http://[::1]:7400",
        ] {
            assert!(target(&wallet, local, "").is_ok(), "{local}");
        }
        let t = target(&wallet, " https://registry.example/ ", "").unwrap();
        assert_eq!(t.url, "https://registry.example");
        assert_eq!(t.first.pin, NodePin::FirstUse);
        assert_eq!(t.replica, wallet.replica_dir());
        let t = target(&wallet, "http://127.0.0.1:9", " key ").unwrap();
        assert_eq!(t.first.pin, NodePin::Key("key".into()));
        assert!(last_sync(&wallet).starts_with("Not synced yet"));
    }

    #[test]
    fn fail_sync_from_nothing_listening_is_unreachable_and_changes_nothing() {
        let (_tmp, wallet, _) = wallet_with_transcript();
        let port = vouch_registry::testkit::free_port().unwrap();
        let t = target(&wallet, &format!("http://127.0.0.1:{port}"), "").unwrap();
        let e = run(&t).unwrap_err();
        assert!(matches!(e, SyncError::Unreachable { .. }), "{e:?}");
        assert!(e.to_string().starts_with("cannot reach the registry at"));
        assert!(wallet.registry().unwrap().is_none());
        assert!(wallet.chain_view().unwrap().is_none());
    }
}

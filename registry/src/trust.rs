//! Trust setup: what a replica trusts (`trust.json`: the node's key, the
//! witnesses' keys, how many cosignatures a block needs), how a first sync
//! sets it up, and the policy to check any chain directory with (a node's,
//! a witness's or a replica's).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vouch_core::log::{self, CheckpointError, TrustPolicy};

use crate::node::NodeConfig;
use crate::replica::{audit, AuditReport, Replica, ReplicaError, SyncReport};
use crate::source::{ChainSource, SourceError};
use crate::store::{Store, StoreError};
use crate::witness::WitnessConfig;

/// A replica's trust file in its directory.
pub const TRUST_FILE: &str = "trust.json";

/// What a replica trusts (`trust.json`): the node's key, the witnesses' keys,
/// how many cosignatures a block needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Trust {
    /// The node's verifier key (`origin+id+key`).
    pub node_vkey: String,
    /// Witness verifier keys (cosignature/v1).
    pub witnesses: Vec<String>,
    /// Cosignatures needed (k of n).
    pub need: usize,
}

impl Trust {
    /// The policy these keys describe. A weak quorum (witnesses named but
    /// `need` at most half of them) is refused: see [`TrustPolicy::new`].
    ///
    /// # Errors
    /// [`CheckpointError`] when a key does not parse, `need` exceeds the
    /// witnesses, a witness is listed twice, or the quorum is weak.
    pub fn policy(&self) -> Result<TrustPolicy, CheckpointError> {
        self.policy_with(false)
    }

    /// The policy these keys describe; with `force_weak_quorum`, a weak
    /// quorum is allowed.
    ///
    /// # Errors
    /// As [`Trust::policy`], except for the weak quorum when forced.
    pub fn policy_with(&self, force_weak_quorum: bool) -> Result<TrustPolicy, CheckpointError> {
        let (origin, _, node) = log::parse_vkey(&self.node_vkey)?;
        let witnesses: Vec<_> = self
            .witnesses
            .iter()
            .map(|v| log::parse_vkey(v).map(|(name, _, key)| (name, key)))
            .collect::<Result<_, _>>()?;
        Ok(TrustPolicy::new(
            (origin, node),
            witnesses,
            self.need,
            force_weak_quorum,
        )?)
    }
}

/// A replica's `trust.json`: its [`Trust`], and whether a weak quorum was
/// explicitly forced when it was configured.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrustFile {
    /// The keys and quorum.
    #[serde(flatten)]
    pub trust: Trust,
    /// A weak quorum was allowed on purpose (`--force-weak-quorum`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force_weak_quorum: bool,
}

impl TrustFile {
    /// The policy this file describes.
    ///
    /// # Errors
    /// As [`Trust::policy_with`].
    pub fn policy(&self) -> Result<TrustPolicy, CheckpointError> {
        self.trust.policy_with(self.force_weak_quorum)
    }
}

/// Why trust could not be set up or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file does not parse.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A key or the quorum in a configuration is refused.
    #[error("{what}: {source}")]
    Policy {
        /// Which configuration (a file, or the options given).
        what: String,
        /// Why.
        #[source]
        source: CheckpointError,
    },
    /// The directory holds no `config.json`, `witness.json` or `trust.json`.
    #[error("{} is not a node, witness or replica directory (no config.json, witness.json or trust.json)", dir.display())]
    NotAChainDir {
        /// The directory.
        dir: PathBuf,
    },
    /// The witness has not pinned a node key yet.
    #[error("witness in {} has not followed a node yet", dir.display())]
    WitnessUnpinned {
        /// The directory.
        dir: PathBuf,
    },
    /// A first sync needs to know which node key to trust.
    #[error(
        "{} has no trust.json yet: --node-key KEY is needed (the key `vouch-registry init` \
         printed), or --trust-on-first-use to trust the first key the registry shows",
        dir.display()
    )]
    NoNodeKey {
        /// The directory.
        dir: PathBuf,
    },
    /// The source could not say which key it has.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The replica failed to sync or does not audit.
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, TrustError> {
    let bytes = std::fs::read(path).map_err(|source| TrustError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| TrustError::Json {
        path: path.to_owned(),
        source,
    })
}

impl TrustFile {
    /// Reads `dir/trust.json`, if there is one.
    ///
    /// # Errors
    /// [`TrustError::Io`] or [`TrustError::Json`] when it cannot be read.
    pub fn read(dir: &Path) -> Result<Option<Self>, TrustError> {
        let path = dir.join(TRUST_FILE);
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// Writes `dir/trust.json` (creating `dir`); returns its path.
    ///
    /// # Errors
    /// [`TrustError::Io`].
    pub fn write(&self, dir: &Path) -> Result<PathBuf, TrustError> {
        let path = dir.join(TRUST_FILE);
        let io = |source| TrustError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let json = serde_json::to_vec_pretty(self).map_err(|source| TrustError::Json {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, json).map_err(io)?;
        Ok(path)
    }
}

/// Which kind of chain directory a [`DirPolicy`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    /// A node's (`config.json`, `node.key`): its own policy.
    Node,
    /// A witness's (`witness.json`): the node key it follows, no witnesses.
    Witness,
    /// A replica's (`trust.json`).
    Replica,
}

/// The policy to check a chain directory with, and where its store is.
#[derive(Debug, Clone)]
pub struct DirPolicy {
    /// What the directory is.
    pub kind: DirKind,
    /// Its trust policy.
    pub policy: TrustPolicy,
    /// Its sled store.
    pub db: PathBuf,
}

/// The policy of `dir`: a node's own, a witness's, or a replica's
/// `trust.json`; `None` when it is none of these (yet).
///
/// # Errors
/// [`TrustError`] when its configuration cannot be read or is refused.
pub fn policy_of(dir: &Path) -> Result<Option<DirPolicy>, TrustError> {
    let db = dir.join("db");
    let config = dir.join("config.json");
    if config.exists() {
        let c: NodeConfig = read_json(&config)?;
        let key_path = dir.join("node.key");
        let key = crate::keys::read(&key_path).map_err(|source| TrustError::Io {
            path: key_path,
            source,
        })?;
        let policy = c
            .policy(&key.verifying_key())
            .map_err(|source| TrustError::Policy {
                what: config.display().to_string(),
                source,
            })?;
        return Ok(Some(DirPolicy {
            kind: DirKind::Node,
            policy,
            db,
        }));
    }
    let witness = dir.join("witness.json");
    if witness.exists() {
        let c: WitnessConfig = read_json(&witness)?;
        let Some(node_vkey) = c.node_vkey else {
            return Err(TrustError::WitnessUnpinned {
                dir: dir.to_owned(),
            });
        };
        let trust = Trust {
            node_vkey,
            witnesses: Vec::new(),
            need: 0,
        };
        let policy = trust.policy().map_err(|source| TrustError::Policy {
            what: witness.display().to_string(),
            source,
        })?;
        return Ok(Some(DirPolicy {
            kind: DirKind::Witness,
            policy,
            db,
        }));
    }
    match TrustFile::read(dir)? {
        Some(trust) => {
            let policy = trust.policy().map_err(|source| TrustError::Policy {
                what: dir.join(TRUST_FILE).display().to_string(),
                source,
            })?;
            Ok(Some(DirPolicy {
                kind: DirKind::Replica,
                policy,
                db,
            }))
        }
        None => Ok(None),
    }
}

/// Where a witness's or a first sync's node key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodePin {
    /// Given by the operator (`--node-key`).
    Key(String),
    /// Whatever key the node shows first (`--trust-on-first-use`).
    FirstUse,
    /// Neither: it must be pinned already.
    Pinned,
}

/// The node key, witnesses and quorum a replica's first sync trusts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstSync {
    /// Where the node key comes from.
    pub pin: NodePin,
    /// Witness verifier keys.
    pub witnesses: Vec<String>,
    /// Cosignatures needed.
    pub need: usize,
    /// Allow a weak quorum.
    pub force_weak_quorum: bool,
}

/// What [`sync_dir`] and [`audit_dir`] found.
#[derive(Debug, Clone)]
pub struct DirCheck {
    /// The policy checked with.
    pub policy: TrustPolicy,
    /// What the sync did, when there was one.
    pub synced: Option<SyncReport>,
    /// The node key trusted on first use by this call, if it did.
    pub trusted_on_first_use: Option<String>,
    /// The audit of the whole store.
    pub audit: AuditReport,
}

/// Re-checks the store of a node's, witness's or replica's directory
/// offline (see [`audit`]).
///
/// # Errors
/// [`TrustError::NotAChainDir`], or what reading the policy or auditing
/// found.
pub fn audit_dir(dir: &Path) -> Result<DirCheck, TrustError> {
    let Some(p) = policy_of(dir)? else {
        return Err(TrustError::NotAChainDir {
            dir: dir.to_owned(),
        });
    };
    let store = Store::open(&p.db).map_err(ReplicaError::from)?;
    let report = audit(&store, &p.policy)?;
    Ok(DirCheck {
        policy: p.policy,
        synced: None,
        trusted_on_first_use: None,
        audit: report,
    })
}

/// Syncs the replica in `dir` from `source`, then audits it. A directory
/// that is not a chain directory yet is set up as a replica from `first`
/// (its `trust.json` is written, and removed again when that first sync
/// fails, so a retry starts afresh).
///
/// # Errors
/// [`TrustError::NoNodeKey`] for a new directory without a node key to
/// trust; [`TrustError::Policy`] for a refused quorum; what syncing or
/// auditing found.
pub async fn sync_dir(
    dir: &Path,
    source: &impl ChainSource,
    first: FirstSync,
) -> Result<DirCheck, TrustError> {
    let mut configured = None;
    let mut trusted_on_first_use = None;
    if policy_of(dir)?.is_none() {
        let node_vkey = match first.pin {
            NodePin::Key(k) => k,
            NodePin::FirstUse => {
                let key = source.info().await?.node_vkey;
                trusted_on_first_use = Some(key.clone());
                key
            }
            NodePin::Pinned => {
                return Err(TrustError::NoNodeKey {
                    dir: dir.to_owned(),
                })
            }
        };
        let trust = TrustFile {
            trust: Trust {
                node_vkey,
                witnesses: first.witnesses,
                need: first.need,
            },
            force_weak_quorum: first.force_weak_quorum,
        };
        trust.policy().map_err(|source| TrustError::Policy {
            what: "--need (pass --force-weak-quorum to allow it anyway)".into(),
            source,
        })?;
        configured = Some(trust.write(dir)?);
    }
    let result = sync_and_audit(dir, source).await;
    if let (Err(_), Some(path)) = (&result, configured) {
        // Best effort: the error being reported matters more.
        let _ = std::fs::remove_file(path);
    }
    result.map(|mut check| {
        check.trusted_on_first_use = trusted_on_first_use;
        check
    })
}

async fn sync_and_audit(dir: &Path, source: &impl ChainSource) -> Result<DirCheck, TrustError> {
    let Some(p) = policy_of(dir)? else {
        return Err(TrustError::NotAChainDir {
            dir: dir.to_owned(),
        });
    };
    let mut replica = Replica::open(&p.db, p.policy.clone())?;
    let synced = replica.sync(source).await?;
    let report = audit(replica.store(), &p.policy)?;
    Ok(DirCheck {
        policy: p.policy,
        synced: Some(synced),
        trusted_on_first_use: None,
        audit: report,
    })
}

impl From<StoreError> for TrustError {
    fn from(e: StoreError) -> Self {
        TrustError::Replica(e.into())
    }
}

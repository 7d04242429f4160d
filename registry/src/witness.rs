//! A witness: a consortium member that replays the node's log and cosigns
//! each new checkpoint only after checking it — consistency with the last
//! one it cosigned, every new entry's signature and rules. It refuses, and
//! says so loudly, on any fork, rollback or rewrite.
//!
//! A witness directory holds `witness.key`, `witness.json` (its name and the
//! node key it follows) and `db/` (its own replica).
//!
//! The node key is pinned: given by the operator ([`Witness::pin_node`]),
//! or taken from the first registry contacted only when that was asked for
//! explicitly ([`Witness::trust_on_first_use`]). A witness also refuses a
//! block whose time goes back before the last block it saw, or lies more
//! than [`BLOCK_CLOCK_SKEW`] ahead of its own clock.

use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};
use vouch_core::log::{self, Block, CheckpointError, PolicyError, TrustPolicy};

use crate::keys;
use crate::replica::{BlockRefusal, Replica, ReplicaError};
use crate::source::CosignTarget;

/// How far ahead of the witness's clock a block's time may be, in seconds
/// (every replica refuses such a block, and a witness is a replica).
pub use crate::replica::BLOCK_CLOCK_SKEW;

/// `witness.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WitnessConfig {
    /// Key name in cosignatures.
    pub name: String,
    /// The node key this witness follows (set on first contact).
    pub node_vkey: Option<String>,
}

/// A witness.
pub struct Witness {
    name: String,
    key: SigningKey,
    dir: PathBuf,
    config: WitnessConfig,
    replica: Option<Replica>,
    trust_on_first_use: bool,
}

/// Why the witness failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WitnessError {
    /// Files.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The check failed: nothing was cosigned.
    #[error("REFUSING TO COSIGN: {0}")]
    Refused(#[from] ReplicaError),
    /// `witness.json` does not parse.
    #[error("{}: {source}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A witness's name is part of its key; it cannot change.
    #[error("this witness is named {name:?}; its name cannot change (asked for {asked:?})")]
    Renamed {
        /// Its name.
        name: String,
        /// The name asked for.
        asked: String,
    },
    /// The node key given to pin does not parse.
    #[error("--node-key: {0}")]
    BadNodeKey(#[source] CheckpointError),
    /// Another node key is pinned already.
    #[error("this witness follows node key {pinned}, not {given}")]
    PinnedElsewhere {
        /// The pinned key.
        pinned: String,
        /// The key given.
        given: String,
    },
    /// The registry shows another key than the pinned one.
    #[error("REFUSING: the registry's node key changed from {pinned} to {shown}")]
    KeyChanged {
        /// The pinned key.
        pinned: String,
        /// The key the registry shows.
        shown: String,
    },
    /// No node key is pinned, and trust on first use was not asked for.
    #[error(
        "REFUSING: no node key is pinned; the registry shows {shown}. Pin the key you were \
         given with --node-key, or pass --trust-on-first-use to accept the first key a \
         registry shows"
    )]
    Unpinned {
        /// The key the registry shows.
        shown: String,
    },
    /// The node key shown does not make a policy.
    #[error("node key {key}: {source}")]
    NodeKey {
        /// The key.
        key: String,
        /// Why.
        #[source]
        source: PolicyOrKey,
    },
}

/// Why a node key makes no trust policy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyOrKey {
    /// The key does not parse.
    #[error(transparent)]
    Key(#[from] CheckpointError),
    /// The policy refuses it.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WitnessError + '_ {
    move |source| WitnessError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Witness {
    /// Opens the witness in `dir`, creating its key on first use.
    ///
    /// # Errors
    /// [`WitnessError`] on file problems.
    pub fn open(
        dir: &Path,
        name: Option<&str>,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<Self, WitnessError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key_path = dir.join("witness.key");
        let key = if key_path.exists() {
            keys::read(&key_path).map_err(io(&key_path))?
        } else {
            let k = SigningKey::generate(rng);
            keys::write(&key_path, &k).map_err(io(&key_path))?;
            k
        };
        let config_path = dir.join("witness.json");
        let config = if config_path.exists() {
            let text = std::fs::read(&config_path).map_err(io(&config_path))?;
            serde_json::from_slice(&text).map_err(|source| WitnessError::Config {
                path: config_path.clone(),
                source,
            })?
        } else {
            let c = WitnessConfig {
                name: name.unwrap_or("witness").to_owned(),
                node_vkey: None,
            };
            save(&config_path, &c)?;
            c
        };
        if let Some(n) = name {
            if n != config.name {
                return Err(WitnessError::Renamed {
                    name: config.name,
                    asked: n.to_owned(),
                });
            }
        }
        Ok(Self {
            name: config.name.clone(),
            key,
            dir: dir.to_owned(),
            config,
            replica: None,
            trust_on_first_use: false,
        })
    }

    /// This witness's verifier key, for nodes and replicas to trust.
    pub fn vkey(&self) -> String {
        log::witness_vkey(&self.name, &self.key.verifying_key())
    }

    /// Pins the node key this witness follows (the operator's
    /// `--node-key`), saving it in `witness.json`; when one is pinned
    /// already, checks that it is the same.
    ///
    /// # Errors
    /// [`WitnessError::BadNodeKey`] when the key does not parse,
    /// [`WitnessError::PinnedElsewhere`] when it differs from the pinned one.
    pub fn pin_node(&mut self, node_vkey: &str) -> Result<(), WitnessError> {
        log::parse_vkey(node_vkey).map_err(WitnessError::BadNodeKey)?;
        match &self.config.node_vkey {
            Some(known) if known != node_vkey => Err(WitnessError::PinnedElsewhere {
                pinned: known.clone(),
                given: node_vkey.to_owned(),
            }),
            Some(_) => Ok(()),
            None => {
                self.config.node_vkey = Some(node_vkey.to_owned());
                save(&self.dir.join("witness.json"), &self.config)
            }
        }
    }

    /// Lets the next [`Witness::round`] pin whatever node key the registry
    /// shows, if none is pinned yet (explicit trust on first use).
    pub fn trust_on_first_use(&mut self) {
        self.trust_on_first_use = true;
    }

    /// The node key this witness follows, once pinned.
    pub fn node_vkey(&self) -> Option<&str> {
        self.config.node_vkey.as_deref()
    }

    /// Follows the node with this key: it must be the pinned key, or, with
    /// no key pinned, trust on first use must have been asked for.
    ///
    /// # Errors
    /// [`WitnessError::KeyChanged`] when the node key differs from the pinned
    /// one, [`WitnessError::Unpinned`] when none is pinned and trust on first
    /// use was not asked for.
    pub fn follow(&mut self, node_vkey: &str) -> Result<(), WitnessError> {
        match &self.config.node_vkey {
            Some(known) if known != node_vkey => {
                return Err(WitnessError::KeyChanged {
                    pinned: known.clone(),
                    shown: node_vkey.to_owned(),
                })
            }
            Some(_) => {}
            None if self.trust_on_first_use => {
                tracing::warn!("trusting node key {node_vkey} on first use");
                self.config.node_vkey = Some(node_vkey.to_owned());
                save(&self.dir.join("witness.json"), &self.config)?;
            }
            None => {
                return Err(WitnessError::Unpinned {
                    shown: node_vkey.to_owned(),
                })
            }
        }
        if self.replica.is_none() {
            let bad = |source: PolicyOrKey| WitnessError::NodeKey {
                key: node_vkey.to_owned(),
                source,
            };
            let (origin, _, node) = log::parse_vkey(node_vkey).map_err(|e| bad(e.into()))?;
            let policy = TrustPolicy::new((origin, node), Vec::new(), 0, false)
                .map_err(|e| bad(e.into()))?;
            self.replica = Some(Replica::open(&self.dir.join("db"), policy)?);
        }
        Ok(())
    }

    /// The replica this witness keeps, once it follows a node.
    pub fn replica(&self) -> Option<&Replica> {
        self.replica.as_ref()
    }

    /// One round: check the node's newest checkpoint and cosign it. Returns
    /// the height cosigned and who has cosigned it now, or `None` when there
    /// was nothing new.
    ///
    /// # Errors
    /// [`WitnessError::Refused`] when the log does not verify: nothing is
    /// cosigned.
    pub async fn round(
        &mut self,
        node: &impl CosignTarget,
    ) -> Result<Option<(u64, Vec<String>)>, WitnessError> {
        self.round_at(node, crate::now()).await
    }

    /// [`Witness::round`] with the witness's clock reading `now` (Unix
    /// seconds).
    ///
    /// # Errors
    /// As [`Witness::round`].
    pub async fn round_at(
        &mut self,
        node: &impl CosignTarget,
        now: i64,
    ) -> Result<Option<(u64, Vec<String>)>, WitnessError> {
        let info = node.info().await.map_err(ReplicaError::from)?;
        self.follow(&info.node_vkey)?;
        let Some(replica) = self.replica.as_mut() else {
            // `follow` opened it.
            return Ok(None);
        };
        replica.sync_checked(node, now, check_block_time).await?;
        let Some(head) = replica.head() else {
            return Ok(None);
        };
        let height = head.block.height;
        let done = replica
            .store()
            .meta("cosigned")
            .map_err(ReplicaError::from)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes);
        if done.is_some_and(|d| d >= height) {
            return Ok(None);
        }
        let time = u64::try_from(now).unwrap_or(0);
        let note =
            log::cosign(&head.note, &self.name, &self.key, time).map_err(ReplicaError::from)?;
        let by = node
            .cosign(height, &note)
            .await
            .map_err(ReplicaError::from)?;
        replica
            .store()
            .set_meta("cosigned", &height.to_be_bytes())
            .map_err(ReplicaError::from)?;
        replica.store().flush().map_err(ReplicaError::from)?;
        Ok(Some((height, by)))
    }
}

/// Refuses a block whose time is before the last block the witness saw
/// (the replica refuses one more than [`BLOCK_CLOCK_SKEW`] ahead of the
/// witness's clock).
fn check_block_time(seen: Option<&Block>, next: &Block) -> Result<(), ReplicaError> {
    if let Some(seen) = seen {
        if next.time < seen.time {
            return Err(ReplicaError::BadBlock {
                height: next.height,
                reason: BlockRefusal::TimeGoesBack {
                    time: next.time,
                    seen_height: seen.height,
                    seen_time: seen.time,
                },
            });
        }
    }
    Ok(())
}

fn save(path: &Path, config: &WitnessConfig) -> Result<(), WitnessError> {
    let json = serde_json::to_vec_pretty(config).unwrap_or_default();
    std::fs::write(path, json).map_err(io(path))
}

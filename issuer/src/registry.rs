//! Where the issuer anchors: the embedded one-organisation registry in
//! `D/registry` (a node in this process, whose genesis authority accredits
//! this issuer), or a remote registry over HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use vouch_core::chain::{Action, ChainState, Entry};
use vouch_core::log::{Block, CheckpointError, Hash};
use vouch_registry::client::{ClientError, NodeClient};
use vouch_registry::node::{Node, NodeError, Receipt, SubmitError};
use vouch_registry::now;
use vouch_registry::store::StoreError;

/// Why the registry could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The embedded node failed.
    #[error("embedded registry: {0}")]
    Node(#[from] NodeError),
    /// The embedded node refused an entry.
    #[error("registry refused the entry: {0}")]
    Submit(#[from] SubmitError),
    /// The remote registry failed or refused.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The embedded registry's authority key file.
    #[error("{path}: the embedded registry's authority key: {source}")]
    AuthorityKey {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The embedded node's store failed.
    #[error("embedded registry store: {0}")]
    Store(#[from] StoreError),
    /// The task submitting to the embedded node did not finish.
    #[error("the embedded registry's submit task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The registry's checkpoint is not one.
    #[error("the registry's checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// No block covers the entry in time.
    #[error("no block covers entry {index} after {seconds} s")]
    NotSealed {
        /// The entry index.
        index: u64,
        /// How long it waited.
        seconds: u64,
    },
    /// The embedded node cannot prove an entry's inclusion.
    #[error("the embedded registry cannot prove entry {index} in a tree of {size}: {reason}")]
    Inclusion {
        /// The entry index.
        index: u64,
        /// The tree size.
        size: u64,
        /// The node's reason.
        #[source]
        reason: vouch_registry::node::ProofRequestError,
    },
    /// A remote registry has not accredited the issuer for the kind.
    #[error(
        "{issuer} is not accredited for {kind:?} on {registry}; ask the accreditation authority \
         to run: vouch-registry accredit --registry {registry} --authority-key KEY --issuer \
         {issuer} --name {name:?} --kind {kind}"
    )]
    NotAccredited {
        /// The issuer's DID.
        issuer: String,
        /// Its name.
        name: String,
        /// The kind it lacks.
        kind: String,
        /// The registry URL.
        registry: String,
    },
}

/// A registry handle.
pub enum Registry {
    /// In-process node and its genesis authority key.
    Embedded {
        /// The node.
        node: Arc<Node>,
        /// The authority that accredits this issuer.
        authority: SigningKey,
    },
    /// A node over HTTP.
    Remote(NodeClient),
}

impl Registry {
    /// Opens the embedded registry in `dir`.
    ///
    /// # Errors
    /// [`RegistryError`] when it cannot be opened.
    pub fn embedded(dir: &Path) -> Result<Self, RegistryError> {
        let node = Node::open(dir)?;
        let path = dir.join("authority.key");
        let authority = vouch_registry::keys::read(&path)
            .map_err(|source| RegistryError::AuthorityKey { path, source })?;
        Ok(Registry::Embedded {
            node: Arc::new(node),
            authority,
        })
    }

    /// The chain state (the remote node's view for a remote registry).
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn state(&self) -> Result<ChainState, RegistryError> {
        match self {
            Registry::Embedded { node, .. } => Ok(node.with_state(Clone::clone)),
            Registry::Remote(c) => Ok(c.state().await?),
        }
    }

    /// The next sequence number of `author`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn next_seq(&self, author: &str) -> Result<u64, RegistryError> {
        match self {
            Registry::Embedded { node, .. } => {
                Ok(node.with_state(|s| s.authors.get(author).map_or(0, |(seq, _)| seq + 1)))
            }
            Registry::Remote(c) => Ok(c.next_seq(author).await?),
        }
    }

    /// Signs `action` as `key`'s did:key with its next sequence number.
    ///
    /// # Errors
    /// [`RegistryError`] when the sequence number cannot be read.
    pub async fn sign_next(
        &self,
        key: &SigningKey,
        action: Action,
    ) -> Result<Entry, RegistryError> {
        let did = vouch_core::DidKey::from_public_key(&key.verifying_key());
        let seq = self.next_seq(did.as_str()).await?;
        Ok(Entry::sign(key, seq, now(), action))
    }

    /// Submits an entry.
    ///
    /// # Errors
    /// [`RegistryError`] with the registry's reason.
    pub async fn submit(&self, entry: &[u8]) -> Result<Receipt, RegistryError> {
        match self {
            Registry::Embedded { node, .. } => {
                let node = node.clone();
                let bytes = entry.to_vec();
                tokio::task::spawn_blocking(move || node.submit(&bytes, now()))
                    .await?
                    .map_err(Into::into)
            }
            Registry::Remote(c) => Ok(c.submit(entry).await?),
        }
    }

    /// The index of an entry already in the log.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn index_of(&self, leaf: &Hash) -> Result<Option<u64>, RegistryError> {
        match self {
            Registry::Embedded { node, .. } => Ok(node.index_of(leaf)?),
            Registry::Remote(c) => Ok(c.index_of(leaf).await?),
        }
    }

    /// Seals a block (if needed) and waits until one covers entry `index`.
    /// Returns that block and its signed note.
    ///
    /// # Errors
    /// [`RegistryError`]; [`RegistryError::NotSealed`] after 60 s without
    /// such a block.
    pub async fn sealed(&self, index: u64) -> Result<(Block, String), RegistryError> {
        const WAIT: Duration = Duration::from_secs(60);
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let note = match self {
                Registry::Embedded { node, .. } => {
                    node.seal(now())?;
                    node.checkpoint()
                }
                Registry::Remote(c) => c.seal().await?,
            };
            // The issuer reads its own anchor back from the node it wrote
            // to; the inclusion proof it then checks is against this root.
            let block = Block::from_note_unverified(note.as_bytes())?;
            if block.size > index {
                return Ok((block, note));
            }
            if std::time::Instant::now() > deadline {
                return Err(RegistryError::NotSealed {
                    index,
                    seconds: WAIT.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Inclusion proof of entry `index` in the tree of `size`.
    ///
    /// # Errors
    /// [`RegistryError`].
    pub async fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, RegistryError> {
        match self {
            Registry::Embedded { node, .. } => {
                node.inclusion(index, size)
                    .map_err(|reason| RegistryError::Inclusion {
                        index,
                        size,
                        reason,
                    })
            }
            Registry::Remote(c) => Ok(c.inclusion(index, size).await?),
        }
    }

    /// Makes sure `issuer` is accredited for `kind`: the embedded registry's
    /// authority accredits it; a remote registry must have done so already.
    ///
    /// # Errors
    /// [`RegistryError::NotAccredited`] telling what to ask the authority
    /// for.
    pub async fn ensure_accredited(
        &self,
        issuer: &str,
        name: &str,
        kind: &str,
    ) -> Result<(), RegistryError> {
        let state = self.state().await?;
        if state.accredited(issuer, kind, now()) {
            return Ok(());
        }
        match self {
            Registry::Embedded { authority, .. } => {
                let mut kinds: Vec<String> = state
                    .issuers
                    .get(issuer)
                    .and_then(|i| i.periods.last().filter(|p| p.until.is_none()))
                    .map(|p| p.kinds.clone())
                    .unwrap_or_default();
                kinds.push(kind.to_owned());
                let entry = self
                    .sign_next(
                        authority,
                        Action::Accredit {
                            issuer: issuer.to_owned(),
                            name: name.to_owned(),
                            kinds,
                        },
                    )
                    .await?;
                self.submit(entry.as_bytes()).await?;
                Ok(())
            }
            Registry::Remote(c) => Err(RegistryError::NotAccredited {
                issuer: issuer.to_owned(),
                name: name.to_owned(),
                kind: kind.to_owned(),
                registry: c.base().to_owned(),
            }),
        }
    }
}

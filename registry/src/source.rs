//! Where a replica reads a chain from: a [`ChainSource`]. The in-process
//! [`Node`] is one (a verifier or wallet beside a node, tests without a
//! socket), the HTTP [`NodeClient`] is another. A witness also posts its
//! cosignatures to a [`CosignTarget`].
//!
//! A source is not trusted: everything it serves is checked by the
//! [`crate::replica::Replica`] that reads it.

use std::future::Future;

use vouch_core::log::Hash;

use crate::client::{ClientError, NodeClient};
use crate::node::{Node, NodeError, ProofRequestError};
use crate::store::StoreError;
use crate::wire::{NodeInfo, MAX_RANGE};

/// Why a source could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The node over HTTP could not be reached, refused, or replied with
    /// something that is not the API.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The in-process node's storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The in-process node has no block at this height.
    #[error("the node has no block {height}")]
    NoBlock {
        /// The height asked for.
        height: u64,
    },
    /// The in-process node cannot prove what was asked.
    #[error(transparent)]
    Proof(#[from] ProofRequestError),
    /// The in-process node refused a cosignature.
    #[error(transparent)]
    Node(#[from] NodeError),
}

impl SourceError {
    /// Whether the source answered but refused the request (the API's 4xx,
    /// an in-process node's "no such block" or "cannot prove that"), as
    /// opposed to failing to answer.
    pub fn is_refusal(&self) -> bool {
        match self {
            SourceError::Client(ClientError::Api { status, .. }) => (400..500).contains(status),
            SourceError::NoBlock { .. } | SourceError::Proof(_) => true,
            _ => false,
        }
    }
}

/// What a replica reads from a node. Every answer is checked by the reader.
pub trait ChainSource: Sync {
    /// The node's origin, key, witnesses and size.
    fn info(&self) -> impl Future<Output = Result<NodeInfo, SourceError>> + Send;

    /// The latest block's signed note.
    fn checkpoint(&self) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// Block `height`'s signed note.
    fn block(&self, height: u64) -> impl Future<Output = Result<String, SourceError>> + Send;

    /// The signed notes of blocks `[start, end)` in order, from `start`;
    /// fewer at the head or beyond what one answer carries.
    fn blocks(
        &self,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<String>, SourceError>> + Send;

    /// Entries `[start, end)` as their canonical bytes, in order, from
    /// `start`; fewer at the end of the log or beyond what one answer
    /// carries (at most [`MAX_RANGE`] are asked for at once).
    fn entries(
        &self,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, SourceError>> + Send;

    /// The RFC 9162 consistency proof from the tree of `old` entries to the
    /// tree of `new`.
    fn consistency(
        &self,
        old: u64,
        new: u64,
    ) -> impl Future<Output = Result<Vec<Hash>, SourceError>> + Send;
}

/// Where a witness posts its cosignatures.
pub trait CosignTarget: ChainSource {
    /// Adds the cosignatures in `note` to block `height`; returns the
    /// witnesses that have now cosigned it.
    fn cosign(
        &self,
        height: u64,
        note: &str,
    ) -> impl Future<Output = Result<Vec<String>, SourceError>> + Send;
}

impl ChainSource for NodeClient {
    async fn info(&self) -> Result<NodeInfo, SourceError> {
        Ok(NodeClient::info(self).await?)
    }

    async fn checkpoint(&self) -> Result<String, SourceError> {
        Ok(NodeClient::checkpoint(self).await?)
    }

    async fn block(&self, height: u64) -> Result<String, SourceError> {
        Ok(NodeClient::block(self, height).await?)
    }

    async fn blocks(&self, start: u64, end: u64) -> Result<Vec<String>, SourceError> {
        Ok(NodeClient::blocks(self, start, end).await?)
    }

    async fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, SourceError> {
        Ok(NodeClient::entries(self, start, end).await?)
    }

    async fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, SourceError> {
        Ok(NodeClient::consistency(self, old, new).await?)
    }
}

impl CosignTarget for NodeClient {
    async fn cosign(&self, height: u64, note: &str) -> Result<Vec<String>, SourceError> {
        Ok(NodeClient::cosign(self, height, note).await?)
    }
}

/// The node in this process, read directly (no copy through HTTP, no byte
/// caps: it is as trusted as the memory it lives in, and still checked).
impl ChainSource for Node {
    async fn info(&self) -> Result<NodeInfo, SourceError> {
        Ok(Node::info(self))
    }

    async fn checkpoint(&self) -> Result<String, SourceError> {
        Ok(Node::checkpoint(self))
    }

    async fn block(&self, height: u64) -> Result<String, SourceError> {
        Node::block(self, height)?.ok_or(SourceError::NoBlock { height })
    }

    async fn blocks(&self, start: u64, end: u64) -> Result<Vec<String>, SourceError> {
        let mut notes = Vec::new();
        for height in start..end {
            match Node::block(self, height)? {
                Some(note) => notes.push(note),
                None => break,
            }
        }
        Ok(notes)
    }

    async fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, SourceError> {
        let end = end.min(start.saturating_add(MAX_RANGE));
        Ok(Node::entries(self, start, end)?
            .into_iter()
            .map(|e| e.to_vec())
            .collect())
    }

    async fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, SourceError> {
        Ok(Node::consistency(self, old, new)?)
    }
}

impl CosignTarget for Node {
    async fn cosign(&self, height: u64, note: &str) -> Result<Vec<String>, SourceError> {
        Ok(self.add_cosignature(height, note)?)
    }
}

impl<S: ChainSource + Send> ChainSource for std::sync::Arc<S> {
    fn info(&self) -> impl Future<Output = Result<NodeInfo, SourceError>> + Send {
        S::info(self)
    }

    fn checkpoint(&self) -> impl Future<Output = Result<String, SourceError>> + Send {
        S::checkpoint(self)
    }

    fn block(&self, height: u64) -> impl Future<Output = Result<String, SourceError>> + Send {
        S::block(self, height)
    }

    fn blocks(
        &self,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<String>, SourceError>> + Send {
        S::blocks(self, start, end)
    }

    fn entries(
        &self,
        start: u64,
        end: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>, SourceError>> + Send {
        S::entries(self, start, end)
    }

    fn consistency(
        &self,
        old: u64,
        new: u64,
    ) -> impl Future<Output = Result<Vec<Hash>, SourceError>> + Send {
        S::consistency(self, old, new)
    }
}

impl<S: CosignTarget + Send> CosignTarget for std::sync::Arc<S> {
    fn cosign(
        &self,
        height: u64,
        note: &str,
    ) -> impl Future<Output = Result<Vec<String>, SourceError>> + Send {
        S::cosign(self, height, note)
    }
}

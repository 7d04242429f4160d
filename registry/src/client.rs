//! An HTTP client for a node's API (see [`crate::api`]).
//!
//! Every reply is read with a byte cap chosen for its endpoint (a
//! `Content-Length` over the cap is refused before reading; otherwise the
//! body is read chunk by chunk and refused as soon as it passes the cap), so
//! a hostile or broken node cannot make the client buffer more than that.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use vouch_core::chain::ChainState;
use vouch_core::log::Hash;

use crate::api::{MAX_BLOCKS_BYTES, MAX_RANGE_BYTES};
use crate::node::Receipt;

/// Cap on a signed note (`/v1/checkpoint`, `/v1/blocks/{h}`): a block line
/// set and up to 100 signature lines fit many times over.
pub const MAX_NOTE_REPLY: usize = 256 << 10;
/// Cap on small JSON replies (info, receipts, proofs, sequence numbers,
/// cosigner lists, seal).
pub const MAX_SMALL_REPLY: usize = 1 << 20;
/// Cap on one `/v1/blocks` reply: the server's cap plus one note's slack.
pub const MAX_BLOCKS_REPLY: usize = MAX_BLOCKS_BYTES + 2 * MAX_NOTE_REPLY;
/// Cap on one `/v1/entries` reply: the server's cap, or one largest entry.
pub const MAX_ENTRIES_REPLY: usize = if MAX_RANGE_BYTES > vouch_core::chain::MAX_ENTRY_BYTES {
    MAX_RANGE_BYTES
} else {
    vouch_core::chain::MAX_ENTRY_BYTES + 1
};
/// Cap on the entries one [`NodeClient::entries`] call gathers over
/// several requests.
pub const MAX_ENTRIES_CALL: usize = 64 << 20;
/// Cap on `/v1/state` (unverified derived state).
pub const MAX_STATE_REPLY: usize = 64 << 20;
/// Cap on an error reply's body (only its start is shown).
pub const MAX_ERROR_REPLY: usize = 64 << 10;

/// Why a request to a node failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The node could not be reached or the reply was cut off.
    #[error("registry {url}: {source}")]
    Http {
        /// The URL.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
    /// The node refused the request.
    #[error("registry refused ({status}, {code}): {detail}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Error code.
        code: String,
        /// Explanation.
        detail: String,
    },
    /// The node's reply is not what the API promises.
    #[error("registry reply: {0}")]
    Reply(String),
    /// The reply is larger than this endpoint's cap; it was not read whole.
    #[error("registry {url}: reply is larger than the {limit}-byte cap for this endpoint{}", declared.map(|n| format!(" (it declares {n} bytes)")).unwrap_or_default())]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap, bytes.
        limit: usize,
        /// The length the reply declared, if it declared one.
        declared: Option<u64>,
    },
}

/// Reads `resp`'s body, refusing it once it passes `limit` bytes (at once
/// when its declared length does).
async fn read_capped(
    mut resp: reqwest::Response,
    limit: usize,
    url: &str,
) -> Result<Vec<u8>, ClientError> {
    let too_large = |declared| ClientError::TooLarge {
        url: url.to_owned(),
        limit,
        declared,
    };
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(declared));
    }
    let mut body = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(chunk) = resp.chunk().await.map_err(|source| ClientError::Http {
        url: url.to_owned(),
        source,
    })? {
        if body.len() + chunk.len() > limit {
            return Err(too_large(declared));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(Deserialize)]
struct ApiErrorBody {
    error: String,
    detail: String,
}

/// What `GET /v1/info` says about a node.
#[derive(Debug, Clone, Deserialize)]
pub struct NodeInfo {
    /// Log origin.
    pub origin: String,
    /// Node verifier key.
    pub node_vkey: String,
    /// Witness verifier keys.
    pub witnesses: Vec<String>,
    /// Cosignatures the node's policy needs.
    pub need: usize,
    /// Entries in the log.
    pub size: u64,
}

/// A client for one node.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    http: reqwest::Client,
}

fn hashes(v: &serde_json::Value) -> Result<Vec<Hash>, ClientError> {
    v.get("proof")
        .and_then(vouch_core::log::hashes_from_json)
        .ok_or_else(|| ClientError::Reply("proof is not a list of base64 hashes".into()))
}

impl NodeClient {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:7400`).
    ///
    /// # Errors
    /// [`ClientError::Http`] when the HTTP client cannot be built.
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|source| ClientError::Http {
                url: base.to_owned(),
                source,
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let http = |source| ClientError::Http {
            url: url.to_owned(),
            source,
        };
        let resp = req.send().await.map_err(http)?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        // Only the start of an error body is kept; the rest is not read.
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp.chunk().await.map_err(http)? {
            let room = MAX_ERROR_REPLY - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_ERROR_REPLY {
                break;
            }
        }
        Err(match serde_json::from_slice::<ApiErrorBody>(&body) {
            Ok(e) => ClientError::Api {
                status,
                code: e.error,
                detail: e.detail,
            },
            Err(_) => ClientError::Api {
                status,
                code: "http".into(),
                detail: String::from_utf8_lossy(&body).chars().take(200).collect(),
            },
        })
    }

    async fn get_bytes(&self, path: &str, limit: usize) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self.send(self.http.get(&url), &url).await?;
        read_capped(resp, limit, &url).await
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        limit: usize,
    ) -> Result<T, ClientError> {
        let body = self.get_bytes(path, limit).await?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Reply(format!("{path}: {e}")))
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self.send(self.http.post(&url).body(body), &url).await?;
        let bytes = read_capped(resp, MAX_SMALL_REPLY, &url).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Reply(format!("{path}: {e}")))
    }

    /// `GET /v1/info`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn info(&self) -> Result<NodeInfo, ClientError> {
        self.get_json("/v1/info", MAX_SMALL_REPLY).await
    }

    /// Submits an entry's canonical bytes.
    ///
    /// # Errors
    /// [`ClientError::Api`] with the node's reason when refused.
    pub async fn submit(&self, entry: &[u8]) -> Result<Receipt, ClientError> {
        self.post_json("/v1/entries", entry.to_vec()).await
    }

    /// The next sequence number of `author`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn next_seq(&self, author: &str) -> Result<u64, ClientError> {
        let v: serde_json::Value = self
            .get_json(&format!("/v1/authors/{author}"), MAX_SMALL_REPLY)
            .await?;
        v.get("next_seq")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| ClientError::Reply("no next_seq".into()))
    }

    /// The latest signed checkpoint note.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn checkpoint(&self) -> Result<String, ClientError> {
        let b = self.get_bytes("/v1/checkpoint", MAX_NOTE_REPLY).await?;
        String::from_utf8(b).map_err(|_| ClientError::Reply("checkpoint is not UTF-8".into()))
    }

    /// Block `height`'s signed note.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn block(&self, height: u64) -> Result<String, ClientError> {
        let b = self
            .get_bytes(&format!("/v1/blocks/{height}"), MAX_NOTE_REPLY)
            .await?;
        String::from_utf8(b).map_err(|_| ClientError::Reply("block is not UTF-8".into()))
    }

    /// The signed notes of blocks `[start, end)` (at most
    /// [`crate::api::MAX_BLOCKS`] per call; fewer at the head).
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn blocks(&self, start: u64, end: u64) -> Result<Vec<String>, ClientError> {
        self.get_json(
            &format!("/v1/blocks?start={start}&end={end}"),
            MAX_BLOCKS_REPLY,
        )
        .await
    }

    /// Sends a cosigned note for block `height`; returns who has cosigned it.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn cosign(&self, height: u64, note: &str) -> Result<Vec<String>, ClientError> {
        let v: serde_json::Value = self
            .post_json(
                &format!("/v1/blocks/{height}/cosignature"),
                note.as_bytes().to_vec(),
            )
            .await?;
        serde_json::from_value(v.get("cosigned_by").cloned().unwrap_or_default())
            .map_err(|e| ClientError::Reply(e.to_string()))
    }

    /// Asks the node to seal a block now; returns the latest checkpoint.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn seal(&self) -> Result<String, ClientError> {
        let v: serde_json::Value = self.post_json("/v1/seal", Vec::new()).await?;
        v.get("checkpoint")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Reply("no checkpoint".into()))
    }

    /// Entries `[start, end)` as canonical bytes (at most
    /// [`crate::api::MAX_RANGE`] per call). The node caps each reply in
    /// bytes, so this asks again from where a short reply stopped, until the
    /// range is complete, the node has no more, or [`MAX_ENTRIES_CALL`]
    /// bytes are gathered: fewer entries than asked for come back then.
    ///
    /// # Errors
    /// [`ClientError`]; [`ClientError::TooLarge`] when one reply passes
    /// [`MAX_ENTRIES_REPLY`].
    pub async fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, ClientError> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut gathered = 0usize;
        let mut at = start;
        while at < end && gathered < MAX_ENTRIES_CALL {
            let body = self
                .get_bytes(
                    &format!("/v1/entries?start={at}&end={end}"),
                    MAX_ENTRIES_REPLY,
                )
                .await?;
            gathered += body.len();
            let mut lines: Vec<Vec<u8>> = body.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
            if lines.last().is_some_and(Vec::is_empty) {
                lines.pop();
            }
            let got = lines.len() as u64;
            if got == 0 {
                break;
            }
            if got > end - at {
                return Err(ClientError::Reply(format!(
                    "asked for entries {at}..{end}, got {got}"
                )));
            }
            out.extend(lines);
            at += got;
        }
        Ok(out)
    }

    /// Inclusion proof of leaf `index` in the tree of `size`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, ClientError> {
        let v = self
            .get_json(
                &format!("/v1/proof/inclusion?index={index}&size={size}"),
                MAX_SMALL_REPLY,
            )
            .await?;
        hashes(&v)
    }

    /// Consistency proof between two tree sizes.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, ClientError> {
        let v = self
            .get_json(
                &format!("/v1/proof/consistency?old={old}&new={new}"),
                MAX_SMALL_REPLY,
            )
            .await?;
        hashes(&v)
    }

    /// The index of an entry by leaf hash, if the log has it.
    ///
    /// # Errors
    /// [`ClientError`] other than "not found".
    pub async fn index_of(&self, leaf: &Hash) -> Result<Option<u64>, ClientError> {
        match self
            .get_json::<serde_json::Value>(
                &format!("/v1/entries/by-hash/{}", hex::encode(leaf.0)),
                MAX_SMALL_REPLY,
            )
            .await
        {
            Ok(v) => Ok(v.get("index").and_then(serde_json::Value::as_u64)),
            Err(ClientError::Api { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The node's derived state (unverified: replicas derive their own).
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn state(&self) -> Result<ChainState, ClientError> {
        self.get_json("/v1/state", MAX_STATE_REPLY).await
    }
}

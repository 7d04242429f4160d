//! An HTTP client for a node's API (the `api` module, with the `server` feature).
//!
//! Every reply is read with a byte cap chosen for its endpoint (a
//! `Content-Length` over the cap is refused before reading; otherwise the
//! body is read chunk by chunk and refused as soon as it passes the cap), so
//! a hostile or broken node cannot make the client buffer more than that.

use std::time::Duration;

use serde::de::DeserializeOwned;
use vouch_core::chain::ChainState;
use vouch_core::log::Hash;

use crate::wire::{self, ApiErrorBody, MAX_BLOCKS_BYTES, MAX_RANGE_BYTES};
pub use crate::wire::{NodeInfo, Receipt, RelayStored};

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
/// Cap on a Status List Token (`/v1/status/{id}`): a compressed list of a
/// million 2-bit statuses is far smaller.
pub const MAX_STATUS_REPLY: usize = 4 << 20;
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
    /// The reply is not the JSON the API promises for this endpoint.
    #[error("registry {url}: the reply is not what the API promises: {source}")]
    Json {
        /// The URL.
        url: String,
        /// What did not parse.
        #[source]
        source: serde_json::Error,
    },
    /// A text reply (a signed note, a token) is not UTF-8.
    #[error("registry {url}: the reply is not UTF-8 text")]
    NotText {
        /// The URL.
        url: String,
        /// The cause.
        #[source]
        source: std::string::FromUtf8Error,
    },
    /// More entries came back than were asked for.
    #[error("registry {url}: asked for {asked} entries, got {got}")]
    TooMany {
        /// The URL.
        url: String,
        /// Entries asked for.
        asked: u64,
        /// Entries received.
        got: u64,
    },
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

/// A client for one node.
#[derive(Debug, Clone)]
pub struct NodeClient {
    base: String,
    http: reqwest::Client,
}

fn json<T: DeserializeOwned>(body: &[u8], url: &str) -> Result<T, ClientError> {
    serde_json::from_slice(body).map_err(|source| ClientError::Json {
        url: url.to_owned(),
        source,
    })
}

fn text(body: Vec<u8>, url: &str) -> Result<String, ClientError> {
    String::from_utf8(body).map_err(|source| ClientError::NotText {
        url: url.to_owned(),
        source,
    })
}

/// Whether `url`'s host is this computer: `localhost`, a loopback IPv4
/// (127/8) or IPv6 (`::1`) address, as the HTTP client parses it.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether `text` is a URL of this computer ([`is_loopback`]) that carries
/// no user name or password: where plain `http://` may go when what it
/// first receives (a node key trusted on first use) must not be replaced
/// on the way.
pub fn is_loopback_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| u.username().is_empty() && u.password().is_none() && is_loopback(&u))
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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
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

    async fn get_bytes(&self, url: &str, limit: usize) -> Result<Vec<u8>, ClientError> {
        let resp = self.send(self.http.get(url), url).await?;
        read_capped(resp, limit, url).await
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        limit: usize,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        json(&self.get_bytes(&url, limit).await?, &url)
    }

    async fn get_text(&self, path: &str, limit: usize) -> Result<String, ClientError> {
        let url = self.url(path);
        text(self.get_bytes(&url, limit).await?, &url)
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<T, ClientError> {
        let resp = self.send(req, url).await?;
        json(&read_capped(resp, MAX_SMALL_REPLY, url).await?, url)
    }

    async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<T, ClientError> {
        let url = self.url(path);
        self.send_json(self.http.post(&url).body(body), &url).await
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

    /// Signs `action` as `key`'s did:key with the next sequence number the
    /// node expects of it, and submits it.
    ///
    /// # Errors
    /// [`ClientError`]; [`ClientError::Api`] with the node's reason when
    /// refused.
    pub async fn sign_and_submit(
        &self,
        key: &ed25519_dalek::SigningKey,
        action: vouch_core::chain::Action,
    ) -> Result<Receipt, ClientError> {
        let did = vouch_core::DidKey::from_public_key(&key.verifying_key());
        let seq = self.next_seq(did.as_str()).await?;
        let entry = vouch_core::chain::Entry::sign(key, seq, crate::now(), action);
        self.submit(entry.as_bytes()).await
    }

    /// The next sequence number of `author`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn next_seq(&self, author: &str) -> Result<u64, ClientError> {
        let reply: wire::NextSeq = self
            .get_json(&format!("/v1/authors/{author}"), MAX_SMALL_REPLY)
            .await?;
        Ok(reply.next_seq)
    }

    /// The latest signed checkpoint note.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn checkpoint(&self) -> Result<String, ClientError> {
        self.get_text("/v1/checkpoint", MAX_NOTE_REPLY).await
    }

    /// Block `height`'s signed note.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn block(&self, height: u64) -> Result<String, ClientError> {
        self.get_text(&format!("/v1/blocks/{height}"), MAX_NOTE_REPLY)
            .await
    }

    /// The signed notes of blocks `[start, end)` (at most
    /// [`wire::MAX_BLOCKS`] per call; fewer at the head).
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn blocks(&self, start: u64, end: u64) -> Result<Vec<String>, ClientError> {
        self.get_json::<wire::BlockNotes>(
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
        let reply: wire::Cosigned = self
            .post_json(
                &format!("/v1/blocks/{height}/cosignature"),
                note.as_bytes().to_vec(),
            )
            .await?;
        Ok(reply.cosigned_by)
    }

    /// Asks the node to seal a block now; returns the latest checkpoint.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn seal(&self) -> Result<String, ClientError> {
        let reply: wire::Sealed = self.post_json("/v1/seal", Vec::new()).await?;
        Ok(reply.checkpoint)
    }

    /// Entries `[start, end)` as canonical bytes (at most
    /// [`wire::MAX_RANGE`] per call). The node caps each reply in
    /// bytes, so this asks again from where a short reply stopped, until the
    /// range is complete, the node has no more, or [`MAX_ENTRIES_CALL`]
    /// bytes are gathered: fewer entries than asked for come back then.
    ///
    /// # Errors
    /// [`ClientError`]; [`ClientError::TooLarge`] when one reply passes
    /// [`MAX_ENTRIES_REPLY`], [`ClientError::TooMany`] when it holds more
    /// entries than asked for.
    pub async fn entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, ClientError> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut gathered = 0usize;
        let mut at = start;
        while at < end && gathered < MAX_ENTRIES_CALL {
            let url = self.url(&format!("/v1/entries?start={at}&end={end}"));
            let body = self.get_bytes(&url, MAX_ENTRIES_REPLY).await?;
            gathered += body.len();
            let lines = wire::parse_entry_lines(&body);
            let got = lines.len() as u64;
            if got == 0 {
                break;
            }
            if got > end - at {
                return Err(ClientError::TooMany {
                    url,
                    asked: end - at,
                    got,
                });
            }
            if out.is_empty() {
                out = lines;
            } else {
                out.extend(lines);
            }
            at += got;
        }
        Ok(out)
    }

    /// Inclusion proof of leaf `index` in the tree of `size`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Hash>, ClientError> {
        let reply: wire::Proof = self
            .get_json(
                &format!("/v1/proof/inclusion?index={index}&size={size}"),
                MAX_SMALL_REPLY,
            )
            .await?;
        Ok(reply.proof)
    }

    /// Consistency proof between two tree sizes.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn consistency(&self, old: u64, new: u64) -> Result<Vec<Hash>, ClientError> {
        let reply: wire::Proof = self
            .get_json(
                &format!("/v1/proof/consistency?old={old}&new={new}"),
                MAX_SMALL_REPLY,
            )
            .await?;
        Ok(reply.proof)
    }

    /// The index of an entry by leaf hash, if the log has it.
    ///
    /// # Errors
    /// [`ClientError`] other than "not found".
    pub async fn index_of(&self, leaf: &Hash) -> Result<Option<u64>, ClientError> {
        match self
            .get_json::<wire::EntryIndex>(
                &format!("/v1/entries/by-hash/{}", hex::encode(leaf.0)),
                MAX_SMALL_REPLY,
            )
            .await
        {
            Ok(reply) => Ok(Some(reply.index)),
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

    /// The current Status List Token (a JWT) of the list with id
    /// `did~name`, as the node serves it at its list URI. Unverified: a
    /// replica reads statuses from the tokens it checked itself.
    ///
    /// # Errors
    /// [`ClientError`]; [`ClientError::Api`] with status 404 when the node
    /// has no such list.
    pub async fn status_token(&self, id: &str) -> Result<String, ClientError> {
        self.get_text(&format!("/v1/status/{id}"), MAX_STATUS_REPLY)
            .await
    }

    /// Leaves `blob` (an encrypted presentation, at most
    /// [`wire::MAX_RELAY_BYTES`]) at the node's relay for `ttl` seconds;
    /// with `once`, the first fetch removes it.
    ///
    /// # Errors
    /// [`ClientError`]; [`ClientError::Api`] when the relay refuses it (too
    /// large, full, rate limited).
    pub async fn relay_put(
        &self,
        blob: &[u8],
        ttl: u64,
        once: bool,
    ) -> Result<RelayStored, ClientError> {
        let url = self.url(&format!("/v1/relay?ttl={ttl}&once={once}"));
        self.send_json(self.http.put(&url).body(blob.to_vec()), &url)
            .await
    }

    /// Fetches relay item `id` (32 hex digits).
    ///
    /// # Errors
    /// [`ClientError`]; [`ClientError::Api`] with status 404 when it expired
    /// or was fetched already.
    pub async fn relay_get(&self, id: &str) -> Result<Vec<u8>, ClientError> {
        let url = self.url(&format!("/v1/relay/{id}"));
        self.get_bytes(&url, wire::MAX_RELAY_BYTES).await
    }
}

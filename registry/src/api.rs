//! The node's HTTP API.
//!
//! | method, path | what |
//! |---|---|
//! | `GET /v1/info` | origin, node key, witnesses, cosignatures needed, size |
//! | `POST /v1/entries` | submit an entry (its canonical JSON); replies after it is on disk |
//! | `GET /v1/entries?start=A&end=B` | entries `[A, B)`, one per line (at most 10,000) |
//! | `GET /v1/entries/by-hash/{hex}` | the index of an entry by its leaf hash |
//! | `GET /v1/checkpoint` | the latest block's signed note |
//! | `GET /v1/blocks/{height}` | a block's signed note |
//! | `GET /v1/blocks?start=A&end=B` | the notes of blocks `[A, B)`, a JSON list (at most 1,000) |
//! | `POST /v1/blocks/{height}/cosignature` | a witness adds its cosignature |
//! | `POST /v1/seal` | seal the entries since the last block now |
//! | `GET /v1/proof/inclusion?index=I&size=N` | inclusion proof |
//! | `GET /v1/proof/consistency?old=M&new=N` | consistency proof |
//! | `GET /v1/state` | derived state: authorities, issuers, lists |
//! | `GET /v1/authors/{did}` | the next sequence number for an author |
//! | `GET /v1/status/{id}` | the current Status List Token of list `…/v1/status/{id}` |
//! | `PUT /v1/relay?ttl=S&once=B` | store an encrypted presentation (≤ 64 KiB) |
//! | `GET /v1/relay/{id}` | fetch it (once, or until it expires) |
//!
//! Errors are `{"error": code, "detail": text}` with a 4xx or 5xx status.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::json;
use tower_http::timeout::TimeoutLayer;
use vouch_core::chain::MAX_ENTRY_BYTES;
use vouch_core::log::Hash;

use crate::node::{Node, SubmitError};

/// Most blocks one range request returns.
pub const MAX_BLOCKS: u64 = 1_000;
/// Most entries one range request returns.
pub const MAX_RANGE: u64 = 10_000;
/// Largest relay blob.
pub const MAX_RELAY_BYTES: usize = 64 << 10;
/// Longest a relay blob is kept, seconds.
pub const MAX_RELAY_TTL: u64 = 24 * 3600;

/// An API error: status, code, detail.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, detail: impl ToString) -> Self {
        Self {
            status,
            code,
            detail: detail.to_string(),
        }
    }

    fn bad(code: &'static str, detail: impl ToString) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    fn not_found(detail: impl ToString) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the node's log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({ "error": self.code, "detail": self.detail })),
        )
            .into_response()
    }
}

impl From<SubmitError> for ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Entry(e) => Self::bad("bad_entry", e),
            SubmitError::Rule(e) => Self::new(StatusCode::CONFLICT, "rule", e),
            SubmitError::Clock { .. } => Self::bad("clock", e),
            SubmitError::Store(e) => Self::internal(e),
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

#[derive(Clone)]
struct AppState {
    node: Arc<Node>,
    relay: sled::Tree,
}

/// The API router over `node`.
///
/// # Errors
/// When the relay's storage cannot be opened.
pub fn app(node: Arc<Node>) -> Result<Router, crate::store::StoreError> {
    let relay = node.store().open_tree("relay")?;
    let state = AppState { node, relay };
    Ok(Router::new()
        .route("/v1/info", get(info))
        .route(
            "/v1/entries",
            post(submit)
                .get(entries)
                .layer(DefaultBodyLimit::max(MAX_ENTRY_BYTES)),
        )
        .route("/v1/entries/by-hash/{hash}", get(by_hash))
        .route("/v1/checkpoint", get(checkpoint))
        .route("/v1/blocks", get(blocks))
        .route("/v1/blocks/{height}", get(block))
        .route(
            "/v1/blocks/{height}/cosignature",
            post(cosign).layer(DefaultBodyLimit::max(64 << 10)),
        )
        .route("/v1/seal", post(seal))
        .route("/v1/proof/inclusion", get(inclusion))
        .route("/v1/proof/consistency", get(consistency))
        .route("/v1/state", get(chain_state))
        .route("/v1/authors/{did}", get(author))
        .route("/v1/status/{id}", get(status_token))
        .route(
            "/v1/relay",
            put(relay_put).layer(DefaultBodyLimit::max(MAX_RELAY_BYTES)),
        )
        .route("/v1/relay/{id}", get(relay_get))
        .layer(DefaultBodyLimit::max(64 << 10))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(state))
}

async fn info(State(s): State<AppState>) -> Json<serde_json::Value> {
    let c = s.node.config();
    Json(json!({
        "origin": c.origin,
        "node_vkey": s.node.vkey(),
        "witnesses": c.witnesses,
        "need": c.need,
        "size": s.node.size(),
    }))
}

async fn submit(State(s): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let node = s.node.clone();
    let receipt = tokio::task::spawn_blocking(move || node.submit(&body, crate::now()))
        .await
        .map_err(ApiError::internal)??;
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}

#[derive(Deserialize)]
struct Range {
    start: u64,
    end: u64,
}

impl Range {
    /// Refuses a descending range or one longer than `max`.
    fn check(&self, max: u64, what: &str) -> ApiResult<()> {
        if self.end < self.start || self.end - self.start > max {
            return Err(ApiError::bad(
                "bad_range",
                format!("start..end must be ascending and span at most {max} {what}"),
            ));
        }
        Ok(())
    }
}

async fn entries(State(s): State<AppState>, Query(r): Query<Range>) -> ApiResult<Response> {
    r.check(MAX_RANGE, "entries")?;
    let node = s.node.clone();
    let items = tokio::task::spawn_blocking(move || node.entries(r.start, r.end))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let mut body = Vec::with_capacity(items.iter().map(|i| i.len() + 1).sum());
    for item in items {
        body.extend_from_slice(&item);
        body.push(b'\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

fn parse_hash(hex_text: &str) -> ApiResult<Hash> {
    hex::decode(hex_text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(Hash)
        .ok_or_else(|| ApiError::bad("bad_hash", "expected 64 hex digits"))
}

async fn by_hash(State(s): State<AppState>, Path(hash): Path<String>) -> ApiResult<Response> {
    let leaf = parse_hash(&hash)?;
    match s.node.index_of(&leaf).map_err(ApiError::internal)? {
        Some(index) => Ok(Json(json!({ "index": index })).into_response()),
        None => Err(ApiError::not_found("no entry with that leaf hash")),
    }
}

fn note(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

async fn checkpoint(State(s): State<AppState>) -> Response {
    note(s.node.checkpoint())
}

async fn block(State(s): State<AppState>, Path(height): Path<u64>) -> ApiResult<Response> {
    match s.node.block(height).map_err(ApiError::internal)? {
        Some(text) => Ok(note(text)),
        None => Err(ApiError::not_found(format!("no block {height}"))),
    }
}

async fn blocks(State(s): State<AppState>, Query(r): Query<Range>) -> ApiResult<Response> {
    r.check(MAX_BLOCKS, "blocks")?;
    let mut notes = Vec::new();
    for height in r.start..r.end {
        match s.node.block(height).map_err(ApiError::internal)? {
            Some(note) => notes.push(note),
            None => break,
        }
    }
    Ok(Json(notes).into_response())
}

async fn cosign(
    State(s): State<AppState>,
    Path(height): Path<u64>,
    body: String,
) -> ApiResult<Response> {
    let node = s.node.clone();
    let by = tokio::task::spawn_blocking(move || node.add_cosignature(height, &body))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::bad("bad_cosignature", e))?;
    Ok(Json(json!({ "cosigned_by": by })).into_response())
}

async fn seal(State(s): State<AppState>) -> ApiResult<Response> {
    let node = s.node.clone();
    let sealed = tokio::task::spawn_blocking(move || node.seal(crate::now()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(
        Json(json!({ "sealed": sealed.is_some(), "checkpoint": s.node.checkpoint() }))
            .into_response(),
    )
}

fn proof_json(proof: &[Hash]) -> Json<serde_json::Value> {
    Json(json!({ "proof": vouch_core::log::hashes_to_base64(proof) }))
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: u64,
    size: u64,
}

async fn inclusion(
    State(s): State<AppState>,
    Query(q): Query<InclusionQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let proof = s
        .node
        .inclusion(q.index, q.size)
        .map_err(|e| ApiError::bad("bad_range", e))?;
    Ok(proof_json(&proof))
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    old: u64,
    new: u64,
}

async fn consistency(
    State(s): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let proof = s
        .node
        .consistency(q.old, q.new)
        .map_err(|e| ApiError::bad("bad_range", e))?;
    Ok(proof_json(&proof))
}

async fn chain_state(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(
        s.node
            .with_state(|st| serde_json::to_value(st).unwrap_or_default()),
    )
}

async fn author(State(s): State<AppState>, Path(did): Path<String>) -> Json<serde_json::Value> {
    let next = s
        .node
        .with_state(|st| st.authors.get(&did).map_or(0, |(seq, _)| seq + 1));
    Json(json!({ "author": did, "next_seq": next }))
}

async fn status_token(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let suffix = format!("/v1/status/{id}");
    let token = s.node.with_state(|st| {
        st.lists
            .iter()
            .find(|(uri, _)| uri.ends_with(&suffix))
            .and_then(|(_, r)| r.token.clone())
    });
    match token {
        Some(t) => Ok(([(header::CONTENT_TYPE, "application/statuslist+jwt")], t).into_response()),
        None => Err(ApiError::not_found(format!("no status list {id}"))),
    }
}

#[derive(Deserialize)]
struct RelayQuery {
    ttl: Option<u64>,
    once: Option<bool>,
}

async fn relay_put(
    State(s): State<AppState>,
    Query(q): Query<RelayQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    if body.is_empty() {
        return Err(ApiError::bad("empty", "relay body is empty"));
    }
    let ttl = q.ttl.unwrap_or(600);
    if ttl == 0 || ttl > MAX_RELAY_TTL {
        return Err(ApiError::bad(
            "bad_ttl",
            format!("ttl must be 1..={MAX_RELAY_TTL} seconds"),
        ));
    }
    let expires = crate::now() + i64::try_from(ttl).unwrap_or(0);
    let mut id = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut id);
    let mut value = expires.to_be_bytes().to_vec();
    value.push(u8::from(q.once.unwrap_or(true)));
    value.extend_from_slice(&body);
    s.relay.insert(id, value).map_err(ApiError::internal)?;
    s.relay.flush_async().await.map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": hex::encode(id), "expires": expires })),
    )
        .into_response())
}

async fn relay_get(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let key = hex::decode(&id)
        .ok()
        .filter(|k| k.len() == 16)
        .ok_or_else(|| ApiError::bad("bad_id", "relay id is 32 hex digits"))?;
    let value = s
        .relay
        .get(&key)
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found("no such relay item (expired or already fetched)"))?;
    let (head, blob) = value.split_at(9.min(value.len()));
    let expires = head
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, i64::from_be_bytes);
    let once = head.get(8) == Some(&1);
    if expires < crate::now() || once {
        s.relay.remove(&key).map_err(ApiError::internal)?;
    }
    if expires < crate::now() {
        return Err(ApiError::not_found(
            "no such relay item (expired or already fetched)",
        ));
    }
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        blob.to_vec(),
    )
        .into_response())
}

/// Removes expired relay items.
///
/// # Errors
/// sled errors.
pub fn sweep_relay(relay: &sled::Tree, now: i64) -> Result<usize, sled::Error> {
    let mut removed = 0;
    for item in relay.iter() {
        let (k, v) = item?;
        let expires = v
            .get(..8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map_or(0, i64::from_be_bytes);
        if expires < now {
            relay.remove(k)?;
            removed += 1;
        }
    }
    Ok(removed)
}

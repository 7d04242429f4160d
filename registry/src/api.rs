//! The node's HTTP API.
//!
//! | method, path | what |
//! |---|---|
//! | `GET /v1/info` | origin, node key, witnesses, cosignatures needed, size |
//! | `POST /v1/entries` | submit an entry (its canonical JSON); replies after it is on disk (rate limited per client with `POST /v1/seal` and cosignature posts, see [`WriteLimits`]) |
//! | `GET /v1/entries?start=A&end=B` | entries `[A, B)`, one per line (at most 10,000 and 16 MiB: fewer when they would exceed it; ask again from there) |
//! | `GET /v1/entries/by-hash/{hex}` | the index of an entry by its leaf hash |
//! | `GET /v1/checkpoint` | the latest block's signed note |
//! | `GET /v1/blocks/{height}` | a block's signed note |
//! | `GET /v1/blocks?start=A&end=B` | the notes of blocks `[A, B)`, a JSON list (at most 1,000 and 16 MiB) |
//! | `POST /v1/blocks/{height}/cosignature` | a witness adds its cosignature |
//! | `POST /v1/seal` | seal the entries since the last block now |
//! | `GET /v1/proof/inclusion?index=I&size=N` | inclusion proof |
//! | `GET /v1/proof/consistency?old=M&new=N` | consistency proof |
//! | `GET /v1/state` | derived state: authorities, issuers, lists (built once per chain size) |
//! | `GET /v1/authors/{did}` | the next sequence number for an author |
//! | `GET /v1/status/{did}~{name}` | the current Status List Token of list `…/v1/status/{did}~{name}` (exact match) |
//! | `PUT /v1/relay?ttl=S&once=B` | store an encrypted presentation (≤ 64 KiB; quota and rate limit, see [`crate::relay`]) |
//! | `GET /v1/relay/{id}` | fetch it (once, or until it expires) |
//!
//! Errors are `{"error": code, "detail": text}` with a 4xx or 5xx status,
//! including axum's own refusals (bad path or query, body too large, no such
//! route, wrong method) and the request timeout.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use vouch_core::chain::MAX_ENTRY_BYTES;
use vouch_core::log::Hash;

use crate::node::{Node, ProofRequestError, SubmitError};
use crate::rate::{RateError, RateLimit};
use crate::relay::{Relay, RelayError, RelayLimits};
use crate::wire::{
    self, ApiErrorBody, ConsistencyQuery, Cosigned, EntryIndex, InclusionQuery, NextSeq, Proof,
    Range, RelayQuery, RelayStored, Sealed,
};
pub use crate::wire::{
    MAX_BLOCKS, MAX_BLOCKS_BYTES, MAX_DID_CHARS, MAX_RANGE, MAX_RANGE_BYTES, MAX_RELAY_BYTES,
    MAX_RELAY_TTL,
};

/// Longest a request may take, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Entries read from the store at a time while filling a range.
const ENTRY_CHUNK: u64 = 16;

/// The per-client rate limit on the write routes (`POST /v1/entries`,
/// `POST /v1/seal` and `POST /v1/blocks/{h}/cosignature` count together):
/// each write costs a signature check and a flush to disk, a seal a signed
/// block, a cosignature post a signature check per line.
#[derive(Debug, Clone)]
pub struct WriteLimits {
    /// Writes one client (IP address, IPv6 by /64) may make per window.
    pub per_window: u32,
    /// The window.
    pub window: Duration,
    /// Most distinct clients tracked per window; others are refused until
    /// the window ends.
    pub max_clients: usize,
}

impl Default for WriteLimits {
    fn default() -> Self {
        Self {
            per_window: 600,
            window: Duration::from_secs(60),
            max_clients: 10_000,
        }
    }
}

/// An API error, the one every Vouch service answers with: a status and
/// `{"error": code, "detail": text}`. A server error (5xx) is logged with
/// its detail; an internal one (500) keeps its detail in the log and tells
/// the client only that it happened. The verifier's service adds its own
/// conversions (`From` its error types) on top.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
}

impl ApiError {
    /// An error with `status`, machine-readable `code` and `detail` for
    /// the client (kept in the log instead for a 500).
    pub fn new(status: StatusCode, code: &'static str, detail: impl ToString) -> Self {
        Self {
            status,
            code,
            detail: detail.to_string(),
        }
    }

    /// `400 Bad Request` with `code`.
    pub fn bad(code: &'static str, detail: impl ToString) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// `404 Not Found`, code `not_found`.
    pub fn not_found(detail: impl ToString) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// `500 Internal Server Error`, code `internal`: `detail` goes to the
    /// log only.
    pub fn internal(detail: impl ToString) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

/// What a 500 tells the client; the detail is in the server's log.
pub const INTERNAL_DETAIL: &str = "internal error; see the server's log";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let detail = if self.status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(code = self.code, "internal error: {}", self.detail);
            INTERNAL_DETAIL.to_owned()
        } else {
            if self.status.is_server_error() {
                tracing::warn!(
                    status = self.status.as_u16(),
                    code = self.code,
                    "{}",
                    self.detail
                );
            }
            self.detail
        };
        (
            self.status,
            Json(ApiErrorBody {
                error: self.code.to_owned(),
                detail,
            }),
        )
            .into_response()
    }
}

impl From<RelayError> for ApiError {
    fn from(e: RelayError) -> Self {
        match e {
            RelayError::Empty => Self::bad("empty", e),
            RelayError::TooLarge { .. } => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e),
            RelayError::BadTtl { .. } => Self::bad("bad_ttl", e),
            RelayError::Full { .. } => Self::new(StatusCode::INSUFFICIENT_STORAGE, "relay_full", e),
            RelayError::RateLimited { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e)
            }
            RelayError::Busy { .. } => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e),
            RelayError::Storage(e) => Self::internal(e),
        }
    }
}

impl From<RateError> for ApiError {
    fn from(e: RateError) -> Self {
        match e {
            RateError::Limited { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e)
            }
            RateError::Busy { .. } => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e),
        }
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
    relay: Arc<Relay>,
    writes: Arc<RateLimit>,
    /// `GET /v1/state`'s body and the chain size it was built at.
    state_json: Arc<Mutex<Option<(u64, Bytes)>>>,
}

/// The API router over `node`, with the relay in `<node dir>/relay` under
/// the default [`RelayLimits`].
///
/// # Errors
/// When the relay's storage cannot be opened.
pub fn app(node: Arc<Node>) -> Result<Router, RelayError> {
    let relay = Relay::open(&node.dir().join("relay"), RelayLimits::default())?;
    Ok(app_with(node, Arc::new(relay)))
}

/// The API router over `node` and `relay` (which the caller keeps, e.g. to
/// sweep it), with the default [`WriteLimits`].
pub fn app_with(node: Arc<Node>, relay: Arc<Relay>) -> Router {
    app_with_limits(node, relay, WriteLimits::default())
}

/// The API router over `node` and `relay`, with `writes` limiting the write
/// routes per client.
pub fn app_with_limits(node: Arc<Node>, relay: Arc<Relay>, writes: WriteLimits) -> Router {
    let relay_body = relay.limits().max_item_bytes;
    let state = AppState {
        node,
        relay,
        writes: Arc::new(RateLimit::new(
            writes.per_window,
            writes.window,
            writes.max_clients,
        )),
        state_json: Arc::new(Mutex::new(None)),
    };
    Router::new()
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
            put(relay_put).layer(DefaultBodyLimit::max(relay_body)),
        )
        .route("/v1/relay/{id}", get(relay_get))
        .layer(DefaultBodyLimit::max(64 << 10))
        .layer(axum::middleware::from_fn(deadline))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

/// Ends a request that takes longer than [`REQUEST_TIMEOUT`] (a client
/// trickling its body included) with a 408.
async fn deadline(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!("the request took longer than {REQUEST_TIMEOUT:?}"),
        )
        .into_response(),
    }
}

/// Turns any error response that is not already JSON (axum's refusals of a
/// bad path, query or body, an unknown route, a wrong method) into the
/// API's `{"error", "detail"}` form, keeping its status.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let text = axum::body::to_bytes(resp.into_body(), 4096)
        .await
        .unwrap_or_default();
    let mut detail: String = String::from_utf8_lossy(&text).chars().take(500).collect();
    if detail.is_empty() {
        detail = status.canonical_reason().unwrap_or("error").to_owned();
    }
    ApiError::new(status, code, detail).into_response()
}

async fn info(State(s): State<AppState>) -> Json<wire::NodeInfo> {
    Json(s.node.info())
}

/// The client's IP address, when the server passed it on.
fn client_ip(client: Option<Extension<ConnectInfo<SocketAddr>>>) -> Option<std::net::IpAddr> {
    client.map(|Extension(ConnectInfo(addr))| addr.ip())
}

async fn submit(
    State(s): State<AppState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> ApiResult<Response> {
    s.writes.admit(client_ip(client))?;
    let node = s.node.clone();
    let receipt = tokio::task::spawn_blocking(move || node.submit(&body, crate::now()))
        .await
        .map_err(ApiError::internal)??;
    Ok((StatusCode::CREATED, Json(receipt)).into_response())
}

/// Refuses a descending range or one longer than `max`.
fn check_range(r: Range, max: u64, what: &str) -> ApiResult<()> {
    if r.end < r.start || r.end - r.start > max {
        return Err(ApiError::bad(
            "bad_range",
            format!("start..end must be ascending and span at most {max} {what}"),
        ));
    }
    Ok(())
}

/// Entries `[start, end)` one per line, stopping before the body would pass
/// [`MAX_RANGE_BYTES`] (at least one entry when there is one). Reads the
/// store a few entries at a time (the entries it holds are shared slices
/// of its records, not copies) and copies them into a body of the exact
/// size at the end: growing it as it goes moved megabytes per range.
fn entry_lines(node: &Node, start: u64, end: u64) -> Result<Vec<u8>, crate::store::StoreError> {
    // Sized by the entries the node holds, not by what was asked: a range
    // far past the end reserves nothing.
    let held = end.min(node.size()).saturating_sub(start).min(MAX_RANGE);
    let mut lines = Vec::with_capacity(usize::try_from(held).unwrap_or(0));
    let mut size = 0usize;
    let mut at = start;
    'read: while at < end {
        let to = at.saturating_add(ENTRY_CHUNK).min(end);
        let items = node.entries(at, to)?;
        if items.is_empty() {
            break;
        }
        for item in items {
            if size > 0 && size + item.len() + 1 > MAX_RANGE_BYTES {
                break 'read;
            }
            size += item.len() + 1;
            lines.push(item);
        }
        at = to;
    }
    let mut body = Vec::with_capacity(size);
    for line in &lines {
        body.extend_from_slice(line);
        body.push(b'\n');
    }
    Ok(body)
}

async fn entries(State(s): State<AppState>, Query(r): Query<Range>) -> ApiResult<Response> {
    check_range(r, MAX_RANGE, "entries")?;
    let node = s.node.clone();
    let body = tokio::task::spawn_blocking(move || entry_lines(&node, r.start, r.end))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
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
        Some(index) => Ok(Json(EntryIndex { index }).into_response()),
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
    check_range(r, MAX_BLOCKS, "blocks")?;
    // A JSON list built note by note, so its size is known as it grows.
    let mut body = b"[".to_vec();
    for height in r.start..r.end {
        let Some(note) = s.node.block(height).map_err(ApiError::internal)? else {
            break;
        };
        let item = serde_json::to_vec(&note).map_err(ApiError::internal)?;
        if body.len() > 1 && body.len() + item.len() + 2 > MAX_BLOCKS_BYTES {
            break;
        }
        if body.len() > 1 {
            body.push(b',');
        }
        body.extend_from_slice(&item);
    }
    body.push(b']');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn cosign(
    State(s): State<AppState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    Path(height): Path<u64>,
    body: String,
) -> ApiResult<Response> {
    // Each post costs up to one signature check per line it carries.
    s.writes.admit(client_ip(client))?;
    let node = s.node.clone();
    let by = tokio::task::spawn_blocking(move || node.add_cosignature(height, &body))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::bad("bad_cosignature", e))?;
    Ok(Json(Cosigned { cosigned_by: by }).into_response())
}

async fn seal(
    State(s): State<AppState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
) -> ApiResult<Response> {
    s.writes.admit(client_ip(client))?;
    let node = s.node.clone();
    let sealed = tokio::task::spawn_blocking(move || node.seal(crate::now()))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    Ok(Json(Sealed {
        sealed: sealed.is_some(),
        checkpoint: s.node.checkpoint(),
    })
    .into_response())
}

impl From<ProofRequestError> for ApiError {
    fn from(e: ProofRequestError) -> Self {
        match e {
            ProofRequestError::Tree(e) => Self::internal(e),
            e => Self::bad("bad_range", e),
        }
    }
}

async fn inclusion(
    State(s): State<AppState>,
    Query(q): Query<InclusionQuery>,
) -> ApiResult<Json<Proof>> {
    let proof = s.node.inclusion(q.index, q.size)?;
    Ok(Json(Proof { proof }))
}

async fn consistency(
    State(s): State<AppState>,
    Query(q): Query<ConsistencyQuery>,
) -> ApiResult<Json<Proof>> {
    let proof = s.node.consistency(q.old, q.new)?;
    Ok(Json(Proof { proof }))
}

/// The derived state as JSON, serialised again only when the chain's size
/// changed since the last request (every change to the state is an entry).
async fn chain_state(State(s): State<AppState>) -> ApiResult<Response> {
    let body = tokio::task::spawn_blocking(move || {
        s.node.with_state(|st| {
            let mut cache = s
                .state_json
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &*cache {
                Some((size, json)) if *size == st.size => Ok(json.clone()),
                _ => {
                    let json = Bytes::from(serde_json::to_vec(st)?);
                    *cache = Some((st.size, json.clone()));
                    Ok::<_, serde_json::Error>(json)
                }
            }
        })
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn author(State(s): State<AppState>, Path(did): Path<String>) -> ApiResult<Json<NextSeq>> {
    if did.len() > MAX_DID_CHARS || !did.starts_with("did:") {
        return Err(ApiError::bad(
            "bad_did",
            format!("author must be a DID of at most {MAX_DID_CHARS} characters"),
        ));
    }
    let next = s
        .node
        .with_state(|st| st.authors.get(&did).map_or(0, |(seq, _)| seq + 1));
    Ok(Json(NextSeq {
        author: did,
        next_seq: next,
    }))
}

async fn status_token(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    // Exact lookup by `did~name`: the chain keeps list ids unique, and a
    // list is only ever served at the URI its issuer anchored.
    let token = s
        .node
        .with_state(|st| st.list_by_id(&id).and_then(|(_, r)| r.token.clone()));
    match token {
        Some(t) => Ok(([(header::CONTENT_TYPE, "application/statuslist+jwt")], t).into_response()),
        None => Err(ApiError::not_found(format!("no status list {id}"))),
    }
}

async fn relay_put(
    State(s): State<AppState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    Query(q): Query<RelayQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let ip = client_ip(client);
    let ttl = q.ttl.unwrap_or(wire::DEFAULT_RELAY_TTL);
    let once = q.once.unwrap_or(true);
    let relay = s.relay.clone();
    let (id, expires) =
        tokio::task::spawn_blocking(move || relay.put(ip, &body, ttl, once, crate::now()))
            .await
            .map_err(ApiError::internal)??;
    s.relay.flush().await?;
    Ok((
        StatusCode::CREATED,
        Json(RelayStored {
            id: hex::encode(id),
            expires,
        }),
    )
        .into_response())
}

async fn relay_get(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let key = hex::decode(&id)
        .ok()
        .and_then(|k| <[u8; 16]>::try_from(k).ok())
        .ok_or_else(|| ApiError::bad("bad_id", "relay id is 32 hex digits"))?;
    let relay = s.relay.clone();
    let blob = tokio::task::spawn_blocking(move || relay.take(&key, crate::now()))
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| ApiError::not_found("no such relay item (expired or already fetched)"))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], blob).into_response())
}

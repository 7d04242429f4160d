//! The verifier's HTTP service and web page.
//!
//! | method, path | what |
//! |---|---|
//! | `GET /` | the web page (camera scan, paste, upload; compiled in) |
//! | `POST /api/requests` | a new presentation request (`{"claims": [...]}` optional): its text and QR PNG |
//! | `POST /api/verify` | verify: JSON `{"input", "nonce"?, "aud"?}`, or the input itself as text or an image (`?nonce=&aud=`) |
//! | `POST /api/scan` | one camera frame (PNG/JPEG) → its QR code → the verdict (`?nonce=&aud=`) |
//! | `GET /api/health` | replica height, block time, age, last sync result |
//! | `GET /api/openapi.json` | the OpenAPI document |
//!
//! A verdict (valid or not) is `200` with the [`Checked`] JSON; an input
//! that could not be checked is a 4xx with `{"error": code, "detail":
//! text}` (`no_code` when a frame holds no QR code: the page sends the
//! next one). Bodies are capped at [`MAX_BODY`], each request at
//! [`REQUEST_TIMEOUT`]. Verifications read a snapshot of the replica's view
//! ([`AppState::publish`]), swapped in by [`sync_loop`] after each sync, so
//! they never wait for a sync. They are checked by a [`CheckPool`]
//! ([`AppState::pooled`], what `vouch-verifier serve` does by default),
//! which answers `503 busy` when its queue is full, before the input is
//! read; or each on a blocking thread ([`AppState::new`]).

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use vouch_core::view::ChainView;
use vouch_core::ClaimPath;
use vouch_registry::client::NodeClient;
use vouch_registry::replica::Replica;

use crate::input::{Input, InputError};
use crate::pool::{CheckPool, PoolError};
use crate::qr::QrError;
use crate::relay::RelayError;
use crate::verifier::{Ask, Checked, Checker, VerifierError};

/// Largest request body: an image.
pub const MAX_BODY: usize = crate::qr::MAX_IMAGE_BYTES;
/// Longest a request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const INDEX: &str = include_str!("page/index.html");
const OPENAPI: &str = include_str!("openapi.json");

/// The result of the last sync.
#[derive(Debug, Clone, Serialize)]
pub struct SyncOutcome {
    /// When it ended (Unix seconds).
    pub at: i64,
    /// Whether it succeeded.
    pub ok: bool,
    /// The height reached, or why it failed.
    pub detail: String,
}

/// What the service shares: the checker (or the pool checking with it),
/// the current view, the last sync.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    checks: Checks,
    view: RwLock<Option<Arc<ChainView>>>,
    last_sync: Mutex<Option<SyncOutcome>>,
}

/// How verifications are checked.
#[derive(Debug)]
enum Checks {
    /// By [`Checker::check`] on the blocking threads (batched as the
    /// checker's [`Checker::set_batching`] says).
    Direct(Box<Checker>),
    /// By a [`CheckPool`]'s workers, in batches of what is queued.
    Pool(CheckPool),
}

/// A [`CheckPool`]'s settings for [`AppState::pooled`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Worker threads (`None`: one per core).
    pub workers: Option<usize>,
    /// Most presentations checked as one batch.
    pub max: usize,
    /// Most presentations waiting (more answer `503 busy`).
    pub max_queued: usize,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            workers: None,
            max: CheckPool::DEFAULT_MAX,
            max_queued: CheckPool::DEFAULT_MAX_QUEUED,
        }
    }
}

impl AppState {
    /// State over `checker`, with `view` as the first snapshot (`None`
    /// before the first sync: verifications answer `503 not_synced`);
    /// each verification checked on a blocking thread by
    /// [`Checker::check`].
    pub fn new(checker: Checker, view: Option<ChainView>) -> Self {
        Self::with_checks(Checks::Direct(Box::new(checker)), view)
    }

    /// As [`AppState::new`], each verification checked by a [`CheckPool`]
    /// over `checker` (the signatures of what is queued as one batch).
    ///
    /// # Errors
    /// The system refused a worker thread.
    pub fn pooled(
        checker: Checker,
        view: Option<ChainView>,
        config: PoolConfig,
    ) -> std::io::Result<Self> {
        let pool = CheckPool::new(
            Arc::new(checker),
            config.workers,
            config.max,
            config.max_queued,
        )?;
        Ok(Self::with_checks(Checks::Pool(pool), view))
    }

    fn with_checks(checks: Checks, view: Option<ChainView>) -> Self {
        Self(Arc::new(Shared {
            checks,
            view: RwLock::new(view.map(Arc::new)),
            last_sync: Mutex::new(None),
        }))
    }

    /// The pool, when verifications go through one.
    pub fn pool(&self) -> Option<&CheckPool> {
        match &self.0.checks {
            Checks::Pool(pool) => Some(pool),
            Checks::Direct(_) => None,
        }
    }

    /// Swaps in a new view: later verifications read it.
    pub fn publish(&self, view: ChainView) {
        let view = Arc::new(view);
        match self.0.view.write() {
            Ok(mut slot) => *slot = Some(view),
            Err(poisoned) => *poisoned.into_inner() = Some(view),
        }
    }

    /// The current view.
    pub fn view(&self) -> Option<Arc<ChainView>> {
        match self.0.view.read() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Records the outcome of a sync.
    pub fn record_sync(&self, outcome: SyncOutcome) {
        match self.0.last_sync.lock() {
            Ok(mut slot) => *slot = Some(outcome),
            Err(poisoned) => *poisoned.into_inner() = Some(outcome),
        }
    }

    fn last_sync(&self) -> Option<SyncOutcome> {
        match self.0.last_sync.lock() {
            Ok(slot) => slot.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The checker.
    pub fn checker(&self) -> &Checker {
        match &self.0.checks {
            Checks::Direct(checker) => checker,
            Checks::Pool(pool) => pool.checker(),
        }
    }
}

/// Syncs `replica` from `registry` every `interval`, publishing each new
/// view into `state` and recording each outcome; runs until dropped.
pub async fn sync_loop(
    state: AppState,
    mut replica: Replica,
    registry: String,
    interval: Duration,
) {
    let client = match NodeClient::new(&registry) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("registry client for {registry}: {e}");
            state.record_sync(SyncOutcome {
                at: crate::now(),
                ok: false,
                detail: e.to_string(),
            });
            return;
        }
    };
    loop {
        let outcome = match replica.sync(&client).await {
            Ok(report) => match replica.view() {
                Ok(view) => {
                    state.publish(view);
                    SyncOutcome {
                        at: crate::now(),
                        ok: true,
                        detail: format!("block {}", report.height),
                    }
                }
                Err(e) => SyncOutcome {
                    at: crate::now(),
                    ok: false,
                    detail: e.to_string(),
                },
            },
            Err(e) => SyncOutcome {
                at: crate::now(),
                ok: false,
                detail: e.to_string(),
            },
        };
        if outcome.ok {
            tracing::debug!("sync: {}", outcome.detail);
        } else {
            tracing::warn!("sync from {registry} failed: {}", outcome.detail);
        }
        state.record_sync(outcome);
        tokio::time::sleep(interval).await;
    }
}

/// The API's error: the registry's [`vouch_registry::api::ApiError`]
/// (`{"error": code, "detail": text}`; a server error logged, an internal
/// one's detail kept in the log), with the verifier's conversions below.
pub use vouch_registry::api::ApiError;

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
        match &e {
            InputError::TooLarge { .. } | InputError::Qr(QrError::FileTooLarge { .. }) => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e)
            }
            InputError::Qr(QrError::NoCode) => Self::new(unprocessable, "no_code", e),
            InputError::Qr(QrError::TooLarge { .. }) => {
                Self::new(unprocessable, "image_too_large", e)
            }
            InputError::Qr(_) => Self::new(unprocessable, "bad_image", e),
            InputError::Relay(RelayError::Gone { .. }) => Self::new(unprocessable, "relay_gone", e),
            InputError::Relay(RelayError::Fetch { .. } | RelayError::Status { .. }) => {
                Self::new(StatusCode::BAD_GATEWAY, "relay_unreachable", e)
            }
            InputError::Relay(RelayError::HostNotAllowed { .. }) => {
                Self::new(unprocessable, "relay_not_followed", e)
            }
            InputError::Relay(_) => Self::new(unprocessable, "bad_relay_link", e),
            _ => Self::new(unprocessable, "bad_input", e),
        }
    }
}

impl From<VerifierError> for ApiError {
    fn from(e: VerifierError) -> Self {
        match &e {
            VerifierError::Verify(_) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "cannot_check", e)
            }
            VerifierError::Audience { .. } => Self::new(StatusCode::BAD_REQUEST, "bad_audience", e),
            VerifierError::NotSynced => Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_synced", e),
            VerifierError::Nonces(crate::nonce::NonceError::Full { .. }) => {
                Self::new(StatusCode::SERVICE_UNAVAILABLE, "too_many_requests_open", e)
            }
            VerifierError::Nonces(crate::nonce::NonceError::Request(_)) => {
                Self::new(StatusCode::BAD_REQUEST, "bad_request", e)
            }
            _ => Self::internal(e),
        }
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Check(e) => e.into(),
            PoolError::Busy(_) => Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e),
            PoolError::Lost => Self::internal(e),
        }
    }
}

fn body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too_large"
        } else {
            "bad_body"
        };
        ApiError::new(status, code, r.body_text())
    })
}

/// The router over `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi))
        .route("/api/requests", post(new_request))
        .route("/api/verify", post(verify))
        .route("/api/scan", post(scan))
        .fallback(|| async { ApiError::not_found("no such route") })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(timeout))
        .with_state(state)
}

/// Bounds each request by [`REQUEST_TIMEOUT`] and logs it (method, path
/// without the query, which may hold a nonce, status, time).
async fn timeout(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let start = std::time::Instant::now();
    let resp = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            format!(
                "the request took longer than {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
        )
        .into_response(),
    };
    tracing::debug!(
        %method,
        path,
        status = resp.status().as_u16(),
        ms = start.elapsed().as_millis(),
        "request"
    );
    resp
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn health(State(s): State<AppState>) -> Json<serde_json::Value> {
    let now = crate::now();
    let replica = s.view().map(|v| {
        json!({
            "height": v.height(),
            "block_time": v.time(),
            "age": v.age(now),
        })
    });
    Json(json!({
        "replica": replica,
        "last_sync": s.last_sync(),
        "open_requests": s.checker().nonces().open_count(),
    }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewRequest {
    #[serde(default)]
    claims: Vec<String>,
}

async fn new_request(
    State(s): State<AppState>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let raw = body(raw)?;
    let asked: NewRequest = if raw.iter().all(u8::is_ascii_whitespace) {
        NewRequest::default()
    } else {
        serde_json::from_slice(&raw).map_err(|e| ApiError::bad("bad_json", e))?
    };
    let claims = asked
        .claims
        .iter()
        .map(|c| ClaimPath::parse(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad("bad_claim", e))?;
    let request = s.checker().request(claims, crate::now())?;
    let text = request.to_text();
    let png = vouch_core::qr::qr_code(&text, vouch_core::qr::EcLevel::M)
        .and_then(|code| vouch_core::qr::png(&code, 6, 4))
        .map_err(ApiError::internal)?;
    Ok(Json(json!({
        "request": text,
        "aud": request.aud(),
        "nonce": request.nonce(),
        "expires": request.expires(),
        "claims": request.claims().iter().map(ToString::to_string).collect::<Vec<_>>(),
        "qr_png": format!("data:image/png;base64,{}", base64_std(&png)),
    })))
}

fn base64_std(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `?nonce=&aud=` for text and image bodies.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AskQuery {
    nonce: Option<String>,
    aud: Option<String>,
}

/// The JSON body of `POST /api/verify`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyBody {
    input: String,
    nonce: Option<String>,
    aud: Option<String>,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

async fn verify(
    State(s): State<AppState>,
    query: Result<Query<AskQuery>, QueryRejection>,
    headers: HeaderMap,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Checked>, ApiError> {
    let raw = body(raw)?;
    let Query(query) = query.map_err(|e| ApiError::bad("bad_query", e.body_text()))?;
    let (input, ask) = if is_json(&headers) {
        let b: VerifyBody =
            serde_json::from_slice(&raw).map_err(|e| ApiError::bad("bad_json", e))?;
        let ask = Ask {
            aud: b.aud.or(query.aud),
            nonce: b.nonce.or(query.nonce),
        };
        (Input::from_text(&b.input)?, ask)
    } else {
        let ask = Ask {
            aud: query.aud,
            nonce: query.nonce,
        };
        (Input::from_bytes(raw.to_vec())?, ask)
    };
    run(s, input, ask).await
}

async fn scan(
    State(s): State<AppState>,
    query: Result<Query<AskQuery>, QueryRejection>,
    raw: Result<Bytes, BytesRejection>,
) -> Result<Json<Checked>, ApiError> {
    let raw = body(raw)?;
    let Query(query) = query.map_err(|e| ApiError::bad("bad_query", e.body_text()))?;
    let input = Input::from_bytes(raw.to_vec())?;
    if !matches!(input, Input::Image(_)) {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_an_image",
            "a scan is a PNG or JPEG camera frame",
        ));
    }
    let ask = Ask {
        aud: query.aud,
        nonce: query.nonce,
    };
    run(s, input, ask).await
}

/// Resolves and checks off the async workers: image decoding and signature
/// checks are CPU work (a pool's workers check; else a blocking thread).
async fn run(s: AppState, input: Input, ask: Ask) -> Result<Json<Checked>, ApiError> {
    let view = s
        .view()
        .ok_or_else(|| ApiError::from(VerifierError::NotSynced))?;
    let handle = tokio::runtime::Handle::current();
    if let Some(pool) = s.pool() {
        // A place in the queue first: a full queue refuses the input
        // before it is read (an image decoded, a relay item, which is
        // served once, fetched), so that trying again later can work.
        let slot = pool.reserve()?;
        let relays = s.checker().relay_hosts();
        let presented = if matches!(input, Input::Image(_) | Input::Relay(_)) {
            tokio::task::spawn_blocking(move || handle.block_on(input.resolve_with(&relays)))
                .await
                .map_err(ApiError::internal)??
        } else {
            input.resolve_with(&relays).await?
        };
        // Dropped unanswered (the request timed out, the client left),
        // the submission is withdrawn if no worker has taken it yet.
        let checked = slot.submit(view, presented, ask).wait().await?;
        return Ok(Json(checked));
    }
    let checked = tokio::task::spawn_blocking(move || -> Result<Checked, ApiError> {
        let presented = handle.block_on(input.resolve_with(&s.checker().relay_hosts()))?;
        Ok(s.checker().check(&view, &presented, &ask, crate::now())?)
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(Json(checked))
}

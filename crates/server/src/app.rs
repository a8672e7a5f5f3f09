//! The gateway: its shared state, its routes, the per-request log and metrics layer, and
//! serving with a graceful stop.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use http::HeaderValue;
use imagegate_core::{clock::Clock, clock::SystemClock};
use imagegate_router::Router;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, ServerConfig};
use crate::files::Files;
use crate::handle;
use crate::held::Held;
use crate::keys::{Keys, hex, random_bytes};
use crate::observe::{Observe, Outcome, log_line};

/// How often the metrics' histogram samples are folded into buckets.
const UPKEEP: Duration = Duration::from_secs(5);

/// The header carrying each request's id, taken from the client when it sent a sane one.
const REQUEST_ID: &str = "x-request-id";

/// Everything the handlers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) router: Router,
    pub(crate) config: ServerConfig,
    pub(crate) routes: Vec<String>,
    pub(crate) keys: Keys,
    pub(crate) files: Files,
    pub(crate) observe: Observe,
    pub(crate) clock: Arc<dyn Clock>,
    /// One permit per request the gateway holds (`server.max_queue`).
    pub(crate) queue: Arc<Semaphore>,
    /// Who the held requests are: priority and arrival, for the status page.
    pub(crate) holding: Arc<Held>,
    /// Set when the stop signal came: new requests get 503.
    pub(crate) draining: CancellationToken,
    /// Set when the grace after the stop signal ran out: requests still waiting get 503.
    pub(crate) expired: CancellationToken,
    /// Each client's spend today (UTC): the day and the dollars.
    pub(crate) spend: Mutex<HashMap<String, (jiff::civil::Date, f64)>>,
    ids: AtomicU64,
    id_prefix: String,
}

impl Shared {
    fn next_request_id(&self) -> String {
        format!(
            "{}-{:08x}",
            self.id_prefix,
            self.ids.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Requests the gateway holds right now.
    pub(crate) fn held(&self) -> usize {
        self.config
            .max_queue
            .saturating_sub(self.queue.available_permits())
    }
}

/// `imagegate serve`'s server: a [`Router`] behind the three dialects (see the crate docs).
///
/// Cheap to clone; clones share the state.
#[derive(Clone, Debug)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl Gateway {
    /// A gateway over `router`, keeping `url` images under `files_dir`, on the wall clock.
    ///
    /// # Errors
    /// [`ConfigError`] when the settings name routes the router lacks, or are otherwise unusable.
    pub fn new(
        router: Router,
        config: ServerConfig,
        files_dir: PathBuf,
    ) -> Result<Gateway, ConfigError> {
        Gateway::with_clock(router, config, files_dir, Arc::new(SystemClock))
    }

    /// As [`new`](Self::new), with the clock that dates answers, file expiry and budgets.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_clock(
        router: Router,
        config: ServerConfig,
        files_dir: PathBuf,
        clock: Arc<dyn Clock>,
    ) -> Result<Gateway, ConfigError> {
        let routes = router.route_names();
        config.validate(&routes)?;
        let prefix = random_bytes::<4>()
            .map(|b| hex(&b))
            .unwrap_or_else(|_| "00000000".to_owned());
        Ok(Gateway {
            shared: Arc::new(Shared {
                keys: Keys::new(&config.clients),
                files: Files::new(files_dir, config.files_ttl, config.files_max_bytes),
                observe: Observe::new(),
                queue: Arc::new(Semaphore::new(config.max_queue)),
                holding: Arc::new(Held::default()),
                draining: CancellationToken::new(),
                expired: CancellationToken::new(),
                spend: Mutex::new(HashMap::new()),
                ids: AtomicU64::new(1),
                id_prefix: prefix,
                router,
                routes,
                config,
                clock,
            }),
        })
    }

    /// Whether no clients are configured, so that any key is accepted (loopback only).
    pub fn accepts_any_key(&self) -> bool {
        self.shared.keys.is_open()
    }

    /// The model names clients may use.
    pub fn model_names(&self) -> Vec<String> {
        self.shared.config.model_names(&self.shared.routes)
    }

    /// The HTTP routes, with the body limit and the per-request log and metrics.
    pub fn app(&self) -> axum::Router {
        let limit = usize::try_from(self.shared.config.max_body).unwrap_or(usize::MAX);
        let mut app = axum::Router::new()
            .route("/v1/images/generations", post(handle::images_generations))
            .route("/v1/images/edits", post(handle::images_edits))
            .route("/v1/images/files/{id}", get(handle::image_file))
            .route("/v1/chat/completions", post(handle::chat))
            .route("/api/v1/chat/completions", post(handle::chat))
            .route("/v1/models", get(handle::models_v1))
            .route("/api/v1/models", get(handle::openai_models))
            .route("/v1beta/models", get(handle::gemini_models))
            .route("/healthz", get(handle::healthz))
            .route("/readyz", get(handle::readyz))
            .route("/status.json", get(handle::status))
            .route("/", get(crate::page::page))
            .route("/status", get(crate::page::page))
            .route("/metrics", get(handle::metrics));
        for version in ["v1beta", "v1"] {
            app = app.route(
                &format!("/{version}/models/{{target}}"),
                get(handle::gemini_model).post(handle::gemini_call),
            );
        }
        app.fallback(handle::not_found)
            .layer(DefaultBodyLimit::max(limit))
            .layer(middleware::from_fn_with_state(
                self.shared.clone(),
                observe_request,
            ))
            .with_state(self.shared.clone())
    }

    /// Serves on `listener` until `shutdown` completes; then stops accepting, answers the
    /// requests still waiting for capacity 503 with `Retry-After` at once, lets the ones whose
    /// upstream call has started finish within `server.shutdown_grace` (503 for any still
    /// unanswered when it ends), and returns.
    ///
    /// # Errors
    /// The listener's I/O error.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let events = self.watch_events();
        let shared = self.shared.clone();
        let signal = async move {
            shutdown.await;
            shared.draining.cancel();
            let grace = shared.config.shutdown_grace;
            tracing::info!(
                target: "imagegate::gateway",
                held = shared.held(),
                grace_ms = grace.as_millis() as u64,
                "stopping: no new requests; requests in flight may finish"
            );
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                shared.expired.cancel();
            });
        };
        let result = axum::serve(listener, self.app())
            .with_graceful_shutdown(signal)
            .await;
        events.abort();
        result
    }

    /// Feeds the router's events to the metrics and the recent-events ring, and folds the
    /// histograms every [`UPKEEP`]; ends with the server.
    fn watch_events(&self) -> tokio::task::JoinHandle<()> {
        use tokio::sync::broadcast::error::RecvError;
        let mut events = self.shared.router.subscribe();
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(UPKEEP);
            loop {
                tokio::select! {
                    _ = tick.tick() => shared.observe.upkeep(),
                    event = events.recv() => match event {
                        Ok(event) => shared.observe.event(&event, shared.clock.now()),
                        Err(RecvError::Lagged(n)) => {
                            tracing::warn!(target: "imagegate::gateway", missed = n, "the metrics fell behind the router's events");
                        }
                        Err(RecvError::Closed) => break,
                    },
                }
            }
        })
    }
}

/// A request id a client sent, when it is short and printable (it goes into logs).
fn sane_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    (!text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| text.to_owned())
}

/// One log line and the request metrics per request; echoes `x-request-id`. Only the path is
/// logged, never the query (`?key=` holds a key).
async fn observe_request(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(sane_id)
        .unwrap_or_else(|| shared.next_request_id());
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let start = Instant::now();
    let mut response = next.run(request).await;
    let latency: Duration = start.elapsed();
    let outcome = response
        .extensions_mut()
        .remove::<Outcome>()
        .unwrap_or_default();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let status = response.status().as_u16();
    log_line(&id, &method, &path, status, latency, &outcome);
    shared.observe.request(&outcome, status, latency);
    if outcome.dialect.is_some() {
        let now = shared.clock.now();
        shared.observe.answered(status, now);
        if status == 429 {
            shared.observe.refused(&outcome, now);
        }
    }
    response
}

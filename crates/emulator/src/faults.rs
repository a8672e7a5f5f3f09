//! Fault injection: the ways a real upstream, or a proxy in front of it, fails that are not a
//! quota answer. Configured by `[upstream.faults]` (every pool) and `[upstream.pool.faults]`
//! (one pool, replacing the global table for it) as shares of the generation requests
//! (docs/emulate.md, "Faults"), drawn from one seeded stream; a test can also
//! [force](crate::Emulator::force_fault) the next ones.
//!
//! Two families, so that "paid" stays exact:
//! - **in front of the upstream** (nothing is decided or counted, as when a load balancer
//!   fails): a reset before the headers, an HTML page with 502 or 200, a 401 or 500 burst;
//! - **on the way back** (the upstream decided and counted, an image was drawn and paid for,
//!   then the answer went wrong): a reset mid-body, a slow body, a truncated body, a wrong
//!   content type, an oversized body, an answer that never comes.
//!
//! A reset is a real TCP reset (`SO_LINGER` 0, then close), which needs the connection: it
//! works under [`Emulator::serve`](crate::Emulator::serve); a bare
//! [`router`](crate::Emulator::router) cuts the body instead.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use http::{HeaderValue, Method, StatusCode, header};
use imagegate_mock::sim::wire::UpstreamKind;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::config::ConfigError;
use crate::emulator::{Caller, Shared};

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// The connection is reset before any byte of the answer (not counted upstream).
    ResetBeforeHeaders,
    /// The headers and part of the body arrive, then the connection is reset (counted).
    ResetMidBody,
    /// The answer arrives at `slow_body_bytes_per_second` (counted).
    SlowBody,
    /// A well-framed answer whose body is its first half (counted).
    TruncatedBody,
    /// A proxy's HTML error page with status 502 (not counted).
    Html502,
    /// A captive portal's or proxy's HTML page with status 200 (not counted).
    Html200,
    /// The real answer labelled `text/html` (counted).
    WrongContentType,
    /// A 200 whose JSON body goes on for `oversized_body_bytes`, without a length (counted).
    OversizedBody,
    /// The upstream takes the request (counted) and never answers.
    NeverResponds,
    /// `burst_length` consecutive 401s in the provider's shape (not counted).
    Burst401,
    /// `burst_length` consecutive 500s in the provider's shape (not counted).
    Burst500,
}

impl Fault {
    /// Every fault, in the order shares are drawn.
    pub const ALL: [Fault; 11] = [
        Fault::ResetBeforeHeaders,
        Fault::ResetMidBody,
        Fault::SlowBody,
        Fault::TruncatedBody,
        Fault::Html502,
        Fault::Html200,
        Fault::WrongContentType,
        Fault::OversizedBody,
        Fault::NeverResponds,
        Fault::Burst401,
        Fault::Burst500,
    ];

    /// The configuration key of its share, also its name in the statistics.
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::ResetBeforeHeaders => "reset_before_headers",
            Fault::ResetMidBody => "reset_mid_body",
            Fault::SlowBody => "slow_body",
            Fault::TruncatedBody => "truncated_body",
            Fault::Html502 => "html_502",
            Fault::Html200 => "html_200",
            Fault::WrongContentType => "wrong_content_type",
            Fault::OversizedBody => "oversized_body",
            Fault::NeverResponds => "never_responds",
            Fault::Burst401 => "burst_401",
            Fault::Burst500 => "burst_500",
        }
    }

    /// Whether the upstream decided (and counted) the request before the fault struck.
    pub fn reaches_upstream(self) -> bool {
        !matches!(
            self,
            Fault::ResetBeforeHeaders
                | Fault::Html502
                | Fault::Html200
                | Fault::Burst401
                | Fault::Burst500
        )
    }
}

/// Default slow-body rate: 64 KiB/s, so a 1K image's answer (~2 MB) takes about half a minute.
pub const DEFAULT_SLOW_BODY_BYTES_PER_SECOND: u64 = 64 * 1024;
/// Default oversized body: 100 MiB, over the clients' 64 MiB default bound.
pub const DEFAULT_OVERSIZED_BODY_BYTES: u64 = 100 * 1024 * 1024;
/// Default burst: three consecutive answers.
pub const DEFAULT_BURST_LENGTH: u32 = 3;

/// A `[upstream.faults]` table: the share of generation requests that meet each fault.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultConfig {
    /// Each fault's share, in 0.0..=1.0; they add up to at most 1.
    pub shares: BTreeMap<Fault, f64>,
    /// The rate of a slow body.
    pub slow_body_bytes_per_second: u64,
    /// The length of an oversized body.
    pub oversized_body_bytes: u64,
    /// How many consecutive answers a burst lasts.
    pub burst_length: u32,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            shares: BTreeMap::new(),
            slow_body_bytes_per_second: DEFAULT_SLOW_BODY_BYTES_PER_SECOND,
            oversized_body_bytes: DEFAULT_OVERSIZED_BODY_BYTES,
            burst_length: DEFAULT_BURST_LENGTH,
        }
    }
}

impl FaultConfig {
    /// The share of `fault` (0 when not set).
    pub fn share(&self, fault: Fault) -> f64 {
        self.shares.get(&fault).copied().unwrap_or(0.0)
    }

    /// The fault a draw `u` in 0..1 lands on, by cumulative shares in [`Fault::ALL`] order.
    fn pick(&self, u: f64) -> Option<Fault> {
        let mut upto = 0.0;
        for fault in Fault::ALL {
            upto += self.share(fault);
            if u < upto {
                return Some(fault);
            }
        }
        None
    }
}

/// The TOML shape of a faults table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFaults {
    #[serde(default)]
    reset_before_headers: f64,
    #[serde(default)]
    reset_mid_body: f64,
    #[serde(default)]
    slow_body: f64,
    slow_body_bytes_per_second: Option<u64>,
    #[serde(default)]
    truncated_body: f64,
    #[serde(default)]
    html_502: f64,
    #[serde(default)]
    html_200: f64,
    #[serde(default)]
    wrong_content_type: f64,
    #[serde(default)]
    oversized_body: f64,
    oversized_body_bytes: Option<u64>,
    #[serde(default)]
    never_responds: f64,
    #[serde(default)]
    burst_401: f64,
    #[serde(default)]
    burst_500: f64,
    burst_length: Option<u32>,
}

impl RawFaults {
    /// Checks the table at `table` (`upstream.faults`, `upstream.pool[2].faults`) of `file`.
    pub(crate) fn check(
        self,
        file: &std::path::Path,
        table: &str,
    ) -> Result<FaultConfig, ConfigError> {
        let err = |key: &str, expected: String| ConfigError {
            file: file.to_owned(),
            key: format!("{table}.{key}"),
            expected,
        };
        let given = [
            (Fault::ResetBeforeHeaders, self.reset_before_headers),
            (Fault::ResetMidBody, self.reset_mid_body),
            (Fault::SlowBody, self.slow_body),
            (Fault::TruncatedBody, self.truncated_body),
            (Fault::Html502, self.html_502),
            (Fault::Html200, self.html_200),
            (Fault::WrongContentType, self.wrong_content_type),
            (Fault::OversizedBody, self.oversized_body),
            (Fault::NeverResponds, self.never_responds),
            (Fault::Burst401, self.burst_401),
            (Fault::Burst500, self.burst_500),
        ];
        let mut shares = BTreeMap::new();
        let mut total = 0.0;
        for (fault, share) in given {
            if !(0.0..=1.0).contains(&share) {
                return Err(err(
                    fault.as_str(),
                    format!("expected a share in 0.0..=1.0 (e.g. 0.01), found {share}"),
                ));
            }
            if share > 0.0 {
                shares.insert(fault, share);
                total += share;
            }
        }
        if total > 1.0 + 1e-9 {
            return Err(err(
                "*",
                format!("expected shares that add up to at most 1.0, found {total}"),
            ));
        }
        let slow = self
            .slow_body_bytes_per_second
            .unwrap_or(DEFAULT_SLOW_BODY_BYTES_PER_SECOND);
        if slow == 0 {
            return Err(err(
                "slow_body_bytes_per_second",
                "expected at least 1 byte per second (a body that never arrives is `never_responds`)"
                    .to_owned(),
            ));
        }
        let burst_length = self.burst_length.unwrap_or(DEFAULT_BURST_LENGTH);
        if burst_length == 0 {
            return Err(err(
                "burst_length",
                "expected at least 1 answer per burst".to_owned(),
            ));
        }
        Ok(FaultConfig {
            shares,
            slow_body_bytes_per_second: slow,
            oversized_body_bytes: self
                .oversized_body_bytes
                .unwrap_or(DEFAULT_OVERSIZED_BODY_BYTES),
            burst_length,
        })
    }
}

/// Which table a request's faults come from: a pool's own (its index in the configuration)
/// or the global one. Bursts run per scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Scope {
    Global,
    Pool(usize),
}

/// The fault machinery's state: the seeded stream, forced faults, running bursts, counts.
#[derive(Debug)]
pub(crate) struct Injector {
    seed: u64,
    rng: Mutex<fastrand::Rng>,
    forced: Mutex<VecDeque<Fault>>,
    bursts: Mutex<HashMap<Scope, (Fault, u32)>>,
    counts: Mutex<BTreeMap<Fault, u64>>,
    /// (project index, pool index in the project) -> index in the configuration's pools.
    pools: HashMap<(usize, usize), usize>,
    /// Wakes answers that never come, so a graceful shutdown does not wait for them.
    shutdown: Notify,
    stopping: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each critical section is one complete update.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Injector {
    /// The state for `config`: pools numbered as [`crate::Emulator`] groups them (by project in
    /// order of first appearance, then in file order within the project).
    pub(crate) fn new(config: &crate::EmulatorConfig) -> Self {
        let mut projects: Vec<(UpstreamKind, &str, usize)> = Vec::new();
        let mut pools = HashMap::new();
        for (i, entry) in config.pools.iter().enumerate() {
            let found = projects
                .iter()
                .position(|(k, p, _)| *k == entry.kind && *p == entry.project);
            let project = match found {
                Some(p) => p,
                None => {
                    projects.push((entry.kind, &entry.project, 0));
                    projects.len() - 1
                }
            };
            if let Some((_, _, next)) = projects.get_mut(project) {
                pools.insert((project, *next), i);
                *next += 1;
            }
        }
        let seed = config.seed ^ 0xFA01_7500_FA01_7500;
        Injector {
            seed,
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            forced: Mutex::new(VecDeque::new()),
            bursts: Mutex::new(HashMap::new()),
            counts: Mutex::new(BTreeMap::new()),
            pools,
            shutdown: Notify::new(),
            stopping: AtomicBool::new(false),
        }
    }

    pub(crate) fn force(&self, fault: Fault) {
        lock(&self.forced).push_back(fault);
    }

    /// How many times each fault struck since the start or the last reset.
    pub(crate) fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.counts)
            .iter()
            .map(|(f, n)| (f.as_str().to_owned(), *n))
            .collect()
    }

    /// As `POST /emulator/reset`: counts, bursts and forced faults cleared, the draws
    /// restarted from the seed.
    pub(crate) fn reset(&self) {
        lock(&self.counts).clear();
        lock(&self.bursts).clear();
        lock(&self.forced).clear();
        *lock(&self.rng) = fastrand::Rng::with_seed(self.seed);
    }

    /// Releases every answer that never comes (their connections are reset).
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.shutdown.notify_waiters();
    }

    /// The fault for the next request in `scope` under `config`, if any; counted.
    fn draw(&self, scope: Scope, config: &FaultConfig) -> Option<Fault> {
        let fault = self.next(scope, config)?;
        *lock(&self.counts).entry(fault).or_default() += 1;
        Some(fault)
    }

    fn next(&self, scope: Scope, config: &FaultConfig) -> Option<Fault> {
        {
            let mut bursts = lock(&self.bursts);
            if let Some((fault, left)) = bursts.get_mut(&scope) {
                let fault = *fault;
                *left -= 1;
                if *left == 0 {
                    bursts.remove(&scope);
                }
                return Some(fault);
            }
        }
        let fault = match lock(&self.forced).pop_front() {
            Some(fault) => fault,
            None => {
                if config.shares.is_empty() {
                    return None;
                }
                let u = lock(&self.rng).f64();
                config.pick(u)?
            }
        };
        if matches!(fault, Fault::Burst401 | Fault::Burst500) && config.burst_length > 1 {
            lock(&self.bursts).insert(scope, (fault, config.burst_length - 1));
        }
        Some(fault)
    }
}

/// The per-connection handle a reset is requested through.
#[derive(Debug, Default)]
pub(crate) struct ConnHandle {
    reset: AtomicBool,
}

impl ConnHandle {
    fn reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
    }
}

/// The connection's handle, as `ConnectInfo`.
#[derive(Clone, Debug)]
pub(crate) struct Conn(Arc<ConnHandle>);

impl axum::extract::connect_info::Connected<IncomingStream<'_, FaultListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        Conn(stream.io().handle.clone())
    }
}

/// A TCP listener whose connections can be reset on request.
#[derive(Debug)]
pub(crate) struct FaultListener(pub(crate) TcpListener);

impl Listener for FaultListener {
    type Io = FaultIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = Listener::accept(&mut self.0).await;
        (
            FaultIo {
                stream,
                handle: Arc::new(ConnHandle::default()),
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Listener::local_addr(&self.0)
    }
}

/// A TCP stream that, once its handle asks for a reset, fails every write and closes with
/// `SO_LINGER` 0: the peer gets an RST.
#[derive(Debug)]
pub(crate) struct FaultIo {
    stream: TcpStream,
    handle: Arc<ConnHandle>,
}

impl FaultIo {
    fn resetting(&self) -> Option<io::Error> {
        if !self.handle.reset.load(Ordering::SeqCst) {
            return None;
        }
        // Linger 0 makes the close an RST at once; it never blocks (the deprecation is
        // about non-zero lingers blocking the thread on drop).
        #[allow(deprecated)]
        let _ = self.stream.set_linger(Some(Duration::ZERO));
        Some(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "fault injected: connection reset",
        ))
    }
}

impl AsyncRead for FaultIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl Drop for FaultIo {
    /// A connection whose reset was asked for is closed with a reset even when nothing was
    /// written after the request (hyper closes at once when a body fails mid-way).
    fn drop(&mut self) {
        let _ = self.resetting();
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.resetting() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.resetting() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.resetting() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.resetting() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A generation request: whose dialect, the model when the path names it, and for Vertex AI
/// the project and location the path names (its pools are found by path, not by key).
struct Generation {
    kind: UpstreamKind,
    model: Option<String>,
    vertex: Option<(String, String)>,
}

/// The generation request `path` is, if it is one: every dialect's image-making paths.
fn generation(method: &Method, path: &str) -> Option<Generation> {
    if method != Method::POST {
        return None;
    }
    let of = |kind, model: Option<&str>| Generation {
        kind,
        model: model.map(str::to_owned),
        vertex: None,
    };
    match path {
        "/api/v1/chat/completions" => return Some(of(UpstreamKind::OpenRouter, None)),
        "/v1/images/generations" | "/v1/images/edits" => {
            return Some(of(UpstreamKind::OpenAi, None));
        }
        _ => {}
    }
    let google_method = |target: &str| {
        let (model, method) = target.rsplit_once(':')?;
        matches!(
            method,
            "generateContent" | "streamGenerateContent" | "predict"
        )
        .then(|| model.strip_prefix("models/").unwrap_or(model).to_owned())
    };
    if let Some(rest) = path.strip_prefix("/v1/projects/") {
        // /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}
        let parts: Vec<&str> = rest.splitn(7, '/').collect();
        let [
            project,
            "locations",
            location,
            "publishers",
            "google",
            "models",
            target,
        ] = parts.as_slice()
        else {
            return None;
        };
        return Some(Generation {
            kind: UpstreamKind::Vertex,
            model: Some(google_method(target)?),
            vertex: Some(((*project).to_owned(), (*location).to_owned())),
        });
    }
    let rest = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))?;
    Some(of(UpstreamKind::Gemini, Some(&google_method(rest)?)))
}

fn key_of(kind: UpstreamKind, request: &Request) -> Option<String> {
    let headers = request.headers();
    match kind {
        UpstreamKind::Gemini => headers
            .get("x-goog-api-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| {
                crate::gemini::query_pairs(request.uri().query())
                    .into_iter()
                    .find(|(k, _)| k == "key")
                    .map(|(_, v)| v)
            }),
        // Vertex AI authenticates with access tokens, not keys: its pools are found by path
        // (`Generation::vertex`).
        UpstreamKind::Vertex => None,
        UpstreamKind::OpenRouter | UpstreamKind::OpenAi => headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::to_owned),
    }
}

fn announced_too_large(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > crate::MAX_BODY_BYTES)
}

/// The `model` of an OpenRouter or OpenAI JSON body, read without keeping anything else.
fn model_in_body(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Model {
        model: String,
    }
    serde_json::from_slice::<Model>(body).ok().map(|m| m.model)
}

impl Shared {
    /// Who is calling: the key's project, or for Vertex AI the project the path names.
    fn fault_caller(&self, generation: &Generation, key: Option<&str>) -> Caller {
        match &generation.vertex {
            Some((project, location)) => crate::vertex::project_of(self, project, location)
                .map_or(Caller::Unknown, Caller::Project),
            None => self.caller(generation.kind, key),
        }
    }

    /// The scope (and so the table) of a request from `caller` for `model`. An OpenAI
    /// request without a model draws on its project's first, as the handler does.
    fn fault_scope(&self, kind: UpstreamKind, caller: Caller, model: Option<&str>) -> Scope {
        let default_model = match (kind, caller, model) {
            (UpstreamKind::OpenAi, Caller::Project(project), None) => {
                crate::openai::first_model(self, project)
            }
            _ => None,
        };
        let place = self.place(caller, model.or(default_model.as_deref()));
        let pool = match place {
            crate::book::Place::Pool { project, pool } => {
                self.faults.pools.get(&(project, pool)).copied()
            }
            crate::book::Place::Unattributed => None,
        };
        match pool {
            Some(i) if self.config.pools.get(i).is_some_and(|p| p.faults.is_some()) => {
                Scope::Pool(i)
            }
            _ => Scope::Global,
        }
    }

    fn fault_config(&self, scope: Scope) -> Option<&FaultConfig> {
        match scope {
            Scope::Global => self.config.faults.as_ref(),
            Scope::Pool(i) => self.config.pools.get(i).and_then(|p| p.faults.as_ref()),
        }
    }

    fn any_pool_faults(&self, kind: UpstreamKind) -> bool {
        self.config
            .pools
            .iter()
            .any(|p| p.kind == kind && p.faults.is_some())
    }
}

/// The middleware: draws a fault for each generation request and applies it.
pub(crate) async fn inject(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(generation) = generation(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let kind = generation.kind;
    let nothing_configured = shared.config.faults.is_none()
        && !shared.config.pools.iter().any(|p| p.faults.is_some())
        && lock(&shared.faults.forced).is_empty();
    if nothing_configured {
        return next.run(request).await;
    }
    let caller = shared.fault_caller(&generation, key_of(kind, &request).as_deref());
    let (request, model) = match generation.model {
        Some(model) => (request, Some(model)),
        // Over the limit by its own account: left whole for the handler's 413.
        None if shared.any_pool_faults(kind) && !announced_too_large(&request) => {
            // OpenRouter and OpenAI name the model in the body: read it (the handler gets
            // the same bytes back, not a copy; a multipart edit names none that JSON finds,
            // and draws from the global table).
            let (parts, body) = request.into_parts();
            match axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await {
                Ok(bytes) => {
                    let model = model_in_body(&bytes);
                    (Request::from_parts(parts, Body::from(bytes)), model)
                }
                Err(_) => {
                    // Too large or unreadable: the handler answers that, from an empty
                    // body that fails the same way it would have.
                    let failing = Body::from_stream(futures::stream::once(async {
                        Err::<Bytes, io::Error>(io::Error::other("the request body was cut off"))
                    }));
                    (Request::from_parts(parts, failing), None)
                }
            }
        }
        None => (request, None),
    };
    let scope = shared.fault_scope(kind, caller, model.as_deref());
    let default = FaultConfig::default();
    let config = shared.fault_config(scope).unwrap_or(&default);
    let Some(fault) = shared.faults.draw(scope, config) else {
        return next.run(request).await;
    };
    tracing::debug!(fault = fault.as_str(), "fault injected");
    let conn = request
        .extensions()
        .get::<ConnectInfo<Conn>>()
        .map(|c| c.0.0.clone());
    match fault {
        Fault::ResetBeforeHeaders => reset_now(conn),
        Fault::Html502 => html(StatusCode::BAD_GATEWAY, HTML_502),
        Fault::Html200 => html(StatusCode::OK, HTML_200),
        Fault::Burst401 => burst(kind, StatusCode::UNAUTHORIZED),
        Fault::Burst500 => burst(kind, StatusCode::INTERNAL_SERVER_ERROR),
        Fault::NeverResponds => {
            // Decided and counted upstream; the answer is dropped and nothing is sent until
            // the client gives up (hyper then drops this future) or the emulator stops.
            drop(next.run(request).await);
            let stopped = shared.faults.shutdown.notified();
            if !shared.faults.stopping.load(Ordering::SeqCst) {
                stopped.await;
            }
            reset_now(conn)
        }
        Fault::ResetMidBody
        | Fault::SlowBody
        | Fault::TruncatedBody
        | Fault::WrongContentType
        | Fault::OversizedBody => {
            let response = next.run(request).await;
            on_the_way_back(fault, response, conn, &shared, config).await
        }
    }
}

/// An answer whose writing resets the connection (or, without one, a body that fails at once).
fn reset_now(conn: Option<Arc<ConnHandle>>) -> Response {
    match conn {
        Some(conn) => {
            conn.reset();
            Response::new(Body::empty())
        }
        None => Response::new(Body::from_stream(futures::stream::once(async {
            Err::<Bytes, io::Error>(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "fault injected: connection reset",
            ))
        }))),
    }
}

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

const HTML_200: &str = "<!DOCTYPE html>\n<html><head><title>Sign in to continue</title></head>\n<body><h1>Network login required</h1><p>Sign in to use this network.</p></body></html>\n";

fn html(status: StatusCode, body: &'static str) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// A 401 or 500 in the provider's JSON shape.
fn burst(kind: UpstreamKind, status: StatusCode) -> Response {
    let body = match (kind, status) {
        (UpstreamKind::Gemini | UpstreamKind::Vertex, StatusCode::UNAUTHORIZED) => {
            serde_json::json!({"error": {
                "code": 401,
                "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                "status": "UNAUTHENTICATED",
            }})
        }
        (UpstreamKind::Gemini | UpstreamKind::Vertex, _) => serde_json::json!({"error": {
            "code": 500,
            "message": "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
            "status": "INTERNAL",
        }}),
        (UpstreamKind::OpenRouter, StatusCode::UNAUTHORIZED) => {
            serde_json::json!({"error": {"message": "No cookie auth credentials found", "code": 401}})
        }
        (UpstreamKind::OpenRouter, _) => {
            serde_json::json!({"error": {"message": "Internal Server Error", "code": 500}})
        }
        (UpstreamKind::OpenAi, StatusCode::UNAUTHORIZED) => serde_json::json!({"error": {
            "message": "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_api_key",
        }}),
        (UpstreamKind::OpenAi, _) => serde_json::json!({"error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": null,
            "code": null,
        }}),
    };
    let pretty = matches!(kind, UpstreamKind::Gemini | UpstreamKind::Vertex);
    let content_type = if pretty {
        crate::http_util::GOOGLE_JSON
    } else {
        crate::http_util::PLAIN_JSON
    };
    crate::http_util::json(status, content_type, &body, pretty)
}

/// A static run of base64 `A`s: the oversized body's filling, never allocated per chunk.
static FILLING: [u8; 64 * 1024] = [b'A'; 64 * 1024];

async fn on_the_way_back(
    fault: Fault,
    response: Response,
    conn: Option<Arc<ConnHandle>>,
    shared: &Arc<Shared>,
    config: &FaultConfig,
) -> Response {
    let (mut parts, body) = response.into_parts();
    if fault == Fault::OversizedBody {
        parts.status = StatusCode::OK;
        parts.headers.remove(header::CONTENT_LENGTH);
        let head = Bytes::from_static(
            br#"{"candidates":[{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":""#,
        );
        let total = config.oversized_body_bytes;
        let chunks = futures::stream::unfold(0u64, move |sent| {
            let head = head.clone();
            async move {
                if sent >= total {
                    return None;
                }
                let chunk = if sent == 0 {
                    head
                } else {
                    let n = usize::try_from((total - sent).min(FILLING.len() as u64))
                        .unwrap_or(FILLING.len());
                    Bytes::from_static(FILLING.get(..n).unwrap_or(&FILLING))
                };
                let sent = sent + chunk.len() as u64;
                Some((Ok::<Bytes, io::Error>(chunk), sent))
            }
        });
        return Response::from_parts(parts, Body::from_stream(chunks));
    }
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => bytes,
        Err(_) => return reset_now(conn),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    match fault {
        Fault::TruncatedBody => {
            let half = bytes.slice(..bytes.len() / 2);
            Response::from_parts(parts, Body::from(half))
        }
        Fault::WrongContentType => {
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Response::from_parts(parts, Body::from(bytes))
        }
        Fault::SlowBody => {
            // A tenth of the rate every 100 ms, on the emulator's clock.
            let step = usize::try_from((config.slow_body_bytes_per_second / 10).max(1))
                .unwrap_or(usize::MAX);
            let clock = shared.clock.clone();
            let chunks = futures::stream::unfold((bytes, true), move |(rest, first)| {
                let clock = clock.clone();
                async move {
                    if rest.is_empty() {
                        return None;
                    }
                    if !first {
                        clock.sleep(Duration::from_millis(100)).await;
                    }
                    let n = step.min(rest.len());
                    let chunk = rest.slice(..n);
                    let rest = rest.slice(n..);
                    Some((Ok::<Bytes, io::Error>(chunk), (rest, false)))
                }
            });
            Response::from_parts(parts, Body::from_stream(chunks))
        }
        _ => {
            // Reset mid-body: announce the whole length, send half, let it reach the peer,
            // then reset.
            if let Ok(length) = HeaderValue::from_str(&bytes.len().to_string()) {
                parts.headers.insert(header::CONTENT_LENGTH, length);
            }
            let half = bytes.slice(..bytes.len() / 2);
            let stages = futures::stream::unfold(0u8, move |stage| {
                let half = half.clone();
                let conn = conn.clone();
                async move {
                    match stage {
                        0 => Some((Ok::<Bytes, io::Error>(half), 1)),
                        1 => {
                            // Real time, not the emulator's clock: this only lets the
                            // half already written leave before the reset.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            if let Some(conn) = &conn {
                                conn.reset();
                            }
                            Some((
                                Err(io::Error::new(
                                    io::ErrorKind::ConnectionReset,
                                    "fault injected: connection reset mid-body",
                                )),
                                2,
                            ))
                        }
                        _ => None,
                    }
                }
            });
            Response::from_parts(parts, Body::from_stream(stages))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Result<FaultConfig, ConfigError> {
        let raw: RawFaults = toml::from_str(text).unwrap();
        raw.check(std::path::Path::new("e.toml"), "upstream.faults")
    }

    #[test]
    fn shares_are_checked_and_drawn_in_order() {
        let c = raw("html_502 = 0.25\nburst_500 = 0.5\nburst_length = 2").unwrap();
        assert_eq!(c.pick(0.0), Some(Fault::Html502));
        assert_eq!(c.pick(0.2499), Some(Fault::Html502));
        assert_eq!(c.pick(0.25), Some(Fault::Burst500));
        assert_eq!(c.pick(0.7499), Some(Fault::Burst500));
        assert_eq!(c.pick(0.75), None);
        assert_eq!(c.burst_length, 2);

        let e = raw("html_502 = 1.5").unwrap_err();
        assert_eq!(e.key, "upstream.faults.html_502");
        let e = raw("html_502 = 0.6\nhtml_200 = 0.6").unwrap_err();
        assert!(e.expected.contains("at most 1.0"), "{e}");
        let e = raw("slow_body_bytes_per_second = 0").unwrap_err();
        assert_eq!(e.key, "upstream.faults.slow_body_bytes_per_second");
        let e = raw("burst_length = 0").unwrap_err();
        assert_eq!(e.key, "upstream.faults.burst_length");
        assert!(toml::from_str::<RawFaults>("reset = 0.1").is_err());
    }

    #[test]
    fn a_burst_answers_its_length_then_draws_again_and_forced_faults_come_first() {
        let config = crate::EmulatorConfig::parse(
            std::path::Path::new("e.toml"),
            "[upstream]\n[[upstream.pool]]\nprovider = \"gemini\"\nproject = \"p\"\nmodels = [\"m\"]\n",
        )
        .unwrap();
        let injector = Injector::new(&config);
        let c = raw("burst_401 = 1.0\nburst_length = 3").unwrap();
        injector.force(Fault::Html200);
        assert_eq!(injector.draw(Scope::Global, &c), Some(Fault::Html200));
        for _ in 0..3 {
            assert_eq!(injector.draw(Scope::Global, &c), Some(Fault::Burst401));
        }
        let none = FaultConfig::default();
        assert_eq!(injector.draw(Scope::Global, &none), None);
        injector.force(Fault::Burst500);
        let three = raw("burst_length = 3").unwrap();
        assert_eq!(injector.draw(Scope::Pool(0), &three), Some(Fault::Burst500));
        // The burst runs in its own scope only.
        assert_eq!(injector.draw(Scope::Global, &none), None);
        assert_eq!(injector.draw(Scope::Pool(0), &three), Some(Fault::Burst500));
        assert_eq!(injector.draw(Scope::Pool(0), &three), Some(Fault::Burst500));
        assert_eq!(injector.draw(Scope::Pool(0), &three), None);
        let counts = injector.counts();
        assert_eq!(counts.get("burst_401"), Some(&3));
        assert_eq!(counts.get("burst_500"), Some(&3));
        assert_eq!(counts.get("html_200"), Some(&1));
    }

    #[test]
    fn the_same_seed_draws_the_same_faults() {
        let c = raw("html_502 = 0.3\nreset_mid_body = 0.3").unwrap();
        let config = crate::EmulatorConfig::parse(
            std::path::Path::new("e.toml"),
            "seed = 5\n[upstream]\n[[upstream.pool]]\nprovider = \"gemini\"\nproject = \"p\"\nmodels = [\"m\"]\n",
        )
        .unwrap();
        let draws = |inj: &Injector| {
            (0..200)
                .map(|_| inj.draw(Scope::Global, &c))
                .collect::<Vec<_>>()
        };
        let a = draws(&Injector::new(&config));
        let b = draws(&Injector::new(&config));
        assert_eq!(a, b);
        let faulted = a.iter().filter(|f| f.is_some()).count();
        assert!((80..160).contains(&faulted), "{faulted} of 200 at 60%");
    }
}

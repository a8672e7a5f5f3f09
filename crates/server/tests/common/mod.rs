//! The gateway in front of a running emulator, for tests: one manual clock for the emulator,
//! the router and the gateway, so every retry hint is exact.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // shared by several test files

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use imagegate_core::quota::{Limits, PACIFIC, PoolConfig, PoolId};
use imagegate_core::{
    Capabilities, Error, ErrorKind, GenerateRequest, GenerateResponse, ImageProvider, ServedBy,
    clock::Clock, clock::ManualClock, secret::ApiKey,
};
use imagegate_emulator::{Emulator, EmulatorConfig};
use imagegate_gemini::GeminiProvider;
use imagegate_mock::{Outcome, ScriptedProvider};
use imagegate_openai::OpenAiProvider;
use imagegate_openrouter::OpenRouterProvider;
use imagegate_router::{Router, Target};
use imagegate_server::{Gateway, ServerConfig};
use tokio::sync::{Notify, Semaphore, oneshot};

/// Noon UTC on a winter day: 04:00 in Los Angeles, 20 hours before the Pacific day ends.
pub(crate) const START: &str = "2026-01-15T12:00:00Z";

pub(crate) const GEMINI_KEY: &str = "gw-gemini-key";
pub(crate) const OPENROUTER_KEY: &str = "gw-openrouter-key";
pub(crate) const OPENAI_KEY: &str = "gw-openai-key";

/// The emulator's pools: unlimited, so that every limit the tests meet is the gateway's own,
/// except OpenAI's `gpt-image-1-mini` (one image a minute), whose limit the gateway learns from
/// the emulator's `x-ratelimit-*` headers.
const UPSTREAM: &str = r#"
seed = 11
[upstream]
latency = "0s"
reject_latency = "0s"
[[upstream.pool]]
provider = "gemini"
project = "gw"
models = ["gemini-2.5-flash-image"]
[[upstream.pool]]
provider = "gemini"
project = "gw"
models = ["gemini-3-pro-image-preview"]
[[upstream.pool]]
provider = "gemini"
project = "gw"
models = ["gemini-3.1-flash-image-preview"]
[[upstream.key]]
provider = "gemini"
project = "gw"
key = "gw-gemini-key"
[[upstream.pool]]
provider = "openrouter"
project = "gw-account"
models = ["google/gemini-2.5-flash-image"]
[[upstream.key]]
provider = "openrouter"
project = "gw-account"
key = "gw-openrouter-key"
[[upstream.pool]]
provider = "openai"
project = "gw-org"
models = ["gpt-image-1"]
[[upstream.pool]]
provider = "openai"
project = "gw-org"
models = ["gpt-image-1-mini"]
ipm = 1
[[upstream.key]]
provider = "openai"
project = "gw-org"
key = "gw-openai-key"
"#;

/// A provider that holds each call until the test lets it go: requests in flight on demand.
#[derive(Debug)]
pub(crate) struct Gate {
    open: Semaphore,
    pub(crate) started: Notify,
    pub(crate) calls: AtomicUsize,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            open: Semaphore::new(0),
            started: Notify::new(),
            calls: AtomicUsize::new(0),
        }
    }
}

impl Gate {
    /// Lets `n` held calls finish.
    pub(crate) fn release(&self, n: usize) {
        self.open.add_permits(n);
    }
}

#[async_trait]
impl ImageProvider for Gate {
    fn name(&self) -> &str {
        "gate"
    }
    fn default_model(&self) -> &str {
        "gate-model"
    }
    fn capabilities(&self, _model: Option<&str>) -> Capabilities {
        let mut c = Capabilities::new(4);
        c.editing = true;
        c
    }
    async fn generate(
        &self,
        request: &GenerateRequest,
    ) -> imagegate_core::Result<GenerateResponse> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        let permit = self.open.acquire().await.unwrap();
        permit.forget();
        let images = (0..request.count)
            .map(|i| imagegate_mock::render::render_image("gate-model", request, i).unwrap())
            .collect();
        Ok(GenerateResponse::new(
            images,
            ServedBy::new("gate", "gate-model", None),
        ))
    }
}

pub(crate) struct Stack {
    pub(crate) url: String,
    pub(crate) emulator: Emulator,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) gate: Arc<Gate>,
    pub(crate) files: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    emu_stop: Option<oneshot::Sender<()>>,
}

impl Stack {
    /// Sends the stop signal (as SIGTERM would).
    pub(crate) fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the gateway to finish after the stop signal.
    pub(crate) async fn stopped(&mut self) -> std::io::Result<()> {
        self.task.take().unwrap().await.unwrap()
    }

    /// Stops the gateway and the emulator.
    pub(crate) async fn stop(mut self) {
        self.signal_stop();
        self.stopped().await.unwrap();
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.signal_stop();
        if let Some(stop) = self.emu_stop.take() {
            let _ = stop.send(());
        }
    }
}

fn pool(provider: &str, model: &str, limits: Limits) -> PoolConfig {
    PoolConfig::new(PoolId::new(provider, "gw", model), limits, PACIFIC.clone())
}

fn scripted(
    name: &str,
    clock: Arc<dyn Clock>,
    kind: ErrorKind,
    message: &str,
) -> Arc<dyn ImageProvider> {
    let mut c = Capabilities::new(4);
    c.editing = true;
    Arc::new(
        ScriptedProvider::new(name, clock)
            .with_capabilities(c)
            .otherwise(Outcome::error(
                Error::new(kind, message).with_provider(name),
            )),
    )
}

/// The routes every test has, each named after its one target:
/// - `flash`: Gemini `gemini-2.5-flash-image` through the emulator, unlimited
/// - `pro`: Gemini `gemini-3-pro-image-preview`, 1 request per minute (the gateway's pool)
/// - `daily`: Gemini `gemini-3.1-flash-image-preview`, 1 request per day
/// - `or`: OpenRouter `google/gemini-2.5-flash-image` through the emulator
/// - `oai`: OpenAI `gpt-image-1` through the emulator's OpenAI Images paths, unlimited
/// - `oai-limited`: OpenAI `gpt-image-1-mini`, one image a minute upstream, unknown to the
///   gateway until the first answer's headers; `oai-fallback`: it, then `flash`
/// - `held`: the [`Gate`]
/// - `billing`, `blocked`, `down`, `slow`, `broken`: upstreams that always fail with
///   billing_required, content_blocked, unavailable, timeout and unexpected config
pub(crate) async fn stack(settings: ServerConfig) -> Stack {
    stack_on(settings, None).await
}

/// As [`stack`], with the router and the gateway on `clock` instead of the emulator's manual
/// one (the Python suite's SDKs really wait, so the gateway must see real time pass). Adds the
/// route `flaky`: a 429 asking for 400 ms, then images.
pub(crate) async fn stack_on(
    settings: ServerConfig,
    clock_override: Option<Arc<dyn Clock>>,
) -> Stack {
    let config = EmulatorConfig::parse(Path::new("gateway-test.toml"), UPSTREAM).unwrap();
    let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let emulator = Emulator::with_clock(config, clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu_url = format!("http://{}", listener.local_addr().unwrap());
    let (emu_stop, emu_stopped) = oneshot::channel::<()>();
    tokio::spawn(emulator.clone().serve(listener, async {
        let _ = emu_stopped.await;
    }));

    let dyn_clock: Arc<dyn Clock> = clock_override.unwrap_or_else(|| clock.clone());
    let gemini = |model: &str| -> Arc<dyn ImageProvider> {
        Arc::new(
            GeminiProvider::new(ApiKey::new(GEMINI_KEY))
                .with_base_url(&emu_url)
                .unwrap()
                .with_project("gw")
                .with_clock(dyn_clock.clone())
                .with_model(model),
        )
    };
    let openrouter: Arc<dyn ImageProvider> = Arc::new(
        OpenRouterProvider::new(ApiKey::new(OPENROUTER_KEY))
            .with_base_url(&format!("{emu_url}/api/v1"))
            .unwrap()
            .with_clock(dyn_clock.clone()),
    );
    let openai = |model: &str| -> Arc<dyn ImageProvider> {
        Arc::new(
            OpenAiProvider::new(ApiKey::new(OPENAI_KEY))
                .with_base_url(&format!("{emu_url}/v1"))
                .unwrap()
                .with_project("gw-org".to_owned())
                .with_clock(dyn_clock.clone())
                .with_model(model),
        )
    };
    let openai_pool = |model: &str| {
        PoolConfig::new(
            PoolId::new("openai", "gw-org", model),
            Limits::NONE,
            jiff::tz::TimeZone::UTC,
        )
    };
    let gate = Arc::new(Gate::default());
    let flash = "gemini-2.5-flash-image";
    let pro = "gemini-3-pro-image-preview";
    let daily = "gemini-3.1-flash-image-preview";
    let none = Limits::NONE;
    let mut builder = Router::builder(dyn_clock.clone())
        .target(Target::new(
            "flash",
            gemini(flash),
            flash,
            pool("gemini", flash, none),
        ))
        .target(Target::new(
            "pro",
            gemini(pro),
            pro,
            pool(
                "gemini",
                pro,
                Limits {
                    rpm: Some(1),
                    ..none
                },
            ),
        ))
        .target(Target::new(
            "daily",
            gemini(daily),
            daily,
            pool(
                "gemini",
                daily,
                Limits {
                    rpd: Some(1),
                    ..none
                },
            ),
        ))
        .target(Target::new(
            "or",
            openrouter,
            "google/gemini-2.5-flash-image",
            pool("openrouter", "google/gemini-2.5-flash-image", none),
        ))
        .target(Target::new(
            "oai",
            openai("gpt-image-1"),
            "gpt-image-1",
            openai_pool("gpt-image-1"),
        ))
        .target(Target::new(
            "oai-limited",
            openai("gpt-image-1-mini"),
            "gpt-image-1-mini",
            openai_pool("gpt-image-1-mini"),
        ))
        .target(Target::new(
            "held",
            gate.clone(),
            "gate-model",
            pool("mock", "gate-model", none),
        ));
    for (name, kind, message) in [
        (
            "billing",
            ErrorKind::BillingRequired,
            "the project has no billing account",
        ),
        (
            "blocked",
            ErrorKind::ContentBlocked,
            "the prompt was blocked by the upstream's safety filter",
        ),
        ("down", ErrorKind::Unavailable, "the model is overloaded"),
        (
            "slow",
            ErrorKind::Timeout,
            "the upstream did not answer within 120 s",
        ),
        (
            "broken",
            ErrorKind::ConfigInvalid,
            "the provider's base URL is not usable",
        ),
    ] {
        let model = format!("{name}-model");
        builder = builder.target(Target::new(
            name,
            scripted(name, dyn_clock.clone(), kind, message),
            model.clone(),
            pool("mock", &model, none),
        ));
    }
    let mut c = Capabilities::new(4);
    c.editing = true;
    let flaky = ScriptedProvider::new("flaky", dyn_clock.clone())
        .with_capabilities(c)
        .then(Outcome::error(
            Error::new(ErrorKind::RateLimited, "per-minute window full")
                .with_provider("flaky")
                .with_http_status(429)
                .with_retry_after(std::time::Duration::from_millis(400)),
        ))
        .otherwise(Outcome::image());
    builder = builder.target(Target::new(
        "flaky",
        Arc::new(flaky),
        "flaky-model",
        pool("mock", "flaky-model", none),
    ));
    for name in [
        "flash",
        "pro",
        "daily",
        "or",
        "oai",
        "oai-limited",
        "held",
        "billing",
        "blocked",
        "down",
        "slow",
        "broken",
        "flaky",
    ] {
        builder = builder.route(name, vec![name.to_owned()]);
    }
    // OpenAI first, Gemini when OpenAI's pool is full.
    builder = builder.route(
        "oai-fallback",
        vec!["oai-limited".to_owned(), "flash".to_owned()],
    );
    let router = builder.build().unwrap();
    let files = tempfile::tempdir().unwrap();
    let gateway =
        Gateway::with_clock(router, settings, files.path().join("files"), dyn_clock).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(gateway.serve(listener, async {
        let _ = stopped.await;
    }));
    Stack {
        url,
        emulator,
        clock,
        gate,
        files,
        stop: Some(stop),
        task: Some(task),
        emu_stop: Some(emu_stop),
    }
}

/// The settings most tests use: the client model names of the three SDK families mapped.
pub(crate) fn settings() -> ServerConfig {
    let mut s = ServerConfig::default();
    for (model, route) in [
        ("gpt-image-1", "flash"),
        ("gemini-2.5-flash-image", "flash"),
        ("google/gemini-2.5-flash-image", "or"),
        ("dall-e-3", "pro"),
    ] {
        s.models.insert(model.to_owned(), route.to_owned());
    }
    s
}

/// Width and height from a PNG's header.
pub(crate) fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

pub(crate) fn b64(data: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap()
}

/// A small valid PNG (a reference image for edits).
pub(crate) fn tiny_png() -> Vec<u8> {
    let request = GenerateRequest::new("reference");
    imagegate_mock::render::render_image(
        "ref",
        &request.with_size(imagegate_core::ImageSize::Half),
        0,
    )
    .unwrap()
    .bytes
    .to_vec()
}

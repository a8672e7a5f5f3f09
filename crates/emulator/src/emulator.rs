//! [`Emulator`]: the projects, their keys, the book, and the HTTP router that serves them.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use imagegate_core::{Error, ErrorKind, Image, clock::Clock, clock::SystemClock};
use imagegate_mock::sim::{
    CallOutcome, Classifier, Decision, SimulatedUpstream, TruePool, UpstreamConfig,
    wire::UpstreamKind, wire::WireAnswer,
};
use tokio::net::TcpListener;

use crate::book::{Book, Entry, Outcome, Place};
use crate::config::EmulatorConfig;
use crate::parse::Parsed;
use crate::{gemini, observe, openai, openrouter, vertex};

/// The largest request body accepted: 20 MiB, the Gemini API's limit for a whole inline
/// request. Larger bodies get 413 in the provider's error shape.
pub const MAX_BODY_BYTES: usize = 20 * 1024 * 1024;

/// One provider x project and its simulated upstream.
#[derive(Debug)]
pub(crate) struct Project {
    pub(crate) kind: UpstreamKind,
    pub(crate) name: String,
    pub(crate) upstream: SimulatedUpstream,
}

/// Who a request's key says it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caller {
    /// No key at all.
    Missing,
    /// A key that belongs to no project.
    Unknown,
    /// A key of this project (an index into the projects).
    Project(usize),
    /// A key accepted, but the provider has no project at all.
    Nowhere,
}

/// How a call to a pool ended.
#[derive(Debug)]
pub(crate) enum Called {
    /// Admitted: the images drawn (none when only text was asked for).
    Served(Vec<Image>),
    /// Refused by the upstream with its wire answer.
    Rejected(WireAnswer),
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: EmulatorConfig,
    pub(crate) projects: Vec<Project>,
    keys: HashMap<(UpstreamKind, String), usize>,
    book: Mutex<Book>,
    responses: AtomicU64,
    /// The Batch API's jobs, files and holds (`crate::batch`).
    pub(crate) batch: crate::batch::BatchApi,
    pub(crate) faults: crate::faults::Injector,
}

/// A local Gemini, OpenRouter, OpenAI Images API and Vertex AI enforcing the configured pools
/// (see the crate docs).
///
/// Cheap to clone: clones share the same state, so a test can keep one to read
/// [`stats`](Self::stats) while another serves.
#[derive(Clone, Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
}

/// The classifier the simulated upstreams are built with. The emulator never classifies (it
/// serves the wire answer itself), so it only has to exist.
fn unused_classifier() -> Classifier {
    Arc::new(|status, _, _, _| {
        Error::new(
            ErrorKind::Unexpected,
            format!("HTTP {status} (the emulator serves wire answers unclassified)"),
        )
    })
}

impl Emulator {
    /// An emulator of `config` on the wall clock.
    pub fn new(config: EmulatorConfig) -> Self {
        Emulator::with_clock(config, Arc::new(SystemClock))
    }

    /// An emulator of `config` on `clock` (tests pass a
    /// [`ManualClock`](imagegate_core::clock::ManualClock) to move windows and days at will).
    pub fn with_clock(config: EmulatorConfig, clock: Arc<dyn Clock>) -> Self {
        // Pools grouped by project, in the order projects first appear in the file.
        let mut grouped: Vec<(UpstreamKind, String, Vec<TruePool>)> = Vec::new();
        for entry in &config.pools {
            match grouped
                .iter_mut()
                .find(|(kind, name, _)| *kind == entry.kind && *name == entry.project)
            {
                Some((_, _, pools)) => pools.push(entry.pool.clone()),
                None => grouped.push((entry.kind, entry.project.clone(), vec![entry.pool.clone()])),
            }
        }
        let projects: Vec<Project> = grouped
            .into_iter()
            .enumerate()
            .map(|(i, (kind, name, pools))| {
                // Each project draws from its own seeded stream, as the simulator's do.
                let upstream = upstream_config(&config, kind, &name, pools, i as u64);
                Project {
                    kind,
                    name,
                    upstream: SimulatedUpstream::new(upstream, clock.clone(), unused_classifier())
                        .without_call_records(),
                }
            })
            .collect();
        let keys = config
            .keys
            .iter()
            .filter_map(|k| {
                let project = projects
                    .iter()
                    .position(|p| p.kind == k.kind && p.name == k.project)?;
                Some(((k.kind, k.key.clone()), project))
            })
            .collect();
        let faults = crate::faults::Injector::new(&config);
        Emulator {
            shared: Arc::new(Shared {
                clock,
                faults,
                config,
                projects,
                keys,
                book: Mutex::new(Book::default()),
                responses: AtomicU64::new(0),
                batch: crate::batch::BatchApi::default(),
            }),
        }
    }

    /// The HTTP routes: every dialect and `/emulator/*`, with the body limit.
    pub fn router(&self) -> Router {
        let mut router = Router::new();
        for version in ["v1beta", "v1"] {
            router = router
                .route(&format!("/{version}/models"), get(gemini::list_models))
                .route(
                    &format!("/{version}/models/{{target}}"),
                    get(gemini::get_model).post(gemini::call),
                );
        }
        router
            .route("/api/v1/chat/completions", post(openrouter::chat))
            .route("/api/v1/key", get(openrouter::key))
            .route("/api/v1/auth/key", get(openrouter::key))
            .route("/emulator/stats", get(observe::stats))
            .route("/emulator/log", get(observe::log))
            .route("/emulator/reset", post(observe::reset))
            .merge(crate::batch::routes())
            .fallback(observe::not_found)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self.shared.clone())
            .merge(openai::routes(self.shared.clone()))
            .merge(vertex::routes(self.shared.clone()))
            // Outermost, so every dialect's generation paths meet the faults.
            .layer(axum::middleware::from_fn_with_state(
                self.shared.clone(),
                crate::faults::inject,
            ))
    }

    /// Serves on `listener` until `shutdown` completes, then lets requests in flight finish
    /// (an injected answer that never comes is reset then).
    ///
    /// # Errors
    /// The listener's I/O error.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let shared = self.shared.clone();
        let shutdown = async move {
            shutdown.await;
            shared.faults.stop();
        };
        // The listener lets the fault injector reset a connection (see `faults`).
        let service = self
            .router()
            .into_make_service_with_connect_info::<crate::faults::Conn>();
        axum::serve(crate::faults::FaultListener(listener), service)
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// Makes the next generation request meet `fault`, before any drawn by the configured
    /// shares (a burst then runs for the configured `burst_length`, 3 by default). Tests use
    /// it to choose exactly which request fails how.
    pub fn force_fault(&self, fault: crate::Fault) {
        self.shared.faults.force(fault);
    }

    /// The statistics `GET /emulator/stats` returns.
    pub fn stats(&self) -> crate::Stats {
        observe::stats_of(&self.shared)
    }

    /// Zeroes every counter and window, as `POST /emulator/reset` does.
    pub fn reset(&self) {
        self.shared.reset();
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.shared
    }
}

fn upstream_config(
    config: &EmulatorConfig,
    kind: UpstreamKind,
    project: &str,
    pools: Vec<TruePool>,
    index: u64,
) -> UpstreamConfig {
    UpstreamConfig {
        kind,
        project: project.to_owned(),
        pools,
        latency: config.latency,
        reject_latency: config.reject_latency,
        overload_rate: config.overload_rate,
        seed: config
            .seed
            .wrapping_add(index.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
    }
}

impl Shared {
    fn book(&self) -> MutexGuard<'_, Book> {
        // The book is a few counters and a queue, each update complete before any panic.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn with_book<T>(&self, f: impl FnOnce(&mut Book) -> T) -> T {
        f(&mut self.book())
    }

    /// Which project `key` belongs to, for a `kind` request.
    pub(crate) fn caller(&self, kind: UpstreamKind, key: Option<&str>) -> Caller {
        let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
            return Caller::Missing;
        };
        let keyed = self.config.keys.iter().any(|k| k.kind == kind);
        if keyed {
            return match self.keys.get(&(kind, key.to_owned())) {
                Some(&project) => Caller::Project(project),
                None => Caller::Unknown,
            };
        }
        match self.projects.iter().position(|p| p.kind == kind) {
            Some(project) => Caller::Project(project),
            None => Caller::Nowhere,
        }
    }

    /// The place a request for `model` of `caller` is counted in.
    pub(crate) fn place(&self, caller: Caller, model: Option<&str>) -> Place {
        match (caller, model) {
            (Caller::Project(project), Some(model)) => self
                .projects
                .get(project)
                .and_then(|p| p.upstream.pool_of(model))
                .map_or(Place::Unattributed, |pool| Place::Pool { project, pool }),
            _ => Place::Unattributed,
        }
    }

    pub(crate) fn project_name(&self, caller: Caller) -> Option<String> {
        match caller {
            Caller::Project(i) => self.projects.get(i).map(|p| p.name.clone()),
            _ => None,
        }
    }

    /// Records a request that never reached a pool's admission.
    pub(crate) fn refuse(
        &self,
        kind: UpstreamKind,
        caller: Caller,
        model: Option<&str>,
        outcome: Outcome,
        status: u16,
    ) {
        let place = self.place(caller, model);
        let entry = Entry {
            kind,
            project: self.project_name(caller),
            model: model.map(str::to_owned),
            outcome,
            status,
            refused_by: Vec::new(),
            place,
        };
        let now = self.clock.now();
        self.with_book(|book| book.record(now, entry));
    }

    /// A number for a response id, unique in this process.
    pub(crate) fn next_response(&self) -> u64 {
        self.responses.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Sends `parsed` for `model` to `project`'s upstream: decided at once (atomically with
    /// every other call to the project), recorded, then answered after the configured latency.
    pub(crate) async fn call(&self, project: usize, model: &str, parsed: &Parsed) -> Called {
        let Some(p) = self.projects.get(project) else {
            return Called::Rejected(imagegate_mock::sim::wire::model_not_found(
                UpstreamKind::Gemini,
                model,
            ));
        };
        let now = self.clock.now();
        let decision = p.upstream.decide(model, &parsed.request);
        let (outcome, status, refused_by) = match &decision {
            Decision::Serve { .. } => (Outcome::Admitted, 200, Vec::new()),
            Decision::Reject {
                outcome,
                refused_by,
                answer,
            } => (
                outcome_of(*outcome),
                answer.status.as_u16(),
                refused_by.clone(),
            ),
        };
        let place = self.place(Caller::Project(project), Some(model));
        let entry = Entry {
            kind: p.kind,
            project: Some(p.name.clone()),
            model: Some(model.to_owned()),
            outcome,
            status,
            refused_by,
            place,
        };
        self.with_book(|book| book.record(now, entry));
        match decision {
            Decision::Reject { answer, .. } => {
                self.clock.sleep(self.config.reject_latency).await;
                Called::Rejected(answer)
            }
            Decision::Serve { latency } => {
                let images = parsed.wants_image.then(|| render(model, parsed));
                self.clock.sleep(latency).await;
                let Some(images) = images else {
                    return Called::Served(Vec::new());
                };
                match images.await {
                    Ok(Ok(images)) => Called::Served(images),
                    // Cannot happen for the sizes the parsers accept; answer as the service
                    // does for its own failures rather than drop the connection.
                    _ => Called::Rejected(internal_error(p.kind)),
                }
            }
        }
    }

    pub(crate) fn reset(&self) {
        for project in &self.projects {
            project.upstream.reset();
        }
        self.with_book(Book::reset);
        self.batch.reset();
        self.faults.reset();
    }
}

/// Draws the images on a blocking thread (a 4K PNG takes a while), while the latency runs.
fn render(
    model: &str,
    parsed: &Parsed,
) -> tokio::task::JoinHandle<imagegate_core::Result<Vec<Image>>> {
    let model = model.to_owned();
    let request = parsed.request.clone();
    tokio::task::spawn_blocking(move || {
        (0..request.count)
            .map(|i| imagegate_mock::render::render_image(&model, &request, i))
            .collect()
    })
}

fn internal_error(kind: UpstreamKind) -> WireAnswer {
    let (status, body) = match kind {
        UpstreamKind::Gemini => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": {"code": 500, "message": "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting", "status": "INTERNAL"}}),
        ),
        UpstreamKind::OpenRouter => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": {"code": 500, "message": "Internal Server Error"}}),
        ),
        UpstreamKind::OpenAi => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": {"message": "The server had an error while processing your request. Sorry about that!", "type": "server_error", "param": null, "code": null}}),
        ),
        UpstreamKind::Vertex => (
            http::StatusCode::INTERNAL_SERVER_ERROR,
            serde_json::json!({"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}),
        ),
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    WireAnswer {
        status,
        headers,
        body: body.to_string().into_bytes(),
    }
}

fn outcome_of(outcome: CallOutcome) -> Outcome {
    match outcome {
        CallOutcome::Served => Outcome::Admitted,
        CallOutcome::RateLimited => Outcome::RateLimited,
        CallOutcome::Unentitled => Outcome::Unentitled,
        CallOutcome::Overloaded => Outcome::Overloaded,
        CallOutcome::NotFound => Outcome::NotFound,
    }
}

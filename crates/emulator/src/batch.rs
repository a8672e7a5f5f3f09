//! Gemini's Batch API: `:batchGenerateContent`, `batches/{id}` (get, `:cancel`, delete), the
//! list, and the knobs tests use to stop a client in a phase (`/emulator/batch/*`).
//!
//! A job's requests are answered as interactive ones would be (the same images, the same error
//! bodies) but not against the interactive pool: the Batch API has its own quota, here the
//! tokens of the requests in unfinished jobs of the pool (`batch_enqueued_tokens`, the
//! "enqueued tokens" of Google's rate-limit page), and a job exceeding it is refused with a 429
//! whose `RetryInfo` says when the earliest unfinished job ends. A job finishes after a
//! turnaround drawn per pool from `batch_turnaround` (seeded); one longer than 48 hours expires
//! at 48 hours without results, as real jobs do.
//!
//! Time is the emulator's clock: nothing sleeps. A job's state is computed from the clock when
//! it is read, and its results are drawn the first time it is read finished, so a test on a
//! manual clock moves jobs along by advancing it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use http::{HeaderMap, Method, StatusCode};
use imagegate_core::Image;
use imagegate_core::clock::add;
use imagegate_mock::sim::{Latency, usage_of, wire};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::emulator::{Emulator, Shared};
use crate::files;
use crate::gemini::{self, query_pairs};
use crate::http_util::{self, GOOGLE_JSON, PLAIN_JSON};
use crate::parse::{self, Invalid, Parsed};

/// A job pending or running this long expires without results.
pub const JOB_LIFETIME: Duration = Duration::from_secs(48 * 3600);

/// One pool's Batch API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchPool {
    /// How long a job takes from creation to its results (uniform over the range, seeded).
    pub turnaround: Latency,
    /// The most tokens enqueued at once in unfinished jobs of the pool; `None`: no limit.
    pub enqueued_tokens: Option<u64>,
}

/// What the Batch API has seen, in `GET /emulator/stats` under `batch`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BatchCounters {
    /// Jobs created.
    pub jobs_created: u64,
    /// Requests in the jobs created.
    pub requests_submitted: u64,
    /// Requests submitted again while an earlier job holding the same (pool, key, prompt) was
    /// pending or running, or had succeeded with an image for it (or succeeded unread): paid
    /// twice. A client that never submits twice keeps this at 0.
    pub duplicate_submissions: u64,
    /// Requests submitted again after every earlier job holding them was cancelled or expired,
    /// or answered them with an error (a legitimate retry of unfinished work).
    pub resubmissions: u64,
    /// The first duplicate keys seen (at most 100), to say which.
    pub duplicate_keys: Vec<String>,
    /// Creates refused because the batch quota was full (429).
    pub creates_refused: u64,
    /// Jobs cancelled.
    pub jobs_cancelled: u64,
    /// Jobs deleted.
    pub jobs_deleted: u64,
    /// Files uploaded (finalized).
    pub files_uploaded: u64,
    /// Files downloaded.
    pub files_downloaded: u64,
}

/// The endpoints a test can hold (see [`Emulator::hold_batch`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchEndpoint {
    /// `POST .../models/{model}:batchGenerateContent`.
    Create,
    /// Every call of `POST /upload/v1beta/files` (start and chunks).
    Upload,
    /// `GET /v1beta/batches/{id}`.
    Get,
    /// `GET /v1beta/batches`.
    List,
    /// `POST /v1beta/batches/{id}:cancel`.
    Cancel,
    /// `DELETE /v1beta/batches/{id}`.
    Delete,
    /// `GET /download/v1beta/files/{id}:download`.
    Download,
}

/// When a held request stops: before it does anything, or after its work is done and before
/// its answer is sent (a create held `after` has made its job; the client never hears of it).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum HoldPhase {
    /// Before anything is done.
    Before,
    /// After the work, before the answer.
    #[default]
    After,
}

/// The holds in force and the requests waiting at each endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HoldView {
    /// Held endpoints and phases.
    pub holds: BTreeSet<(BatchEndpoint, HoldPhase)>,
    /// Requests waiting at each endpoint now.
    pub waiting: BTreeMap<BatchEndpoint, u64>,
}

/// How a job ended, once it has.
#[derive(Clone, Debug)]
enum End {
    Cancelled(Timestamp),
}

#[derive(Clone, Debug)]
struct Job {
    number: u64,
    id: String,
    project: usize,
    pool: usize,
    model: String,
    display_name: String,
    created: Timestamp,
    done_at: Timestamp,
    requests: Vec<(String, Parsed)>,
    tokens: u64,
    file_input: bool,
    end: Option<End>,
    /// The result items (`{"response"|"error", "metadata": {"key"}}`), once drawn.
    results: Option<Vec<Value>>,
    deleted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum JobState {
    Pending,
    Running,
    Succeeded,
    Cancelled,
    Expired,
}

impl JobState {
    fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "BATCH_STATE_PENDING",
            JobState::Running => "BATCH_STATE_RUNNING",
            JobState::Succeeded => "BATCH_STATE_SUCCEEDED",
            JobState::Cancelled => "BATCH_STATE_CANCELLED",
            JobState::Expired => "BATCH_STATE_EXPIRED",
        }
    }

    fn is_terminal(self) -> bool {
        !matches!(self, JobState::Pending | JobState::Running)
    }
}

impl Job {
    fn expires_at(&self) -> Timestamp {
        add(self.created, JOB_LIFETIME)
    }

    fn state(&self, now: Timestamp) -> JobState {
        if let Some(End::Cancelled(at)) = &self.end
            && *at <= now
        {
            return JobState::Cancelled;
        }
        if self.done_at > self.expires_at() {
            if now >= self.expires_at() {
                return JobState::Expired;
            }
        } else if now >= self.done_at {
            return JobState::Succeeded;
        }
        if now < self.running_at() {
            JobState::Pending
        } else {
            JobState::Running
        }
    }

    /// A tenth of the turnaround is spent pending.
    fn running_at(&self) -> Timestamp {
        let turnaround = imagegate_core::clock::span(self.created, self.done_at);
        add(self.created, turnaround / 10)
    }

    fn ended_at(&self, state: JobState) -> Option<Timestamp> {
        match (state, &self.end) {
            (JobState::Cancelled, Some(End::Cancelled(at))) => Some(*at),
            (JobState::Expired, _) => Some(self.expires_at()),
            (JobState::Succeeded, _) => Some(self.done_at),
            _ => None,
        }
    }

    /// Whether this job has delivered, or may still deliver, an image for `key`: pending or
    /// running, or succeeded with a response for it (or not yet read, so nobody can know it
    /// failed). A key its job answered with an error, or a job cancelled or expired, may be
    /// submitted again without paying twice for an image.
    fn may_deliver(&self, key: &str, now: Timestamp) -> bool {
        match self.state(now) {
            JobState::Pending | JobState::Running => true,
            JobState::Succeeded => self.results.as_ref().is_none_or(|items| {
                items.iter().any(|item| {
                    item.pointer("/metadata/key").and_then(Value::as_str) == Some(key)
                        && item.get("response").is_some()
                })
            }),
            JobState::Cancelled | JobState::Expired => false,
        }
    }

    fn name(&self) -> String {
        format!("batches/{}", self.id)
    }

    fn responses_file(&self) -> String {
        format!("{}-responses", self.id)
    }
}

#[derive(Debug, Default)]
struct Book {
    jobs: Vec<Job>,
    next: u64,
    rngs: HashMap<(usize, usize), fastrand::Rng>,
    /// Every (project, pool, key, prompt) submitted, with the numbers of the jobs holding it.
    submitted: HashMap<(usize, usize, String, String), Vec<u64>>,
    counters: BatchCounters,
    pub(crate) files: files::Files,
}

/// The Batch API's state, one per emulator.
#[derive(Debug)]
pub(crate) struct BatchApi {
    book: Mutex<Book>,
    holds: watch::Sender<HoldView>,
}

impl Default for BatchApi {
    fn default() -> Self {
        BatchApi {
            book: Mutex::new(Book::default()),
            holds: watch::Sender::new(HoldView::default()),
        }
    }
}

impl BatchApi {
    fn book(&self) -> MutexGuard<'_, Book> {
        // Every update completes before anything that could panic.
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn with_files<T>(&self, f: impl FnOnce(&mut files::Files) -> T) -> T {
        f(&mut self.book().files)
    }

    pub(crate) fn count(&self, f: impl FnOnce(&mut BatchCounters)) {
        f(&mut self.book().counters);
    }

    pub(crate) fn counters(&self) -> BatchCounters {
        self.book().counters.clone()
    }

    /// Zeroes the counters, forgets what was submitted and restarts the turnaround draws from
    /// the seed (jobs and files stay).
    pub(crate) fn reset(&self) {
        let mut book = self.book();
        book.counters = BatchCounters::default();
        book.submitted.clear();
        book.rngs.clear();
    }

    /// Waits here while `endpoint` is held at `phase`.
    pub(crate) async fn checkpoint(&self, endpoint: BatchEndpoint, phase: HoldPhase) {
        let mut rx = self.holds.subscribe();
        if !rx.borrow_and_update().holds.contains(&(endpoint, phase)) {
            return;
        }
        let _waiting = Waiting::new(&self.holds, endpoint);
        // An error means the sender is gone: the emulator is being dropped, stop waiting.
        let _ = rx
            .wait_for(|view| !view.holds.contains(&(endpoint, phase)))
            .await;
    }

    fn hold(&self, endpoint: BatchEndpoint, phase: HoldPhase) {
        self.holds.send_modify(|view| {
            view.holds.insert((endpoint, phase));
        });
    }

    fn release(&self, endpoint: Option<BatchEndpoint>) {
        self.holds.send_modify(|view| {
            view.holds
                .retain(|(held, _)| endpoint.is_some_and(|e| e != *held));
        });
    }

    fn view(&self) -> HoldView {
        self.holds.borrow().clone()
    }

    async fn until_waiting(&self, endpoint: BatchEndpoint) {
        let mut rx = self.holds.subscribe();
        let _ = rx
            .wait_for(|view| view.waiting.get(&endpoint).copied().unwrap_or(0) > 0)
            .await;
    }
}

/// Counts a request waiting at a hold for as long as it waits (also when its client goes
/// away and the request is dropped).
struct Waiting<'a> {
    holds: &'a watch::Sender<HoldView>,
    endpoint: BatchEndpoint,
}

impl<'a> Waiting<'a> {
    fn new(holds: &'a watch::Sender<HoldView>, endpoint: BatchEndpoint) -> Self {
        holds.send_modify(|view| *view.waiting.entry(endpoint).or_default() += 1);
        Waiting { holds, endpoint }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.holds.send_modify(|view| {
            if let Some(n) = view.waiting.get_mut(&self.endpoint) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    view.waiting.remove(&self.endpoint);
                }
            }
        });
    }
}

impl Emulator {
    /// Makes requests to `endpoint` wait at `phase` until [`release_batch`](Self::release_batch):
    /// how a test stops a client in a phase of its batch work (and kills it there).
    pub fn hold_batch(&self, endpoint: BatchEndpoint, phase: HoldPhase) {
        self.shared().batch.hold(endpoint, phase);
    }

    /// Releases `endpoint` (both phases), or every hold with `None`.
    pub fn release_batch(&self, endpoint: Option<BatchEndpoint>) {
        self.shared().batch.release(endpoint);
    }

    /// Returns once at least one request waits at `endpoint`'s hold.
    pub async fn batch_waiting(&self, endpoint: BatchEndpoint) {
        self.shared().batch.until_waiting(endpoint).await;
    }

    /// The holds in force and who waits at them.
    pub fn batch_holds(&self) -> HoldView {
        self.shared().batch.view()
    }
}

/// The Batch API's routes (`batchGenerateContent` itself is a method of the model routes).
pub(crate) fn routes() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    // Under both versions, as the model routes: the SDKs pick either.
    for v in ["v1beta", "v1"] {
        router = router
            .route(&format!("/{v}/batches"), get(list))
            .route(
                &format!("/{v}/batches/{{target}}"),
                get(job_call).post(job_call).delete(job_call),
            )
            .route(&format!("/upload/{v}/files"), post(files::upload))
            .route(
                &format!("/download/{v}/files/{{target}}"),
                get(files::download),
            )
            .route(&format!("/{v}/files/{{target}}"), get(files::metadata));
    }
    router
        .route("/emulator/batch/hold", get(holds).post(hold))
        .route("/emulator/batch/release", post(release))
}

fn bad_request(message: &str) -> Response {
    gemini::error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn job_not_found(id: &str) -> Response {
    gemini::error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!("Requested entity was not found: batches/{id}."),
    )
}

fn ok(value: &Value) -> Response {
    http_util::json(StatusCode::OK, GOOGLE_JSON, value, true)
}

/// One request of a job as it arrived: its key and the `GenerateContentRequest` JSON.
fn parse_items(items: &[(String, Value)]) -> Result<Vec<(String, Parsed)>, String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, (key, request)) in items.iter().enumerate() {
        // A request without a key is answered in its place, without one (as the SDKs send
        // inline requests); keys that are given must be unique.
        if !key.is_empty() && !seen.insert(key.as_str()) {
            return Err(format!(
                "requests[{i}]: the key `{key}` appears twice in this batch"
            ));
        }
        let body = serde_json::to_vec(request).unwrap_or_default();
        let parsed = parse::gemini_generate(&body)
            .map_err(|Invalid(why)| format!("requests[{i}] (key `{key}`): {why}"))?;
        out.push((key.clone(), parsed));
    }
    Ok(out)
}

fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    v.get(camel).or_else(|| v.get(snake))
}

/// `POST /v1beta/models/{model}:batchGenerateContent` (the model route hands it over).
pub(crate) async fn create(shared: &Shared, project: usize, model: &str, body: &[u8]) -> Response {
    shared
        .batch
        .checkpoint(BatchEndpoint::Create, HoldPhase::Before)
        .await;
    let response = create_job(shared, project, model, body);
    shared
        .batch
        .checkpoint(BatchEndpoint::Create, HoldPhase::After)
        .await;
    response
}

fn create_job(shared: &Shared, project: usize, model: &str, body: &[u8]) -> Response {
    let Some(pool) = shared
        .projects
        .get(project)
        .and_then(|p| p.upstream.pool_of(model))
    else {
        return http_util::google_wire(wire::gemini_model_not_found(model));
    };
    let Some(config) = batch_config(shared, project, pool) else {
        return bad_request(&format!(
            "models/{model} does not take batch jobs here: this emulator's pool for it has no \
             `batch_turnaround` (see docs/emulate.md, \"Batch API\")."
        ));
    };
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("Invalid JSON payload received. {e}")),
    };
    let batch = value.get("batch").unwrap_or(&value);
    let display_name = field(batch, "displayName", "display_name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let Some(input) = field(batch, "inputConfig", "input_config") else {
        return bad_request("batch.input_config is required: requests inline, or a file_name");
    };
    let now = shared.clock.now();
    let (items, file_input) = if let Some(file) =
        field(input, "fileName", "file_name").and_then(Value::as_str)
    {
        let id = file.strip_prefix("files/").unwrap_or(file);
        let lines = shared
            .batch
            .with_files(|f| f.get(project, id).map(|f| f.data.clone()));
        let Some(data) = lines else {
            return gemini::error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("File {file} was not found (upload it first through the Files API)."),
            );
        };
        match jsonl_items(&data) {
            Ok(items) => (items, true),
            Err(why) => return bad_request(&why),
        }
    } else {
        let list = field(input, "requests", "requests")
            .and_then(|r| field(r, "requests", "requests"))
            .and_then(Value::as_array);
        let Some(list) = list else {
            return bad_request(
                "batch.input_config needs requests.requests[] (inline) or file_name (a files/... upload)",
            );
        };
        let items = list
            .iter()
            .map(|item| {
                let key = item
                    .pointer("/metadata/key")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                (key, item.get("request").cloned().unwrap_or(Value::Null))
            })
            .collect();
        (items, false)
    };
    if items.is_empty() {
        return bad_request("a batch needs at least one request");
    }
    let requests = match parse_items(&items) {
        Ok(r) => r,
        Err(why) => return bad_request(&why),
    };
    let tokens: u64 = requests
        .iter()
        .map(|(_, p)| usage_of(&p.request).tokens)
        .fold(0, u64::saturating_add);

    if let Some(limit) = config.enqueued_tokens
        && tokens > limit
    {
        // It could never fit, whatever finishes: not a wait-and-retry 429.
        return bad_request(&format!(
            "This batch needs {tokens} enqueued tokens, more than the quota of {limit} for \
             models/{model}: split it into smaller batches."
        ));
    }
    let mut book = shared.batch.book();
    if let Some(limit) = config.enqueued_tokens {
        let enqueued: u64 = book
            .jobs
            .iter()
            .filter(|j| {
                j.project == project && j.pool == pool && !j.deleted && !j.state(now).is_terminal()
            })
            .map(|j| j.tokens)
            .sum();
        let room = limit.saturating_sub(enqueued);
        if tokens > room {
            let frees_at = book
                .jobs
                .iter()
                .filter(|j| {
                    j.project == project
                        && j.pool == pool
                        && !j.deleted
                        && !j.state(now).is_terminal()
                })
                .map(|j| j.done_at.min(j.expires_at()))
                .min();
            book.counters.creates_refused += 1;
            drop(book);
            return quota_full(model, limit, tokens, room, frees_at, now);
        }
    }
    let seed = shared.config.seed;
    let (turnaround, tag) = {
        let rng = book.rngs.entry((project, pool)).or_insert_with(|| {
            fastrand::Rng::with_seed(
                seed ^ (project as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    ^ ((pool as u64) << 32),
            )
        });
        (draw(config.turnaround, rng), rng.u32(..))
    };
    book.next += 1;
    let number = book.next;
    let id = format!("emu{number:06}{tag:08x}");
    // Duplicates: the same (pool, key, prompt) already in a job that can still deliver.
    let mut duplicates = Vec::new();
    let mut resubmitted = 0;
    for (key, parsed) in &requests {
        let slot = (project, pool, key.clone(), parsed.request.prompt.clone());
        let earlier = book.submitted.get(&slot).cloned().unwrap_or_default();
        if !earlier.is_empty() {
            let live = earlier.iter().any(|n| {
                book.jobs
                    .iter()
                    .find(|j| j.number == *n)
                    .is_some_and(|j| j.may_deliver(key, now))
            });
            if live {
                duplicates.push(key.clone());
            } else {
                resubmitted += 1;
            }
        }
        book.submitted.entry(slot).or_default().push(number);
    }
    let counters = &mut book.counters;
    counters.jobs_created += 1;
    counters.requests_submitted += requests.len() as u64;
    counters.duplicate_submissions += duplicates.len() as u64;
    counters.resubmissions += resubmitted;
    for key in duplicates {
        if counters.duplicate_keys.len() < 100 {
            counters.duplicate_keys.push(key);
        }
    }
    let job = Job {
        number,
        id,
        project,
        pool,
        model: model.to_owned(),
        display_name,
        created: now,
        done_at: add(now, turnaround),
        requests,
        tokens,
        file_input,
        end: None,
        results: None,
        deleted: false,
    };
    // Create answers the new job as it is now: pending, whatever its turnaround.
    let answer = operation(&job, JobState::Pending, now);
    book.jobs.push(job);
    ok(&answer)
}

fn batch_config(shared: &Shared, project: usize, pool: usize) -> Option<BatchPool> {
    let p = shared.projects.get(project)?;
    shared
        .config
        .pools
        .iter()
        .filter(|e| e.kind == p.kind && e.project == p.name)
        .nth(pool)
        .and_then(|e| e.batch)
}

fn draw(latency: Latency, rng: &mut fastrand::Rng) -> Duration {
    let lo = u64::try_from(latency.min.as_millis()).unwrap_or(u64::MAX);
    let hi = u64::try_from(latency.max.as_millis())
        .unwrap_or(u64::MAX)
        .max(lo);
    Duration::from_millis(rng.u64(lo..=hi))
}

/// The batch quota's 429: `RESOURCE_EXHAUSTED` with a QuotaFailure naming the enqueued-token
/// quota (no per-minute or per-day word, so no interactive dimension is blamed) and a
/// `RetryInfo` until the earliest unfinished job ends.
fn quota_full(
    model: &str,
    limit: u64,
    needed: u64,
    room: u64,
    frees_at: Option<Timestamp>,
    now: Timestamp,
) -> Response {
    let mut details = vec![json!({
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/batch_enqueued_tokens",
            "quotaId": "BatchEnqueuedTokensPerProjectPerModel",
            "quotaDimensions": {"location": "global", "model": model},
            "quotaValue": limit.to_string(),
        }],
    })];
    if let Some(at) = frees_at {
        let secs = imagegate_core::clock::span(now, at).as_secs().max(1);
        details.push(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{secs}s"),
        }));
    }
    let body = json!({"error": {
        "code": 429,
        "message": format!(
            "Batch enqueued tokens quota exceeded for model {model}: this batch needs {needed} tokens, {room} of {limit} are free."
        ),
        "status": "RESOURCE_EXHAUSTED",
        "details": details,
    }});
    http_util::json(StatusCode::TOO_MANY_REQUESTS, GOOGLE_JSON, &body, true)
}

/// The requests of an uploaded JSONL file (`{"key", "request"}` per line).
fn jsonl_items(data: &[u8]) -> Result<Vec<(String, Value)>, String> {
    let mut items = Vec::new();
    for (n, line) in data.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = serde_json::from_slice(line)
            .map_err(|e| format!("input file line {}: not JSON ({e})", n + 1))?;
        let key = value
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let request = value.get("request").cloned().unwrap_or(Value::Null);
        items.push((key, request));
    }
    Ok(items)
}

/// A job as a long-running Operation, in the shape of the recorded ones
/// (fixtures/gemini/batch/get-*.json).
fn operation(job: &Job, state: JobState, now: Timestamp) -> Value {
    let n = job.requests.len().to_string();
    let mut stats = serde_json::Map::new();
    stats.insert("requestCount".into(), json!(n));
    match (&job.results, state) {
        (Some(results), JobState::Succeeded) => {
            let failed = results.iter().filter(|r| r.get("error").is_some()).count();
            let succeeded = results.len() - failed;
            if succeeded > 0 {
                stats.insert(
                    "successfulRequestCount".into(),
                    json!(succeeded.to_string()),
                );
            }
            if failed > 0 {
                stats.insert("failedRequestCount".into(), json!(failed.to_string()));
            }
        }
        _ => {
            stats.insert("pendingRequestCount".into(), json!(n));
        }
    }
    let updated = job
        .ended_at(state)
        .unwrap_or_else(|| {
            if state == JobState::Running {
                job.running_at()
            } else {
                job.created
            }
        })
        .min(now.max(job.created));
    let mut metadata = json!({
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "model": format!("models/{}", job.model),
        "displayName": job.display_name,
        "createTime": job.created.to_string(),
        "updateTime": updated.to_string(),
        "batchStats": stats,
        "state": state.as_str(),
        "name": job.name(),
    });
    let mut op = json!({"name": job.name(), "metadata": Value::Null});
    if let Some(end) = job.ended_at(state) {
        metadata["endTime"] = json!(end.to_string());
    }
    if state.is_terminal() {
        op["done"] = json!(true);
        let mut response = json!({
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput",
        });
        if let (JobState::Succeeded, Some(results)) = (state, &job.results) {
            let output = if job.file_input {
                json!({"responsesFile": format!("files/{}", job.responses_file())})
            } else {
                json!({"inlinedResponses": {"inlinedResponses": results}})
            };
            metadata["output"] = output.clone();
            if let (Some(r), Some(o)) = (response.as_object_mut(), output.as_object()) {
                r.extend(o.clone());
            }
            op["response"] = response;
        }
    }
    op["metadata"] = metadata;
    op
}

/// Draws the results of every job of `project` that has finished since it was last read: each
/// request answered as an interactive one would be (images, or the error the pool would give),
/// rendered off the async threads.
async fn settle(shared: &Shared, project: usize, now: Timestamp) {
    let due: Vec<Job> = shared
        .batch
        .book()
        .jobs
        .iter()
        .filter(|j| j.project == project && j.results.is_none())
        .filter(|j| j.state(now) == JobState::Succeeded)
        .cloned()
        .collect();
    for job in due {
        let limits = shared.projects.get(project).and_then(|p| {
            p.upstream
                .config()
                .pools
                .get(job.pool)
                .map(|pool| pool.limits)
        });
        let overload_rate = shared.config.overload_rate;
        let seed = shared
            .config
            .seed
            .wrapping_add(job.number.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let job_for_render = job.clone();
        let rendered = tokio::task::spawn_blocking(move || {
            answer_all(&job_for_render, limits, overload_rate, seed)
        })
        .await
        .unwrap_or_default();
        let results: Vec<Value> = rendered;
        let mut book = shared.batch.book();
        let Book { jobs, files, .. } = &mut *book;
        if let Some(stored) = jobs.iter_mut().find(|j| j.number == job.number)
            && stored.results.is_none()
        {
            if stored.file_input {
                let mut jsonl = Vec::new();
                for item in &results {
                    let mut line = item.clone();
                    if let Some(map) = line.as_object_mut()
                        && let Some(key) =
                            map.remove("metadata").and_then(|m| m.get("key").cloned())
                    {
                        map.insert("key".into(), key);
                    }
                    jsonl.extend_from_slice(line.to_string().as_bytes());
                    jsonl.push(b'\n');
                }
                files.insert(
                    stored.responses_file(),
                    files::File {
                        project,
                        display_name: format!("{} responses", stored.display_name),
                        mime_type: "application/jsonl".to_owned(),
                        data: Bytes::from(jsonl),
                        created: stored.done_at,
                    },
                );
            }
            stored.results = Some(results);
        }
    }
}

/// Every request of `job` answered: an image response, or the pool's error for it.
fn answer_all(
    job: &Job,
    limits: Option<imagegate_core::quota::Limits>,
    overload_rate: f64,
    seed: u64,
) -> Vec<Value> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let unentitled = limits.is_some_and(|l| l.rpm == Some(0) || l.rpd == Some(0));
    job.requests
        .iter()
        .enumerate()
        .map(|(i, (key, parsed))| {
            let metadata = if key.is_empty() {
                json!({})
            } else {
                json!({"key": key})
            };
            let overloaded = overload_rate > 0.0 && rng.f64() < overload_rate;
            let error = if unentitled {
                Some(wire::gemini_limit_zero(&job.model))
            } else if overloaded {
                Some(wire::gemini_overloaded())
            } else {
                None
            };
            if let Some(answer) = error {
                let status = serde_json::from_slice::<Value>(&answer.body)
                    .ok()
                    .and_then(|v| v.get("error").cloned())
                    .unwrap_or(Value::Null);
                return json!({"error": status, "metadata": metadata});
            }
            let images: Result<Vec<Image>, _> = if parsed.wants_image {
                (0..parsed.request.count)
                    .map(|n| imagegate_mock::render::render_image(&job.model, &parsed.request, n))
                    .collect()
            } else {
                Ok(Vec::new())
            };
            match images {
                Ok(images) => {
                    let id = format!("emulator-batch-{}-{i}", job.id);
                    json!({
                        "response": gemini::content_response(&job.model, parsed, &images, &id),
                        "metadata": metadata,
                    })
                }
                Err(e) => json!({"error": {"code": 500, "message": format!("An internal error has occurred: {e}"), "status": "INTERNAL"}, "metadata": metadata}),
            }
        })
        .collect()
}

/// `GET|POST|DELETE /v1beta/batches/{id}[:cancel]`.
async fn job_call(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let query = query_pairs(query.as_deref());
    let project = match gemini::authenticate(&shared, &headers, &query, None) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    let (id, verb) = match target.split_once(':') {
        Some((id, verb)) => (id.to_owned(), Some(verb.to_owned())),
        None => (target.clone(), None),
    };
    let endpoint = match (&method, verb.as_deref()) {
        (&Method::GET, None) => BatchEndpoint::Get,
        (&Method::POST, Some("cancel")) => BatchEndpoint::Cancel,
        (&Method::DELETE, None) => BatchEndpoint::Delete,
        _ => {
            return gemini::error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("Method not found: {method} batches/{target}."),
            );
        }
    };
    shared.batch.checkpoint(endpoint, HoldPhase::Before).await;
    let now = shared.clock.now();
    settle(&shared, project, now).await;
    let response = job_answer(&shared, project, &id, endpoint, now);
    shared.batch.checkpoint(endpoint, HoldPhase::After).await;
    response
}

/// What get, cancel or delete answer for job `id` of `project` at `now`.
fn job_answer(
    shared: &Shared,
    project: usize,
    id: &str,
    endpoint: BatchEndpoint,
    now: Timestamp,
) -> Response {
    let mut book = shared.batch.book();
    let Book {
        jobs,
        counters,
        files,
        ..
    } = &mut *book;
    let Some(job) = jobs
        .iter_mut()
        .find(|j| j.id == id && j.project == project && !j.deleted)
    else {
        return job_not_found(id);
    };
    match endpoint {
        BatchEndpoint::Cancel => {
            if !job.state(now).is_terminal() {
                job.end = Some(End::Cancelled(now));
                counters.jobs_cancelled += 1;
            }
            ok(&json!({}))
        }
        BatchEndpoint::Delete => {
            job.deleted = true;
            counters.jobs_deleted += 1;
            files.remove(&job.responses_file());
            ok(&json!({}))
        }
        _ => ok(&operation(job, job.state(now), now)),
    }
}

/// `GET /v1beta/batches?pageSize=N&pageToken=T`: the key's project's jobs, newest first.
async fn list(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query_pairs(query.as_deref());
    let project = match gemini::authenticate(&shared, &headers, &query, None) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let size = match param("pageSize").map(|s| s.parse::<usize>()) {
        None => 50,
        Some(Ok(n)) => n.clamp(1, 1000),
        Some(Err(_)) => return bad_request("pageSize must be a whole number"),
    };
    let start = match param("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match token
            .strip_prefix('o')
            .and_then(|n| n.parse::<usize>().ok())
        {
            Some(n) => n,
            None => return bad_request(&format!("Invalid page token `{token}`.")),
        },
    };
    shared
        .batch
        .checkpoint(BatchEndpoint::List, HoldPhase::Before)
        .await;
    let now = shared.clock.now();
    settle(&shared, project, now).await;
    let page = {
        let book = shared.batch.book();
        let mine: Vec<&Job> = book
            .jobs
            .iter()
            .rev()
            .filter(|j| j.project == project && !j.deleted)
            .collect();
        let operations: Vec<Value> = mine
            .iter()
            .skip(start)
            .take(size)
            .map(|j| operation(j, j.state(now), now))
            .collect();
        let mut page = json!({"operations": operations});
        if start + size < mine.len() {
            page["nextPageToken"] = json!(format!("o{}", start + size));
        }
        page
    };
    shared
        .batch
        .checkpoint(BatchEndpoint::List, HoldPhase::After)
        .await;
    ok(&page)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldRequest {
    endpoint: Option<BatchEndpoint>,
    #[serde(default)]
    phase: HoldPhase,
}

fn plain(status: StatusCode, value: &Value) -> Response {
    http_util::json(status, PLAIN_JSON, value, true)
}

fn hold_request(body: Result<Bytes, BytesRejection>) -> Result<HoldRequest, Box<Response>> {
    let body = body.map_err(|e| {
        Box::new(plain(
            StatusCode::BAD_REQUEST,
            &json!({"error": e.body_text()}),
        ))
    })?;
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &body[..]
    };
    serde_json::from_slice(text).map_err(|e| {
        Box::new(plain(
            StatusCode::BAD_REQUEST,
            &json!({"error": format!(
                "expected {{\"endpoint\": \"create|upload|get|list|cancel|delete|download\", \"phase\": \"before|after\"}}: {e}"
            )}),
        ))
    })
}

fn view_json(view: &HoldView) -> Value {
    json!({
        "holds": view.holds.iter().map(|(e, p)| json!({"endpoint": e, "phase": p})).collect::<Vec<_>>(),
        "waiting": view.waiting,
    })
}

/// `POST /emulator/batch/hold {"endpoint", "phase"}`.
async fn hold(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    let request = match hold_request(body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    let Some(endpoint) = request.endpoint else {
        return plain(
            StatusCode::BAD_REQUEST,
            &json!({"error": "expected an `endpoint` to hold"}),
        );
    };
    shared.batch.hold(endpoint, request.phase);
    plain(StatusCode::OK, &view_json(&shared.batch.view()))
}

/// `POST /emulator/batch/release {"endpoint"}` (or `{}`: every hold).
async fn release(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = match hold_request(body) {
        Ok(r) => r,
        Err(response) => return *response,
    };
    shared.batch.release(request.endpoint);
    plain(StatusCode::OK, &view_json(&shared.batch.view()))
}

/// `GET /emulator/batch/hold[?until_waiting=ENDPOINT]`: the holds and who waits; with
/// `until_waiting`, answers only once a request waits at that endpoint.
async fn holds(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let until = query_pairs(query.as_deref())
        .into_iter()
        .find(|(k, _)| k == "until_waiting")
        .map(|(_, v)| v);
    if let Some(name) = until {
        match serde_json::from_value::<BatchEndpoint>(Value::String(name.clone())) {
            Ok(endpoint) => shared.batch.until_waiting(endpoint).await,
            Err(_) => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": format!("`until_waiting` names no endpoint: {name:?}")}),
                );
            }
        }
    }
    plain(StatusCode::OK, &view_json(&shared.batch.view()))
}

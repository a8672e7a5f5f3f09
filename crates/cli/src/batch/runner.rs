//! Runs the jobs: `concurrency` at a time, each image its own call, every step journaled.
//!
//! One image per call, always: each call's outcome is one journal record about one file, so
//! a resume never has to guess which of several images a half-finished call had made.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagegate_core::{
    Error, ErrorKind, GenerateRequest, ImageProvider, Priority, ReferenceImage, human_duration,
};
use imagegate_router::{Event, MaxWait, RequestOptions, Router};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::input::Job;
use super::journal::{ImageState, JobHistory, Journal, Record};
use super::progress::Progress;
use super::summary::{FailedJob, Summary};
use crate::failure::Failure;
use crate::output::write_atomic;
use crate::routes::throttle_reason;

/// Extensions an image of ours can have on disk (see `Image::extension`).
const IMAGE_EXTENSIONS: [&str; 5] = ["png", "jpg", "jpeg", "webp", "gif"];

/// Who serves the calls: the router, on one route (a configured route, or a provider as a
/// one-target route). Its budget is `--max-cost`.
#[derive(Debug)]
pub(crate) struct Backend {
    pub router: Router,
    pub route: String,
}

/// How to run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub out_dir: PathBuf,
    pub concurrency: usize,
    pub max_cost_usd: Option<f64>,
    pub priority: Priority,
    pub grace: Duration,
    /// `--model`, for jobs that do not name one.
    pub model: Option<String>,
    /// How long one image's call may wait for capacity (`--max-wait`).
    pub max_wait: MaxWait,
}

/// Everything a job task needs.
#[derive(Debug)]
struct Shared {
    backend: Backend,
    journal: Journal,
    progress: Progress,
    settings: Settings,
    budget_reached: AtomicBool,
    stop: watch::Receiver<u32>,
    summary: Mutex<Summary>,
}

/// How a job ended.
#[derive(Debug)]
enum Outcome {
    Done,
    Failed(FailedJob),
    /// Ctrl-C came between two of its images.
    Stopped,
}

/// Runs `jobs` (with what the journal says of each) and fills `summary`.
///
/// # Errors
/// [`Failure::Io`] when the journal cannot be written: going on unrecorded would break the
/// resume guarantees.
pub(crate) async fn run(
    backend: Backend,
    journal: Journal,
    settings: Settings,
    jobs: Vec<(Job, JobHistory)>,
    mut summary: Summary,
) -> Result<Summary, Failure> {
    for (job, history) in &jobs {
        if history.prompt.is_none() {
            journal
                .append(Record::Planned {
                    job: job.key.clone(),
                    prompt: job.prompt.clone(),
                    images: job.n,
                })
                .map_err(Failure::io)?;
        } else if history.prompt.as_deref() != Some(job.prompt.as_str()) {
            eprintln!(
                "imagegate: note: job {} (line {}) has a different prompt than in the journal; \
                 its images already on disk are kept",
                job.key, job.line
            );
        }
    }
    let to_make: u64 = jobs
        .iter()
        .map(|(job, history)| u64::from(job.n) - written_count(history))
        .sum();
    let progress = Progress::new(to_make);

    let (stop_tx, stop_rx) = watch::channel(0u32);
    let signals = tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            stop_tx.send_modify(|n| *n += 1);
        }
    });

    summary.resent_after_interruption = 0;
    let shared = Arc::new(Shared {
        backend,
        journal,
        progress,
        settings,
        budget_reached: AtomicBool::new(false),
        stop: stop_rx.clone(),
        summary: Mutex::new(summary),
    });
    let events = tokio::spawn(watch_router(
        shared.backend.router.subscribe(),
        Arc::clone(&shared),
    ));

    let semaphore = Arc::new(Semaphore::new(shared.settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, Job> = HashMap::new();
    let mut outcomes: Vec<(Job, Outcome)> = Vec::new();
    let mut stop_wait = stop_rx.clone();
    for (job, history) in jobs {
        if *stop_rx.borrow() > 0 {
            outcomes.push((job, Outcome::Stopped));
            continue;
        }
        if budget_reached(&shared) {
            let failed = not_run(&shared, &job);
            outcomes.push((job, Outcome::Failed(failed)));
            continue;
        }
        let permit = tokio::select! {
            permit = Arc::clone(&semaphore).acquire_owned() => permit,
            _ = stop_wait.wait_for(|n| *n > 0) => {
                outcomes.push((job, Outcome::Stopped));
                continue;
            }
        };
        let Ok(permit) = permit else { break };
        let task_shared = Arc::clone(&shared);
        let task_job = job.clone();
        let handle = tasks.spawn(async move {
            let outcome = run_job(&task_shared, &task_job, history).await;
            drop(permit);
            outcome
        });
        running.insert(handle.id(), job);
    }

    if *stop_rx.borrow() > 0 && !tasks.is_empty() {
        shared.progress.line(&format!(
            "stopping: no new jobs; waiting up to {} for the {} in flight (Ctrl-C again to \
             stop now; the journal keeps everything)",
            human_duration(shared.settings.grace),
            tasks.len()
        ));
    }
    let grace = shared.settings.grace;
    let mut hurry = stop_rx.clone();
    let deadline = async move {
        let _ = hurry.wait_for(|n| *n > 0).await;
        tokio::select! {
            () = tokio::time::sleep(grace) => {}
            _ = hurry.wait_for(|n| *n > 1) => {}
        }
    };
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            joined = tasks.join_next_with_id() => match joined {
                None => break,
                Some(Ok((id, outcome))) => {
                    if let Some(job) = running.remove(&id) {
                        outcomes.push((job, outcome));
                    }
                }
                Some(Err(error)) => {
                    if let Some(job) = running.remove(&error.id()) {
                        let failed = FailedJob {
                            job: job.key.clone(),
                            line: job.line,
                            kind: "unexpected".to_owned(),
                            message: format!("the job's task ended abnormally: {error}"),
                            advice: "run the same command again; the journal keeps what was done"
                                .to_owned(),
                        };
                        outcomes.push((job, Outcome::Failed(failed)));
                    }
                }
            },
            () = &mut deadline => {
                // Past the grace period: the calls still in flight are abandoned. Their
                // `started` records have no outcome, so the next run sends them again.
                tasks.abort_all();
                while tasks.join_next().await.is_some() {}
                for (_, job) in running.drain() {
                    outcomes.push((job, Outcome::Stopped));
                }
                break;
            }
        }
    }
    events.abort();
    signals.abort();
    shared.progress.finish();

    let interrupted = *stop_rx.borrow() > 0;
    let mut summary = {
        let mut guard = shared
            .summary
            .lock()
            .map_err(|_| Failure::io("the summary lock is poisoned"))?;
        std::mem::take(&mut *guard)
    };
    summary.interrupted = interrupted;
    outcomes.sort_by_key(|(job, _)| job.line);
    for (job, outcome) in outcomes {
        match outcome {
            Outcome::Done => {}
            Outcome::Failed(failed) => summary.failed.push(failed),
            Outcome::Stopped => summary.failed.push(FailedJob {
                job: job.key.clone(),
                line: job.line,
                kind: "interrupted".to_owned(),
                message: "stopped by Ctrl-C before all its images were made".to_owned(),
                advice: "run the same command again to resume".to_owned(),
            }),
        }
    }
    summary.cost_usd = shared.backend.router.spent_usd();
    Ok(summary)
}

/// Images of a job the journal shows on disk.
pub(crate) fn written_count(history: &JobHistory) -> u64 {
    let written = history
        .images
        .values()
        .filter(|state| matches!(state, ImageState::Written(path) if path.exists()))
        .count();
    u64::try_from(written).unwrap_or(u64::MAX)
}

/// Whether `--max-cost` stopped new calls: the router's budget refused one.
fn budget_reached(shared: &Shared) -> bool {
    shared.budget_reached.load(Ordering::SeqCst) || shared.backend.router.budget_reached()
}

/// A job refused by `--max-cost`: recorded, shown, reported.
fn not_run(shared: &Shared, job: &Job) -> FailedJob {
    let failed = not_run_failure(shared, job);
    record_failure(shared, job, &failed);
    failed
}

fn record_failure(shared: &Shared, job: &Job, failed: &FailedJob) {
    if let Err(e) = shared.journal.append(Record::Failed {
        job: job.key.clone(),
        kind: failed.kind.clone(),
        message: failed.message.clone(),
        advice: failed.advice.clone(),
    }) {
        shared.progress.line(&e);
    }
    shared
        .progress
        .failed(&job.key, job.line, &failed.kind, &failed.message);
}

fn failure_from_error(job: &Job, error: &Error) -> FailedJob {
    FailedJob {
        job: job.key.clone(),
        line: job.line,
        kind: serde_json::to_value(error.kind())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| format!("{:?}", error.kind())),
        message: error.message().to_owned(),
        advice: error.advice(),
    }
}

fn failure(job: &Job, kind: &str, message: String, advice: &str) -> FailedJob {
    FailedJob {
        job: job.key.clone(),
        line: job.line,
        kind: kind.to_owned(),
        message,
        advice: advice.to_owned(),
    }
}

/// The request of a job (without its count), or why it cannot be made.
fn request_for(shared: &Shared, job: &Job) -> Result<GenerateRequest, FailedJob> {
    let mut request =
        GenerateRequest::new(job.prompt.clone()).with_priority(shared.settings.priority);
    if let Some(size) = job.size {
        request = request.with_size(size);
    }
    if let Some(ratio) = job.aspect_ratio {
        request = request.with_aspect_ratio(ratio);
    }
    if let Some(model) = job.model.as_ref().or(shared.settings.model.as_ref()) {
        request = request.with_model(model.clone());
    }
    for path in &job.references {
        let bytes = std::fs::read(path).map_err(|e| {
            failure(
                job,
                "unreadable_reference",
                format!("cannot read reference image {}: {e}", path.display()),
                "fix the path (relative to the input file) and run the same command again",
            )
        })?;
        let image = ReferenceImage::sniffed(bytes).map_err(|e| {
            failure(
                job,
                "unreadable_reference",
                format!("reference image {}: {}", path.display(), e.message()),
                "use a PNG, JPEG, WebP or GIF file",
            )
        })?;
        request = request.with_reference_image(image);
    }
    request
        .validate()
        .map_err(|e| failure_from_error(job, &e))?;
    let provider = &shared.backend.router;
    let model = request
        .model
        .clone()
        .unwrap_or_else(|| provider.default_model().to_owned());
    provider
        .capabilities(Some(&model))
        .check(&request.clone().with_count(1))
        .map_err(|why| {
            failure(
                job,
                "invalid_request",
                format!("model `{model}` {why}"),
                "change the job or pick another model",
            )
        })?;
    Ok(request)
}

/// The name the journal records: the file name alone (see `Record::Written`).
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// An image of ours already on disk under its stable name, whatever its extension.
fn on_disk(dir: &Path, stem: &str) -> Option<PathBuf> {
    IMAGE_EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .find(|path| path.is_file())
}

async fn run_job(shared: &Shared, job: &Job, history: JobHistory) -> Outcome {
    match run_images(shared, job, &history).await {
        Ok(Outcome::Done) => match shared.journal.append(Record::Done {
            job: job.key.clone(),
        }) {
            Ok(()) => Outcome::Done,
            Err(e) => {
                let failed = failure(job, "io", e, "check the output directory");
                shared
                    .progress
                    .failed(&job.key, job.line, &failed.kind, &failed.message);
                Outcome::Failed(failed)
            }
        },
        Ok(other) => other,
        Err(failed) => {
            record_failure(shared, job, &failed);
            Outcome::Failed(failed)
        }
    }
}

async fn run_images(
    shared: &Shared,
    job: &Job,
    history: &JobHistory,
) -> Result<Outcome, FailedJob> {
    let dir = &shared.settings.out_dir;
    let mut request: Option<GenerateRequest> = None;
    for index in 0..job.n {
        let stem = job.image_stem(index);
        let state = history.images.get(&index);
        if matches!(state, Some(ImageState::Written(path)) if path.exists()) {
            continue;
        }
        // Never clobber, never pay twice: a file already under this image's stable name (an
        // earlier run died between the rename and its `written` record) is adopted.
        if let Some(path) = on_disk(dir, &stem) {
            shared
                .journal
                .append(Record::Written {
                    job: job.key.clone(),
                    image: index,
                    path: file_name(&path),
                    recovered: true,
                })
                .map_err(|e| failure(job, "io", e, "check the output directory"))?;
            if let Ok(mut summary) = shared.summary.lock() {
                summary.images_recovered += 1;
            }
            shared.progress.written(&path, "disk (recovered)", 0.0);
            continue;
        }
        if *shared.stop.borrow() > 0 {
            return Ok(Outcome::Stopped);
        }
        if budget_reached(shared) {
            return Err(not_run_failure(shared, job));
        }
        let base = match &request {
            Some(request) => request.clone(),
            None => {
                let built = request_for(shared, job)?;
                request = Some(built.clone());
                built
            }
        };
        let mut call = base.with_count(1);
        if let Some(seed) = job.seed {
            call = call.with_seed(seed.wrapping_add(u64::from(index)));
        }
        if matches!(state, Some(ImageState::Interrupted))
            && let Ok(mut summary) = shared.summary.lock()
        {
            summary.resent_after_interruption += 1;
        }
        // Durable BEFORE the call: after a crash this record says a call may have been in
        // flight, and no `written` after it says its image never reached the disk.
        if let Err(e) = shared.journal.append(Record::Started {
            job: job.key.clone(),
            image: index,
        }) {
            return Err(failure(job, "io", e, "check the output directory"));
        }
        let backend = &shared.backend;
        let options = RequestOptions::default().with_max_wait(shared.settings.max_wait);
        let response = match backend.router.generate_with(&backend.route, &call, options).await {
            Ok(response) => response,
            Err(error) => {
                // The budget refused the call before anything was sent: `--max-cost` is
                // reached, and no job starts another call.
                if error.kind() == ErrorKind::ConfigInvalid && backend.router.budget_reached() {
                    shared.budget_reached.store(true, Ordering::SeqCst);
                    return Err(not_run_failure(shared, job));
                }
                return Err(failure_from_error(job, &error));
            }
        };
        let cost = response.cost_usd.unwrap_or(0.0);
        let Some(image) = response.images.first() else {
            return Err(failure(
                job,
                "no_image",
                "the provider answered with no image and no error".to_owned(),
                "try again, or change the prompt",
            ));
        };
        let path = dir.join(format!("{stem}.{}", image.extension()));
        write_atomic(&path, &image.bytes).map_err(|e| {
            let message = match e {
                Failure::Io(m) | Failure::Usage(m) => m,
                Failure::Upstream { error, .. } => error.message().to_owned(),
            };
            failure(job, "io", message, "check the output directory")
        })?;
        // Durable AFTER the rename: this record is the proof the image exists.
        shared
            .journal
            .append(Record::Written {
                job: job.key.clone(),
                image: index,
                path: file_name(&path),
                recovered: false,
            })
            .map_err(|e| failure(job, "io", e, "check the output directory"))?;
        let target = response
            .attempts
            .iter()
            .rev()
            .find(|a| a.outcome.is_none())
            .map_or_else(
                || {
                    format!(
                        "{}/{}",
                        response.served_by.provider, response.served_by.model
                    )
                },
                |a| a.target.clone(),
            );
        let target = format!("{target} ({})", response.served_by.model);
        if let Ok(mut summary) = shared.summary.lock() {
            summary.images_written += 1;
            let stats = summary.targets.entry(target.clone()).or_default();
            stats.images += 1;
            stats.cost_usd += cost;
        }
        shared.progress.written(&path, &target, cost);
    }
    Ok(Outcome::Done)
}

fn not_run_failure(shared: &Shared, job: &Job) -> FailedJob {
    let max = shared.settings.max_cost_usd.unwrap_or_default();
    let spent = shared.backend.router.spent_usd();
    failure(
        job,
        "not_run",
        format!("not run: its next call would pass --max-cost ${max:.3} (spent ${spent:.3})"),
        "raise --max-cost and run the same command again; finished images are kept",
    )
}

/// Follows the router's events: 429s per target for the summary, throttling for the bar.
async fn watch_router(mut events: tokio::sync::broadcast::Receiver<Event>, shared: Arc<Shared>) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => break,
        };
        match event {
            Event::RateLimited { target, model, .. } => {
                if let Ok(mut summary) = shared.summary.lock() {
                    summary
                        .targets
                        .entry(format!("{target} ({model})"))
                        .or_default()
                        .rate_limited += 1;
                }
            }
            Event::Throttled { wait, reason, .. } => {
                shared.progress.throttled(Some(format!(
                    "waiting {}: {}",
                    human_duration(wait),
                    throttle_reason(&reason)
                )));
            }
            Event::AttemptStarted { .. } => shared.progress.throttled(None),
            _ => {}
        }
    }
}

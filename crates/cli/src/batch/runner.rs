//! Runs the jobs: `concurrency` at a time, each image its own call, every step journaled.
//!
//! One image per call, always: each call's outcome is one journal record about one file, so
//! a resume never has to guess which of several images a half-finished call had made.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagegate_core::{Error, ErrorKind, GenerateRequest, ImageProvider, Priority, human_duration};
use imagegate_router::{Event, MaxWait, RequestOptions, Router};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::input::Job;
use super::journal::{ImageState, JobHistory, Journal, Record};
use super::progress::Progress;
use super::remote::{RemoteSettings, RemoteWork};
use super::summary::{FailedJob, Summary};
use crate::failure::Failure;
use crate::output::{WriteError, with_fallbacks, write_new};
use crate::recovery;
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
    /// Where paid images go when the output cannot take them (see `crate::recovery`).
    pub rescue_dir: PathBuf,
    /// How long one image's call may wait for capacity (`--max-wait`).
    pub max_wait: MaxWait,
    /// Under `--via auto`: the Batch API that jobs refused because the interactive pools are
    /// parked until their daily reset (`quota_exhausted`) spill to.
    pub spill: Option<RemoteSettings>,
}

/// Everything a job task (and the Batch API path) needs.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) backend: Backend,
    pub(super) journal: Journal,
    pub(super) progress: Progress,
    pub(super) settings: Settings,
    budget_reached: AtomicBool,
    /// The output stopped taking images: no new call may start.
    write_failed: AtomicBool,
    pub(super) stop: watch::Receiver<u32>,
    pub(super) summary: Mutex<Summary>,
}

/// How a job ended.
#[derive(Debug)]
pub(super) enum Outcome {
    Done,
    Failed(FailedJob),
    /// Ctrl-C came between two of its images.
    Stopped,
}

/// Runs `jobs` interactively and `remote`'s jobs through the Batch API, side by side (with
/// what the journal says of each), and fills `summary`.
///
/// # Errors
/// [`Failure::Io`] when the journal cannot be written: going on unrecorded would break the
/// resume guarantees.
pub(crate) async fn run(
    backend: Backend,
    journal: Journal,
    settings: Settings,
    jobs: Vec<(Job, JobHistory)>,
    remote: Option<RemoteWork>,
    mut summary: Summary,
) -> Result<Summary, Failure> {
    let remote_jobs: &[(Job, JobHistory)] = remote.as_ref().map_or(&[], |r| r.jobs.as_slice());
    for (job, history) in jobs.iter().chain(remote_jobs) {
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
        .chain(remote_jobs)
        .map(|(job, history)| u64::from(job.n) - written_count(history))
        .sum();
    let remote_order: Vec<Job> = remote_jobs.iter().map(|(job, _)| job.clone()).collect();
    let progress = Progress::new(to_make);

    let (stop_tx, stop_rx) = watch::channel(0u32);
    let signals = tokio::spawn(crate::batch::signals::count_stops(stop_tx));

    summary.resent_after_interruption = 0;
    let shared = Arc::new(Shared {
        backend,
        journal,
        progress,
        settings,
        budget_reached: AtomicBool::new(false),
        write_failed: AtomicBool::new(false),
        stop: stop_rx.clone(),
        summary: Mutex::new(summary),
    });
    let events = tokio::spawn(watch_router(
        shared.backend.router.subscribe(),
        Arc::clone(&shared),
    ));
    // The Batch API path runs beside the interactive jobs: its jobs wait at the server, so
    // they take no slot of `--concurrency`.
    let mut remote_task =
        remote.map(|work| tokio::spawn(super::remote::drive(Arc::clone(&shared), work)));

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
        if shared.budget_reached.load(Ordering::SeqCst) {
            let failed = not_run(&shared, &job);
            outcomes.push((job, Outcome::Failed(failed)));
            continue;
        }
        if shared.write_failed.load(Ordering::SeqCst) {
            let failed = not_started_after_write_failure(&job);
            record_failure(&shared, &job, &failed);
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
                if let Some(task) = remote_task.take() {
                    // Batch jobs go on at the server; the next run re-attaches to them.
                    task.abort();
                    let _ = task.await;
                    for job in &remote_order {
                        outcomes.push((job.clone(), Outcome::Stopped));
                    }
                }
                break;
            }
        }
    }
    if let Some(task) = remote_task.take() {
        tokio::select! {
            joined = task => match joined {
                Ok(remote) => outcomes.extend(remote),
                Err(error) => {
                    for job in &remote_order {
                        outcomes.push((job.clone(), Outcome::Failed(FailedJob {
                            job: job.key.clone(),
                            line: job.line,
                            kind: "unexpected".to_owned(),
                            message: format!("the Batch API task ended abnormally: {error}"),
                            advice: "run the same command again; the journal keeps what was done"
                                .to_owned(),
                        })));
                    }
                }
            },
            () = &mut deadline => {
                for job in &remote_order {
                    outcomes.push((job.clone(), Outcome::Stopped));
                }
            }
        }
    }
    spill(&shared, &mut outcomes, &stop_rx).await;
    events.abort();
    signals.abort();
    shared.progress.finish();

    let interrupted = *stop_rx.borrow() > 0;
    let write_failed = shared.write_failed.load(Ordering::SeqCst);
    let mut summary = {
        let mut guard = shared
            .summary
            .lock()
            .map_err(|_| Failure::io("the summary lock is poisoned"))?;
        std::mem::take(&mut *guard)
    };
    summary.interrupted = interrupted;
    if write_failed && summary.write_failure.is_none() {
        summary.write_failure = Some("a write to the output failed".to_owned());
    }
    outcomes.sort_by_key(|(job, _)| job.line);
    for (job, outcome) in outcomes {
        match outcome {
            Outcome::Done => {}
            Outcome::Failed(failed) => summary.failed.push(failed),
            Outcome::Stopped => summary.failed.push(FailedJob {
                job: job.key.clone(),
                line: job.line,
                kind: "interrupted".to_owned(),
                message: "stopped (Ctrl-C or SIGTERM) before all its images were made".to_owned(),
                advice: "run the same command again to resume".to_owned(),
            }),
        }
    }
    summary.cost_usd = shared.backend.router.spent_usd() + summary.batch_cost_usd;
    Ok(summary)
}

/// `--via auto`, the policy's rule 3 as the run goes: jobs the interactive pools refused
/// because their daily quota is used up (they are parked until the reset) go to the Batch API
/// instead of failing, with what the journal now says of them.
async fn spill(
    shared: &Arc<Shared>,
    outcomes: &mut Vec<(Job, Outcome)>,
    stop: &watch::Receiver<u32>,
) {
    let Some(settings) = shared.settings.spill.clone() else {
        return;
    };
    if *stop.borrow() > 0 {
        return;
    }
    let parked: Vec<Job> = outcomes
        .iter()
        .filter(|(_, outcome)| {
            matches!(outcome, Outcome::Failed(failed) if failed.kind == "quota_exhausted")
        })
        .map(|(job, _)| job.clone())
        .collect();
    if parked.is_empty() {
        return;
    }
    let replay = match super::journal::Replay::read(shared.journal.path()) {
        Ok(replay) => replay,
        Err(e) => {
            shared.progress.line(&e);
            return;
        }
    };
    shared.progress.line(&format!(
        "--via auto: the interactive pools are parked until their daily reset; {} job(s) \
         spill to the Batch API",
        parked.len()
    ));
    outcomes.retain(|(job, _)| !parked.iter().any(|p| p.key == job.key));
    let jobs = parked
        .into_iter()
        .map(|job| {
            let history = replay.jobs.get(&job.key).cloned().unwrap_or_default();
            (job, history)
        })
        .collect();
    let work = RemoteWork {
        settings,
        jobs,
        live: Vec::new(),
    };
    outcomes.extend(super::remote::drive(Arc::clone(shared), work).await);
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

/// A job refused by `--max-cost`: recorded, shown, reported.
fn not_run(shared: &Shared, job: &Job) -> FailedJob {
    let failed = FailedJob {
        job: job.key.clone(),
        line: job.line,
        kind: "not_run".to_owned(),
        message: budget_message(shared),
        advice: "raise --max-cost and run the same command again; finished images are kept"
            .to_owned(),
    };
    record_failure(shared, job, &failed);
    failed
}

pub(super) fn record_failure(shared: &Shared, job: &Job, failed: &FailedJob) {
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

pub(super) fn failure_from_error(job: &Job, error: &Error) -> FailedJob {
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

pub(super) fn failure(job: &Job, kind: &str, message: String, advice: &str) -> FailedJob {
    FailedJob {
        job: job.key.clone(),
        line: job.line,
        kind: kind.to_owned(),
        message,
        advice: advice.to_owned(),
    }
}

/// The request of a job (without its count), or why it cannot be made.
pub(super) async fn request_for(shared: &Shared, job: &Job) -> Result<GenerateRequest, FailedJob> {
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
        let image = crate::references::read(path).await.map_err(|message| {
            failure(
                job,
                "unreadable_reference",
                message,
                "use a PNG, JPEG, WebP or GIF file of at most 20 MB (the path is relative to \
                 the input file) and run the same command again",
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

/// An image of ours already on disk under its stable name, whatever its extension: a
/// complete image (see `super::adopt`).
pub(super) fn on_disk(dir: &Path, stem: &str) -> Option<PathBuf> {
    IMAGE_EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .find(|path| super::adopt::is_complete_image(path))
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
        // Paid for by an earlier run whose output could not take it: moved into place now.
        if let Some(ImageState::Rescued(kept)) = state
            && kept.is_file()
        {
            place_rescued(shared, job, index, &stem, kept)?;
            continue;
        }
        // Never pay twice: an image of ours already under its stable name (an earlier run
        // died between the rename and its `written` record, so the call was `started`) is
        // adopted. Anything else there is a stranger's file: kept, and written beside.
        if matches!(state, Some(ImageState::Interrupted))
            && let Some(path) = on_disk(dir, &stem)
        {
            adopt(shared, job, index, &path)?;
            continue;
        }
        if *shared.stop.borrow() > 0 {
            return Ok(Outcome::Stopped);
        }
        if shared.budget_reached.load(Ordering::SeqCst) {
            return Err(not_run_failure(shared, job));
        }
        if shared.write_failed.load(Ordering::SeqCst) {
            return Err(not_started_after_write_failure(job));
        }
        let base = match &request {
            Some(request) => request.clone(),
            None => {
                let built = request_for(shared, job).await?;
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
        let response = match backend
            .router
            .generate_with(&backend.route, &call, options)
            .await
        {
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
        write_image(shared, job, index, image, &target, cost, false)?;
    }
    Ok(Outcome::Done)
}

/// Records `path`, found on disk under image `index`'s stable name after a run died between
/// the rename and its `written` record, as that image: adopted, not paid for again.
pub(super) fn adopt(shared: &Shared, job: &Job, index: u32, path: &Path) -> Result<(), FailedJob> {
    shared
        .journal
        .append(Record::Written {
            job: job.key.clone(),
            image: index,
            path: file_name(path),
            recovered: true,
        })
        .map_err(|e| failure(job, "io", e, "check the output directory"))?;
    if let Ok(mut summary) = shared.summary.lock() {
        summary.images_recovered += 1;
    }
    shared.progress.written(path, "disk (recovered)", 0.0);
    Ok(())
}

/// Writes image `index` of `job` under its stable name (or beside a stranger's file there),
/// journals it and counts it for `target`: the one way an image reaches the output, however
/// it was made. With `adopt_existing`, a complete image already under the stable name is
/// taken as this one (see [`adopt`]).
pub(super) fn write_image(
    shared: &Shared,
    job: &Job,
    index: u32,
    image: &imagegate_core::Image,
    target: &str,
    cost: f64,
    adopt_existing: bool,
) -> Result<(), FailedJob> {
    let dir = &shared.settings.out_dir;
    let stem = job.image_stem(index);
    if adopt_existing && let Some(path) = on_disk(dir, &stem) {
        return adopt(shared, job, index, &path);
    }
    let wanted = dir.join(format!("{stem}.{}", image.extension()));
    let path = match write_new(with_fallbacks(wanted), &image.bytes) {
        Ok(path) => path,
        Err(e) => return Err(rescue(shared, job, index, &stem, image, &e)),
    };
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
    if let Ok(mut summary) = shared.summary.lock() {
        summary.images_written += 1;
        let stats = summary.targets.entry(target.to_owned()).or_default();
        stats.images += 1;
        stats.cost_usd += cost;
    }
    shared.progress.written(&path, target, cost);
    Ok(())
}

/// A job not started because the output stopped taking images.
fn not_started_after_write_failure(job: &Job) -> FailedJob {
    failure(
        job,
        "not_run",
        "not started: the output directory stopped taking images, so no new call was paid for"
            .to_owned(),
        "free space (or fix the output directory) and run the same command again",
    )
}

/// A paid image the output could not take: no new call starts from now on (a full disk fails
/// every later write too), and the image goes to the recovery place, journaled, so the next
/// run moves it into place instead of paying again.
fn rescue(
    shared: &Shared,
    job: &Job,
    index: u32,
    stem: &str,
    image: &imagegate_core::Image,
    failed: &WriteError,
) -> FailedJob {
    if recovery::affects_every_write(&failed.error)
        && !shared.write_failed.swap(true, Ordering::SeqCst)
    {
        shared.progress.line(&format!(
            "{failed}; no new calls are started (the calls in flight finish, their images \
             are kept)"
        ));
        if let Ok(mut summary) = shared.summary.lock() {
            summary.write_failure = Some(failed.to_string());
        }
    }
    let name = format!("{stem}.{}", image.extension());
    let kept = match recovery::save(&shared.settings.rescue_dir, &name, &image.bytes) {
        Ok(kept) => kept,
        Err(also) => {
            return failure(
                job,
                "io",
                format!("{failed}; the paid image could not be kept either: {also}"),
                "free space and run the same command again",
            );
        }
    };
    if let Err(e) = shared.journal.append(Record::Rescued {
        job: job.key.clone(),
        image: index,
        path: kept.display().to_string(),
    }) {
        shared.progress.line(&e);
    }
    shared.progress.line(&format!(
        "paid image of job {} kept at {} (the next run moves it into place)",
        job.key,
        kept.display()
    ));
    if let Ok(mut summary) = shared.summary.lock() {
        summary.rescued.push(kept.clone());
    }
    failure(
        job,
        "io",
        format!("{failed}; the paid image is kept at {}", kept.display()),
        "free space (or fix the output directory) and run the same command again: the kept \
         image is moved into place, not paid for again",
    )
}

/// Moves an image kept in the recovery place by an earlier run into the output.
pub(super) fn place_rescued(
    shared: &Shared,
    job: &Job,
    index: u32,
    stem: &str,
    kept: &Path,
) -> Result<(), FailedJob> {
    let dir = &shared.settings.out_dir;
    let bytes = std::fs::read(kept).map_err(|e| {
        failure(
            job,
            "io",
            format!("cannot read the kept image {}: {e}", kept.display()),
            "move it into the output directory yourself, or delete it to generate it again",
        )
    })?;
    let ext = imagegate_core::sniff_mime(&bytes).map_or("png", imagegate_core::extension_for);
    let path = write_new(with_fallbacks(dir.join(format!("{stem}.{ext}"))), &bytes)
        .map_err(|e| failure(job, "io", e.to_string(), "check the output directory"))?;
    shared
        .journal
        .append(Record::Written {
            job: job.key.clone(),
            image: index,
            path: file_name(&path),
            recovered: true,
        })
        .map_err(|e| failure(job, "io", e, "check the output directory"))?;
    // The output has it now, recorded; the kept copy would only confuse.
    let _ = std::fs::remove_file(kept);
    if let Ok(mut summary) = shared.summary.lock() {
        summary.images_recovered += 1;
    }
    shared.progress.written(&path, "recovery place", 0.0);
    Ok(())
}

/// Why a job is not run under `--max-cost`: counting what calls in flight will cost (the
/// router's budget reserves each call's price before sending), not only what has settled.
fn budget_message(shared: &Shared) -> String {
    let max = shared.settings.max_cost_usd.unwrap_or_default();
    let committed = shared.backend.router.spent_usd();
    format!(
        "not run: its next call would pass --max-cost ${max:.3} (${committed:.3} spent or \
         committed to calls in flight)"
    )
}

fn not_run_failure(shared: &Shared, job: &Job) -> FailedJob {
    failure(
        job,
        "not_run",
        budget_message(shared),
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

//! The Batch API path of a run: the images given to it are sent in batch jobs (half price,
//! results within a day), polled, fetched and written exactly as interactive ones are.
//!
//! Resume guarantees (docs/batch.md, "The Batch API and resume"). Creating a job is not
//! idempotent, so:
//! 1. a job's unique display name and its images are journaled (`batch_planned`) BEFORE the
//!    create call; the server's name (`batch_created`) after it;
//! 2. a later run re-attaches to every job the journal does not show as over: by its name,
//!    else by listing the jobs and matching the display name (a run killed during the create);
//!    a job the server does not have was never made, and only then are its images sent again;
//! 3. `batch_ended` is written only after every result of the job was written or failed, so a
//!    run killed while fetching or writing results fetches them again (free) and adopts the
//!    images it had already renamed into place;
//! 4. a job that failed, expired or was cancelled frees its images that have no `written`
//!    record: they are sent again (once per run) in a new job, never the finished ones.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use imagegate_core::{Error, ErrorKind, GenerateRequest, PriceTable};
use tokio::task::JoinSet;

use super::api::{BatchApi, RemoteJob, RemoteState};
use super::input::Job;
use super::journal::{BatchHistory, ImageKey, ImageState, JobHistory, Record};
use super::runner::{
    Outcome, Shared, adopt, failure, failure_from_error, on_disk, place_rescued, record_failure,
    request_for, write_image,
};
use super::summary::{BatchJobSummary, FailedJob};

/// How many times one run creates a job for the same image: the first job, and once more
/// after that job failed or expired.
const SUBMISSIONS_PER_RUN: u32 = 2;

/// How often a create answered 429 or 5xx is tried again (same display name: an answer
/// proves no job was made) before its images fail for this run.
const CREATE_ATTEMPTS: u32 = 5;

/// How the Batch API path runs.
#[derive(Debug, Clone)]
pub(crate) struct RemoteSettings {
    pub api: Arc<dyn BatchApi>,
    /// The configured provider the jobs go to (journal, summary).
    pub provider: String,
    /// The model for jobs that name none (`--model`, else the target's).
    pub model: String,
    pub poll_interval: Duration,
    pub max_poll_interval: Duration,
    /// Images per batch job.
    pub job_size: usize,
    pub prices: PriceTable,
    /// Unique to this run: the start of every display name it creates.
    pub run_id: String,
}

/// The work given to the Batch API path.
#[derive(Debug)]
pub(crate) struct RemoteWork {
    pub settings: RemoteSettings,
    /// Jobs whose images go through the Batch API (with what the journal says of each).
    pub jobs: Vec<(Job, JobHistory)>,
    /// Batch jobs of earlier runs not known to be over: re-attached first.
    pub live: Vec<BatchHistory>,
}

/// Everything a batch-job task needs.
#[derive(Debug)]
struct Ctx {
    shared: Arc<Shared>,
    settings: RemoteSettings,
    jobs: HashMap<String, Job>,
    seq: AtomicU32,
    /// US dollars committed to batch jobs this run (their images at the batch price).
    committed: Mutex<f64>,
}

/// What to do with one batch job.
#[derive(Debug)]
enum Plan {
    /// Create a job for these images.
    New { model: String, keys: Vec<ImageKey> },
    /// Re-attach to a job an earlier run created (or may have created); `keys` are its
    /// images still without a `written` record.
    Attach {
        history: BatchHistory,
        keys: Vec<ImageKey>,
    },
}

/// How one batch job went, for the images it held.
#[derive(Debug, Default)]
struct Finished {
    written: Vec<ImageKey>,
    failed: Vec<(ImageKey, FailedJob)>,
    /// Images of a job that failed, expired, was cancelled or was never created: free to be
    /// sent again.
    unfinished: Vec<ImageKey>,
    /// Ctrl-C came while waiting: the job goes on at the server; a rerun re-attaches.
    stopped: Vec<ImageKey>,
    /// The model the job ran on, for a resubmission.
    model: String,
}

/// Runs the Batch API path to the end (or to Ctrl-C) and says how each of its jobs ended.
pub(super) async fn drive(shared: Arc<Shared>, work: RemoteWork) -> Vec<(Job, Outcome)> {
    let RemoteWork {
        settings,
        jobs,
        live,
    } = work;
    let mut pending: BTreeSet<ImageKey> = BTreeSet::new();
    let mut early_failures: BTreeMap<String, FailedJob> = BTreeMap::new();
    for (job, history) in &jobs {
        for index in 0..job.n {
            match settle_on_disk(&shared, job, index, history) {
                Ok(true) => {}
                Ok(false) => {
                    pending.insert(ImageKey {
                        job: job.key.clone(),
                        image: index,
                    });
                }
                Err(failed) => {
                    early_failures.entry(job.key.clone()).or_insert(failed);
                }
            }
        }
    }
    let order: Vec<Job> = jobs.iter().map(|(job, _)| job.clone()).collect();
    let ctx = Arc::new(Ctx {
        shared,
        jobs: jobs
            .into_iter()
            .map(|(job, _)| (job.key.clone(), job))
            .collect(),
        settings,
        seq: AtomicU32::new(0),
        committed: Mutex::new(0.0),
    });

    let mut tasks = JoinSet::new();
    let mut attached: BTreeSet<ImageKey> = BTreeSet::new();
    for history in live {
        let keys: Vec<ImageKey> = history
            .images
            .iter()
            .filter(|k| pending.contains(*k))
            .cloned()
            .collect();
        attached.extend(keys.iter().cloned());
        tasks.spawn(run_batch(Arc::clone(&ctx), Plan::Attach { history, keys }));
    }
    let fresh: Vec<ImageKey> = pending
        .iter()
        .filter(|k| !attached.contains(*k))
        .cloned()
        .collect();
    let mut submissions: HashMap<ImageKey, u32> = HashMap::new();
    for plan in chunks(&ctx, fresh) {
        if let Plan::New { keys, .. } = &plan {
            for key in keys {
                *submissions.entry(key.clone()).or_default() += 1;
            }
        }
        tasks.spawn(run_batch(Arc::clone(&ctx), plan));
    }

    let mut written: BTreeSet<ImageKey> = BTreeSet::new();
    let mut failures = early_failures;
    let mut stopped: BTreeSet<String> = BTreeSet::new();
    while let Some(joined) = tasks.join_next().await {
        let finished = match joined {
            Ok(finished) => finished,
            Err(error) => {
                ctx.shared
                    .progress
                    .line(&format!("a batch job's task ended abnormally: {error}"));
                continue;
            }
        };
        written.extend(finished.written);
        for (key, failed) in finished.failed {
            failures.entry(key.job).or_insert(failed);
        }
        for key in finished.stopped {
            stopped.insert(key.job);
        }
        if finished.unfinished.is_empty() {
            continue;
        }
        let stopping = *ctx.shared.stop.borrow() > 0;
        let (again, spent): (Vec<ImageKey>, Vec<ImageKey>) =
            finished.unfinished.into_iter().partition(|key| {
                !stopping && submissions.get(key).copied().unwrap_or(0) < SUBMISSIONS_PER_RUN
            });
        for key in spent {
            if stopping {
                stopped.insert(key.job);
                continue;
            }
            if let Some(job) = ctx.jobs.get(&key.job) {
                let failed = failure(
                    job,
                    "batch_failed",
                    format!(
                        "its batch job ended without its image {} times in this run",
                        SUBMISSIONS_PER_RUN
                    ),
                    "run the same command again: only the images without a result are sent \
                     again (add --via interactive to send them interactively)",
                );
                failures.entry(key.job.clone()).or_insert(failed);
            }
        }
        for key in &again {
            *submissions.entry(key.clone()).or_default() += 1;
        }
        for plan in chunks_of_model(&ctx, &finished.model, again) {
            tasks.spawn(run_batch(Arc::clone(&ctx), plan));
        }
    }

    let mut outcomes = Vec::with_capacity(order.len());
    for job in order {
        let missing = (0..job.n).any(|index| {
            let key = ImageKey {
                job: job.key.clone(),
                image: index,
            };
            pending.contains(&key) && !written.contains(&key)
        });
        let outcome = if let Some(failed) = failures.remove(&job.key) {
            record_failure(&ctx.shared, &job, &failed);
            Outcome::Failed(failed)
        } else if missing || stopped.contains(&job.key) {
            Outcome::Stopped
        } else {
            match ctx.shared.journal.append(Record::Done {
                job: job.key.clone(),
            }) {
                Ok(()) => Outcome::Done,
                Err(e) => {
                    let failed = failure(&job, "io", e, "check the output directory");
                    record_failure(&ctx.shared, &job, &failed);
                    Outcome::Failed(failed)
                }
            }
        };
        outcomes.push((job, outcome));
    }
    outcomes
}

/// An image already settled on disk (written, kept in the recovery place and now moved in, or
/// renamed into place by a run that died before its record): `Ok(true)`; `Ok(false)`: it
/// still needs a result.
fn settle_on_disk(
    shared: &Shared,
    job: &Job,
    index: u32,
    history: &JobHistory,
) -> Result<bool, FailedJob> {
    match history.images.get(&index) {
        Some(ImageState::Written(path)) if path.exists() => Ok(true),
        Some(ImageState::Rescued(kept)) if kept.is_file() => {
            place_rescued(shared, job, index, &job.image_stem(index), kept)?;
            Ok(true)
        }
        Some(ImageState::Interrupted) => {
            match on_disk(&shared.settings.out_dir, &job.image_stem(index)) {
                Some(path) => {
                    adopt(shared, job, index, &path)?;
                    Ok(true)
                }
                None => Ok(false),
            }
        }
        _ => Ok(false),
    }
}

/// `keys` in batch jobs of at most `job_size` images, one model per job.
fn chunks(ctx: &Ctx, keys: Vec<ImageKey>) -> Vec<Plan> {
    let mut by_model: BTreeMap<String, Vec<ImageKey>> = BTreeMap::new();
    for key in keys {
        let model = ctx
            .jobs
            .get(&key.job)
            .and_then(|job| job.model.clone())
            .unwrap_or_else(|| ctx.settings.model.clone());
        by_model.entry(model).or_default().push(key);
    }
    by_model
        .into_iter()
        .flat_map(|(model, keys)| chunks_of_model(ctx, &model, keys))
        .collect()
}

fn chunks_of_model(ctx: &Ctx, model: &str, keys: Vec<ImageKey>) -> Vec<Plan> {
    keys.chunks(ctx.settings.job_size)
        .map(|chunk| Plan::New {
            model: model.to_owned(),
            keys: chunk.to_vec(),
        })
        .collect()
}

impl Ctx {
    /// A display name no other job has: this run's id and a sequence number.
    fn display_name(&self) -> String {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
        format!("{}-{seq}", self.settings.run_id)
    }

    fn stopping(&self) -> bool {
        *self.shared.stop.borrow() > 0
    }

    /// The batch price of one image of `request` on `model` (0 when unpriced).
    fn price(&self, request: &GenerateRequest, model: &str) -> f64 {
        self.settings
            .prices
            .estimate(request, model, true)
            .unwrap_or(0.0)
    }

    fn journal(&self, record: Record) -> Result<(), String> {
        self.shared.journal.append(record)
    }

    fn fail_all(&self, keys: &[ImageKey], failed: impl Fn(&Job) -> FailedJob) -> Finished {
        Finished {
            failed: keys
                .iter()
                .filter_map(|key| {
                    self.jobs
                        .get(&key.job)
                        .map(|job| (key.clone(), failed(job)))
                })
                .collect(),
            ..Finished::default()
        }
    }

    fn summarise(&self, display: &str, name: Option<&str>, state: &str, images: usize) {
        if let Ok(mut summary) = self.shared.summary.lock() {
            let entry = summary
                .batch_jobs
                .iter()
                .position(|b| b.display_name == display);
            let record = BatchJobSummary {
                display_name: display.to_owned(),
                name: name.map(str::to_owned),
                state: state.to_owned(),
                images: images as u64,
            };
            match entry {
                Some(at) => summary.batch_jobs[at] = record,
                None => summary.batch_jobs.push(record),
            }
        }
    }
}

/// Builds the requests of `keys`: the same request an interactive call would send.
async fn requests(
    ctx: &Ctx,
    keys: Vec<ImageKey>,
) -> (Vec<(ImageKey, GenerateRequest)>, Vec<(ImageKey, FailedJob)>) {
    let mut built: HashMap<String, Result<GenerateRequest, FailedJob>> = HashMap::new();
    let mut ok = Vec::with_capacity(keys.len());
    let mut failed = Vec::new();
    for key in keys {
        let Some(job) = ctx.jobs.get(&key.job) else {
            continue;
        };
        if !built.contains_key(&key.job) {
            let request = request_for(&ctx.shared, job).await;
            built.insert(key.job.clone(), request);
        }
        match built.get(&key.job) {
            Some(Ok(base)) => {
                let mut call = base.clone().with_count(1);
                if let Some(seed) = job.seed {
                    call = call.with_seed(seed.wrapping_add(u64::from(key.image)));
                }
                ok.push((key, call));
            }
            Some(Err(why)) => failed.push((key, why.clone())),
            None => {}
        }
    }
    (ok, failed)
}

/// Whether an error from create proves no job was made: the server answered.
fn answered(error: &Error) -> bool {
    error.http_status().is_some()
        || matches!(
            error.kind(),
            ErrorKind::Connect | ErrorKind::InvalidRequest | ErrorKind::ConfigInvalid
        )
}

/// A job the server made.
struct Created {
    display: String,
    model: String,
    keys: Vec<ImageKey>,
    name: String,
    /// Images of the plan that could not be asked for.
    failed: Vec<(ImageKey, FailedJob)>,
}

/// One batch job, from its plan to its last result.
async fn run_batch(ctx: Arc<Ctx>, plan: Plan) -> Finished {
    let reattached = matches!(plan, Plan::Attach { .. });
    let mut early: Vec<(ImageKey, FailedJob)> = Vec::new();
    let (display, model, keys, job_name) = match plan {
        Plan::New { model, keys } => match create(&ctx, model, keys).await {
            Ok(created) => {
                early = created.failed;
                (created.display, created.model, created.keys, created.name)
            }
            Err(finished) => return finished,
        },
        Plan::Attach { history, keys } => {
            let name = match history.name.clone() {
                Some(name) => Some(name),
                None => match ctx.settings.api.find(&history.batch).await {
                    Ok(Some(job)) => {
                        if let Err(e) = ctx.journal(Record::BatchCreated {
                            batch: history.batch.clone(),
                            name: job.name.clone(),
                        }) {
                            return io_failed(&ctx, &keys, e);
                        }
                        ctx.shared.progress.line(&format!(
                            "batch job {} found again as {} (the run that created it stopped \
                             before recording it)",
                            history.batch, job.name
                        ));
                        Some(job.name)
                    }
                    Ok(None) => None,
                    Err(error) => {
                        return ctx.fail_all(&keys, |job| {
                            failure(
                                job,
                                "batch_unreachable",
                                format!(
                                    "cannot look for the batch job {} an earlier run began to \
                                     create: {}",
                                    history.batch,
                                    error.message()
                                ),
                                "run the same command again: the job is looked for again \
                                 before anything is sent",
                            )
                        });
                    }
                },
            };
            let Some(name) = name else {
                // Never made: the create was cut short before the server took it.
                if let Err(e) = ctx.journal(Record::BatchEnded {
                    batch: history.batch.clone(),
                    state: "not_created".to_owned(),
                }) {
                    return io_failed(&ctx, &keys, e);
                }
                return Finished {
                    unfinished: keys,
                    model: history.model,
                    ..Finished::default()
                };
            };
            if keys.is_empty() {
                // Every image is on disk already: nothing to wait for.
                let _ = ctx.journal(Record::BatchEnded {
                    batch: history.batch.clone(),
                    state: "complete".to_owned(),
                });
                return Finished::default();
            }
            (history.batch, history.model, keys, name)
        }
    };
    let mut finished = follow(&ctx, display, model.clone(), keys, &job_name, reattached).await;
    finished.failed.append(&mut early);
    finished.model = model;
    finished
}

/// Polls the created job `job_name` to its end and writes its results.
async fn follow(
    ctx: &Ctx,
    display: String,
    model: String,
    keys: Vec<ImageKey>,
    job_name: &str,
    reattached: bool,
) -> Finished {
    ctx.summarise(&display, Some(job_name), "pending", keys.len());
    let job = match poll(ctx, &display, job_name, keys.len()).await {
        Polled::Done(job) => job,
        Polled::Stopped => {
            return Finished {
                stopped: keys,
                model,
                ..Finished::default()
            };
        }
        Polled::Refused(error) => {
            return ctx.fail_all(&keys, |job| {
                failure(
                    job,
                    "batch_unreachable",
                    format!(
                        "cannot poll batch job {display} ({job_name}): {}",
                        error.message()
                    ),
                    &format!(
                        "{}; then run the same command again: the job is re-attached, nothing \
                         is sent again",
                        error.advice()
                    ),
                )
            });
        }
        Polled::Lost(error) => {
            // The server no longer has it (deleted): nothing of it can arrive.
            let _ = ctx.journal(Record::BatchEnded {
                batch: display.clone(),
                state: "lost".to_owned(),
            });
            ctx.shared.progress.line(&format!(
                "batch job {display} ({job_name}) is gone: {}",
                error.message()
            ));
            ctx.summarise(&display, Some(job_name), "lost", keys.len());
            return Finished {
                unfinished: keys,
                model,
                ..Finished::default()
            };
        }
    };
    ctx.summarise(&display, Some(job_name), job.state.word(), keys.len());
    if job.state != RemoteState::Succeeded {
        if let Err(e) = ctx.journal(Record::BatchEnded {
            batch: display.clone(),
            state: job.state.word().to_owned(),
        }) {
            return io_failed(ctx, &keys, e);
        }
        ctx.shared.progress.line(&format!(
            "batch job {display} ({job_name}) {}: its {} image(s) without a result are sent \
             again in a new job",
            job.state.word(),
            keys.len()
        ));
        return Finished {
            unfinished: keys,
            model,
            ..Finished::default()
        };
    }
    let results = loop {
        // Fetching only reads (the results stay at the server): Ctrl-C abandons it at once.
        let mut stop = ctx.shared.stop.clone();
        let fetched = tokio::select! {
            fetched = ctx.settings.api.results(&job) => fetched,
            _ = stop.wait_for(|n| *n > 0) => {
                return Finished {
                    stopped: keys,
                    model,
                    ..Finished::default()
                };
            }
        };
        match fetched {
            Ok(results) => break results,
            Err(error) => {
                if ctx.stopping() || !transient(&error) {
                    if ctx.stopping() {
                        return Finished {
                            stopped: keys,
                            model,
                            ..Finished::default()
                        };
                    }
                    return ctx.fail_all(&keys, |job| {
                        failure(
                            job,
                            "batch_results",
                            format!(
                                "cannot fetch the results of batch job {display}: {}",
                                error.message()
                            ),
                            "run the same command again: the results are fetched again (free)",
                        )
                    });
                }
                ctx.shared.progress.line(&format!(
                    "fetching the results of {display} failed ({}); trying again",
                    error.message()
                ));
                sleep_or_stop(ctx, ctx.settings.poll_interval).await;
            }
        }
    };
    let mut finished = write_results(ctx, &display, &model, &keys, results, reattached);
    if finished.stopped.is_empty()
        && let Err(e) = ctx.journal(Record::BatchEnded {
            batch: display.clone(),
            state: "succeeded".to_owned(),
        })
    {
        ctx.shared.progress.line(&e);
    }
    finished.model = model;
    finished
}

fn io_failed(ctx: &Ctx, keys: &[ImageKey], error: String) -> Finished {
    ctx.fail_all(keys, |job| {
        failure(job, "io", error.clone(), "check the output directory")
    })
}

/// Plans, journals and creates a job for `keys`: its display name, model, images and server
/// name; or how its images ended when no job was made.
async fn create(ctx: &Ctx, model: String, keys: Vec<ImageKey>) -> Result<Created, Finished> {
    let (requests, failed) = requests(ctx, keys).await;
    let mut finished = Finished {
        failed,
        model: model.clone(),
        ..Finished::default()
    };
    // `--max-cost`: what the router spent or holds, plus what batch jobs hold, plus this job.
    let mut requests = requests;
    if let Some(max) = ctx.shared.settings.max_cost_usd {
        let mut committed = match ctx.committed.lock() {
            Ok(committed) => committed,
            Err(_) => return Err(finished),
        };
        let mut fits = 0;
        let mut total = ctx.shared.backend.router.spent_usd() + *committed;
        for (_, request) in &requests {
            let price = ctx.price(request, &model);
            if total + price > max + 1e-9 {
                break;
            }
            total += price;
            fits += 1;
        }
        for (key, _) in requests.split_off(fits) {
            if let Some(job) = ctx.jobs.get(&key.job) {
                let failed = failure(
                    job,
                    "not_run",
                    format!(
                        "not run: its image would pass --max-cost ${max:.3} (${:.3} spent or \
                         committed to batch jobs and calls in flight)",
                        total
                    ),
                    "raise --max-cost and run the same command again; finished images are kept",
                );
                finished.failed.push((key, failed));
            }
        }
        *committed = total - ctx.shared.backend.router.spent_usd();
    } else if let Ok(mut committed) = ctx.committed.lock() {
        *committed += requests
            .iter()
            .map(|(_, request)| ctx.price(request, &model))
            .sum::<f64>();
    }
    if requests.is_empty() {
        return Err(finished);
    }
    let keys: Vec<ImageKey> = requests.iter().map(|(key, _)| key.clone()).collect();
    let display = ctx.display_name();
    // Durable BEFORE the create: a run killed during it finds the job by this name.
    if let Err(e) = ctx.journal(Record::BatchPlanned {
        batch: display.clone(),
        provider: ctx.settings.provider.clone(),
        model: model.clone(),
        images: keys.clone(),
    }) {
        let mut out = io_failed(ctx, &keys, e);
        out.failed.append(&mut finished.failed);
        return Err(out);
    }
    let wire: Vec<(String, GenerateRequest)> = requests
        .into_iter()
        .map(|(key, request)| (key.wire(), request))
        .collect();
    ctx.summarise(&display, None, "creating", keys.len());
    ctx.shared
        .progress
        .batch(&display, "creating", 0, keys.len() as u64);
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        match ctx.settings.api.create(&model, &display, &wire).await {
            Ok(job) => break Ok(job),
            Err(error)
                if answered(&error)
                    && transient(&error)
                    && attempt < CREATE_ATTEMPTS
                    && !ctx.stopping() =>
            {
                // A 429 or 5xx answer: no job was made, so the same display name is safe.
                let wait = error
                    .retry_after()
                    .unwrap_or(ctx.settings.poll_interval)
                    .min(ctx.settings.max_poll_interval);
                ctx.shared.progress.line(&format!(
                    "creating batch job {display} was refused ({}: {}); trying again in {}",
                    kind_word(&error),
                    error.message(),
                    imagegate_core::human_duration(wait)
                ));
                sleep_or_stop(ctx, wait).await;
            }
            Err(error) => break Err(error),
        }
    };
    let created = match outcome {
        Ok(job) => Ok(job),
        Err(error) if answered(&error) => Err(error),
        // No answer (a timeout, a cut connection): the server may have made the job.
        Err(error) => match ctx.settings.api.find(&display).await {
            Ok(Some(job)) => Ok(job),
            Ok(None) => Err(error),
            Err(_) => {
                // Cannot tell: the journal keeps the job live, so a rerun looks again
                // before sending anything.
                let mut out = ctx.fail_all(&keys, |job| {
                    failure(
                        job,
                        "batch_unreachable",
                        format!(
                            "batch job {display} may or may not have been created: {}",
                            error.message()
                        ),
                        "run the same command again: the job is looked for before anything \
                         is sent",
                    )
                });
                out.failed.append(&mut finished.failed);
                return Err(out);
            }
        },
    };
    match created {
        Ok(job) => {
            if let Err(e) = ctx.journal(Record::BatchCreated {
                batch: display.clone(),
                name: job.name.clone(),
            }) {
                let mut out = io_failed(ctx, &keys, e);
                out.failed.append(&mut finished.failed);
                return Err(out);
            }
            ctx.shared.progress.line(&format!(
                "batch job {display} created as {} ({} image(s), model {model})",
                job.name,
                keys.len()
            ));
            // Images that could not even be asked for (an unreadable reference) fail with
            // the job's outcome; the others wait for the job.
            Ok(Created {
                display,
                model,
                keys,
                name: job.name,
                failed: std::mem::take(&mut finished.failed),
            })
        }
        Err(error) => {
            let _ = ctx.journal(Record::BatchEnded {
                batch: display.clone(),
                state: "not_created".to_owned(),
            });
            ctx.summarise(&display, None, "not_created", keys.len());
            if let Ok(mut committed) = ctx.committed.lock() {
                *committed = (*committed
                    - wire
                        .iter()
                        .map(|(_, request)| ctx.price(request, &model))
                        .sum::<f64>())
                .max(0.0);
            }
            let mut out = ctx.fail_all(&keys, |job| failure_from_error(job, &error));
            out.failed.append(&mut finished.failed);
            Err(out)
        }
    }
}

fn kind_word(error: &Error) -> String {
    serde_json::to_value(error.kind())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", error.kind()))
}

/// Errors worth trying again after a wait.
fn transient(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::RateLimited
            | ErrorKind::Unavailable
            | ErrorKind::Timeout
            | ErrorKind::Connect
            | ErrorKind::QuotaExhausted
    )
}

/// How polling a job ended.
enum Polled {
    Done(RemoteJob),
    Stopped,
    /// A refusal polling again cannot cure (a revoked key, say): the job stays live in the
    /// journal, so a rerun re-attaches once it is fixed.
    Refused(Error),
    Lost(Error),
}

/// Polls `name` until it is over, waiting `poll_interval` first and half as long again
/// after each poll, up to `max_poll_interval`.
async fn poll(ctx: &Ctx, display: &str, name: &str, images: usize) -> Polled {
    let mut wait = ctx.settings.poll_interval;
    let mut last: Option<(RemoteState, u64)> = None;
    loop {
        if ctx.stopping() {
            return Polled::Stopped;
        }
        // A poll only reads: Ctrl-C abandons one in flight at once.
        let mut stop = ctx.shared.stop.clone();
        let polled = tokio::select! {
            polled = ctx.settings.api.get(name) => polled,
            _ = stop.wait_for(|n| *n > 0) => return Polled::Stopped,
        };
        match polled {
            Ok(job) => {
                if last != Some((job.state, job.finished)) {
                    last = Some((job.state, job.finished));
                    ctx.shared.progress.batch(
                        display,
                        job.state.word(),
                        job.finished,
                        job.total.max(images as u64),
                    );
                    ctx.summarise(display, Some(name), job.state.word(), images);
                }
                if job.state.is_terminal() {
                    return Polled::Done(job);
                }
            }
            Err(error) if error.http_status() == Some(404) => return Polled::Lost(error),
            Err(error) if !transient(&error) => return Polled::Refused(error),
            Err(error) => {
                tracing::info!(error = %error.message(), "polling {name} failed; polling on");
            }
        }
        if sleep_or_stop(ctx, wait).await {
            return Polled::Stopped;
        }
        wait = wait.mul_f64(1.5).min(ctx.settings.max_poll_interval);
    }
}

/// Sleeps `wait`, or less when Ctrl-C comes; true when it did.
async fn sleep_or_stop(ctx: &Ctx, wait: Duration) -> bool {
    let mut stop = ctx.shared.stop.clone();
    tokio::select! {
        () = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|n| *n > 0) => true,
    }
}

/// Writes every result of a finished job that is one of `keys`, exactly as an interactive
/// image is written.
fn write_results(
    ctx: &Ctx,
    display: &str,
    model: &str,
    keys: &[ImageKey],
    results: Vec<super::api::RemoteResult>,
    reattached: bool,
) -> Finished {
    let wanted: BTreeSet<&ImageKey> = keys.iter().collect();
    let mut finished = Finished::default();
    let mut seen: BTreeSet<ImageKey> = BTreeSet::new();
    let target = format!("{} ({model}) via batch", ctx.settings.provider);
    for result in results {
        let Some(key) = ImageKey::from_wire(&result.key) else {
            tracing::info!(key = %result.key, "a result with a key that is not ours; ignored");
            continue;
        };
        if !wanted.contains(&key) || !seen.insert(key.clone()) {
            continue;
        }
        let Some(job) = ctx.jobs.get(&key.job) else {
            continue;
        };
        let response = match result.outcome {
            Ok(response) => response,
            Err(error) => {
                finished
                    .failed
                    .push((key.clone(), failure_from_error(job, &error)));
                continue;
            }
        };
        let Some(image) = response.images.first() else {
            finished.failed.push((
                key.clone(),
                failure(
                    job,
                    "no_image",
                    "the batch result holds no image and no error".to_owned(),
                    "try again, or change the prompt",
                ),
            ));
            continue;
        };
        let mut request = GenerateRequest::new(job.prompt.clone());
        if let Some(size) = job.size {
            request = request.with_size(size);
        }
        let cost = ctx.price(&request, model);
        // A job an earlier run re-attached to may have had this image renamed into place
        // just before that run died (no `written` record yet): adopted, not written twice.
        match write_image(
            &ctx.shared,
            job,
            key.image,
            image,
            &target,
            cost,
            reattached,
        ) {
            Ok(()) => {
                if let Ok(mut summary) = ctx.shared.summary.lock() {
                    summary.images_via_batch += 1;
                    summary.batch_cost_usd += cost;
                }
                finished.written.push(key);
            }
            Err(failed) => finished.failed.push((key, failed)),
        }
    }
    for key in keys {
        if !seen.contains(key)
            && let Some(job) = ctx.jobs.get(&key.job)
        {
            finished.failed.push((
                key.clone(),
                failure(
                    job,
                    "no_result",
                    format!("batch job {display} finished without a result for this image"),
                    "run the same command again to send it again",
                ),
            ));
        }
    }
    finished
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;

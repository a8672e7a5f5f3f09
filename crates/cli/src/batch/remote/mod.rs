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

use imagegate_core::{Error, ErrorKind, GenerateRequest, quota::PriceTable};
use tokio::task::JoinSet;

mod create;
mod follow;

use create::create;
use follow::follow;

use super::api::BatchApi;
use super::input::Job;
use super::journal::{BatchHistory, ImageKey, ImageState, JobHistory, Record};
use super::runner::{Outcome, Shared, adopt, failure, on_disk, place_rescued, record_failure};
use super::summary::{BatchJobSummary, FailedJob};

/// How many times one run creates a job for the same image: the first job, and once more
/// after that job failed or expired.
const SUBMISSIONS_PER_RUN: u32 = 2;

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

fn io_failed(ctx: &Ctx, keys: &[ImageKey], error: String) -> Finished {
    ctx.fail_all(keys, |job| {
        failure(job, "io", error.clone(), "check the output directory")
    })
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

/// Sleeps `wait`, or less when Ctrl-C comes; true when it did.
async fn sleep_or_stop(ctx: &Ctx, wait: Duration) -> bool {
    let mut stop = ctx.shared.stop.clone();
    tokio::select! {
        () = tokio::time::sleep(wait) => false,
        _ = stop.wait_for(|n| *n > 0) => true,
    }
}

#[cfg(test)]
mod tests;

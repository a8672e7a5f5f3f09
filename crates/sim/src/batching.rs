//! The engine's side of a batch API: jobs a strategy places there are gathered, created as
//! batch jobs on the batch API of [`World::batch_target`](crate::world::World::batch_target),
//! and completed when their results arrive, without holding one of the client's workers
//! (a batch job runs on the provider's side; the client only waits).
//!
//! Jobs placed in the same instant are gathered into batch jobs of at most
//! [`MAX_REQUESTS_PER_BATCH_JOB`] requests, the way a client submits a list of prompts. A batch
//! job the batch quota refuses hands its jobs back to the workers, marked to run interactively
//! (as the CLI falls back when a create is refused). A job whose results arrive after its
//! deadline fails at its deadline; its images were still billed (waste). A batch job that
//! expires (its turnaround past 48 hours) fails its jobs, and bills nothing.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use imagegate_core::{Clock, GenerateRequest};
use imagegate_mock::sim::BatchJobRecord;
use imagegate_router::via::Via;
use jiff::Timestamp;
use tokio::task::JoinHandle;

use crate::engine::{JobOutcome, JobRecord};
use crate::strategy::Job;
use crate::world::SimTarget;

/// The most requests one batch job carries: a list of prompts larger than this is submitted as
/// several batch jobs (each with its own turnaround).
pub const MAX_REQUESTS_PER_BATCH_JOB: u64 = 1_000;

/// How long placed jobs are gathered before their batch jobs are created: the jobs placed in
/// one simulated instant (a burst) go together.
const GATHER: Duration = Duration::from_millis(1);

/// A job waiting for a worker, and whether it must run interactively (the batch quota refused
/// it once).
pub(crate) type Queued = (Job, bool);

/// Gathers, submits and completes batch work.
pub(crate) struct Batcher {
    target: SimTarget,
    clock: Arc<dyn Clock>,
    pending: Mutex<Vec<Job>>,
    /// Jobs handed over and not yet submitted or handed back: workers stay while it is above 0.
    unsubmitted: AtomicUsize,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    records: Arc<Mutex<Vec<JobRecord>>>,
    queue: Arc<Mutex<VecDeque<Queued>>>,
}

impl Batcher {
    /// A batcher over `target` (whose `batch` is set), recording into `records` and handing
    /// refused jobs back to `queue`.
    pub(crate) fn new(
        target: SimTarget,
        clock: Arc<dyn Clock>,
        records: Arc<Mutex<Vec<JobRecord>>>,
        queue: Arc<Mutex<VecDeque<Queued>>>,
    ) -> Arc<Self> {
        Arc::new(Batcher {
            target,
            clock,
            pending: Mutex::new(Vec::new()),
            unsubmitted: AtomicUsize::new(0),
            tasks: Mutex::new(Vec::new()),
            records,
            queue,
        })
    }

    /// Jobs handed over but not yet submitted (or handed back).
    pub(crate) fn unsubmitted(&self) -> usize {
        self.unsubmitted.load(Ordering::SeqCst)
    }

    /// Takes `job` for the batch API.
    pub(crate) fn add(self: &Arc<Self>, job: Job) {
        self.unsubmitted.fetch_add(1, Ordering::SeqCst);
        let first = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.push(job);
            pending.len() == 1
        };
        if first {
            let me = self.clone();
            let handle = tokio::spawn(async move {
                me.clock.sleep(GATHER).await;
                me.flush();
            });
            self.keep(handle);
        }
    }

    fn keep(&self, handle: JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }

    /// Submits everything gathered, in batch jobs of at most [`MAX_REQUESTS_PER_BATCH_JOB`].
    fn flush(self: &Arc<Self>) {
        let jobs =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let count = jobs.len();
        let mut chunk: Vec<Job> = Vec::new();
        let mut requests = 0u64;
        let mut refused: Vec<Job> = Vec::new();
        for job in jobs {
            let images = u64::from(job.images);
            if !chunk.is_empty() && requests + images > MAX_REQUESTS_PER_BATCH_JOB {
                self.submit(std::mem::take(&mut chunk), &mut refused);
                requests = 0;
            }
            requests += images;
            chunk.push(job);
        }
        if !chunk.is_empty() {
            self.submit(chunk, &mut refused);
        }
        if !refused.is_empty() {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            for job in refused.into_iter().rev() {
                queue.push_front((job, true));
            }
        }
        self.unsubmitted.fetch_sub(count, Ordering::SeqCst);
    }

    /// Creates one batch job of `jobs`; refused ones go to `refused`.
    fn submit(self: &Arc<Self>, jobs: Vec<Job>, refused: &mut Vec<Job>) {
        let Some(batch) = &self.target.batch else {
            refused.extend(jobs);
            return;
        };
        let model = self.target.model.clone();
        let requests: Vec<GenerateRequest> = jobs
            .iter()
            .flat_map(|j| {
                std::iter::repeat_n(
                    j.request.clone().with_model(model.clone()),
                    j.images as usize,
                )
            })
            .collect();
        match batch.submit(&model, &requests) {
            Ok(record) => {
                let me = self.clone();
                let handle = tokio::spawn(async move { me.finish(jobs, record).await });
                self.keep(handle);
            }
            Err(_) => refused.extend(jobs),
        }
    }

    /// Completes `jobs` when their batch job's results arrive; a job due earlier fails at its
    /// deadline, and every job of an expired batch job fails when it expires (or at its
    /// deadline, if that comes first).
    async fn finish(&self, jobs: Vec<Job>, record: BatchJobRecord) {
        let done_at = record.done_at;
        let mut ends: Vec<(Timestamp, Job, JobOutcome)> = jobs
            .into_iter()
            .map(|job| {
                if record.expired {
                    let why = "the batch job expired without results".to_owned();
                    (done_at.min(job.deadline), job, JobOutcome::Failed(why))
                } else if done_at <= job.deadline {
                    let served = vec![record.model.clone(); job.images as usize];
                    (done_at, job, JobOutcome::Completed(served))
                } else {
                    let why = "deadline (the batch job's results came later)".to_owned();
                    (job.deadline, job, JobOutcome::Failed(why))
                }
            })
            .collect();
        ends.sort_by_key(|(at, job, _)| (*at, job.index));
        for (at, job, outcome) in ends {
            self.clock.sleep_until(at).await;
            let record = JobRecord {
                index: job.index,
                class: job.class,
                arrival: job.arrival,
                end: self.clock.now(),
                outcome,
                via: Via::Batch,
            };
            self.records
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(record);
        }
    }

    /// Waits for every batch job to complete (call once no job can be added any more).
    pub(crate) async fn finished(&self) {
        loop {
            let handles =
                std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
            if handles.is_empty() {
                return;
            }
            for handle in handles {
                // A panicked task loses its jobs: they show as `lost`, never silently.
                let _ = handle.await;
            }
        }
    }
}

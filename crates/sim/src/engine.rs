//! The engine: one strategy, one scenario, one simulated world, on tokio's paused clock.
//!
//! Each run gets its own current-thread runtime with time paused: tokio jumps straight to the
//! next timer whenever every task waits, so strategies written as ordinary async code with
//! sleeps cover days of simulated time in milliseconds, and, with every random draw seeded
//! from the scenario, the same seed gives the same numbers. `concurrency` workers take jobs in
//! arrival order; a job not done by its deadline is failed (an in-flight call is abandoned, and
//! if the upstream had admitted it, it was billed: that is waste).
//!
//! When a target's pool has a batch API, a worker first asks the strategy where the job goes
//! ([`Strategy::via`](crate::strategy::Strategy::via)); a job placed on the batch API is handed
//! to the batcher ([`crate::batching`]) and the worker takes the next one. Without a batch API
//! the strategy is never asked, so a scenario without one runs exactly as before.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use imagegate_core::clock::add;
use imagegate_core::hints::until;
use imagegate_core::{Clock, GenerateRequest, TokioClock};
use imagegate_mock::sim::{BatchJobRecord, CallOutcome, CallRecord, UpstreamKind};
use imagegate_router::via::Via;
use jiff::Timestamp;

use crate::batching::{Batcher, Queued};
use crate::report::StrategyReport;
use crate::scenario::{Arrival, Scenario};
use crate::strategy::{Job, Served, StrategyName};
use crate::world::World;

/// How one job ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Every image arrived in time; the models that served them.
    Completed(Served),
    /// Given up, or not done by the deadline: why.
    Failed(String),
}

/// One job's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobRecord {
    /// From 0, in arrival order.
    pub index: u64,
    /// Its class (an index into the workload's classes).
    pub class: usize,
    /// When it arrived.
    pub arrival: Timestamp,
    /// When it completed or was reported failed.
    pub end: Timestamp,
    /// How.
    pub outcome: JobOutcome,
    /// Whether it went through the batch API or interactively.
    pub via: Via,
}

/// Everything one run produced: the report row (goodput still 0) and the raw trajectory.
#[derive(Clone, Debug)]
pub struct Run {
    /// The report row; [`crate::simulate`] fills in the goodput.
    pub report: StrategyReport,
    /// Every upstream call, per (provider, project), in arrival order.
    pub calls: BTreeMap<(UpstreamKind, String), Vec<CallRecord>>,
    /// Every job that ended, in the order they ended.
    pub jobs: Vec<JobRecord>,
    /// Every batch job created, per batch API (in pool order), in creation order.
    pub batch_jobs: Vec<BatchJobRecord>,
}

/// The scenario's jobs, in arrival order.
pub fn jobs(scenario: &Scenario) -> Vec<Job> {
    let start = scenario.start;
    let dealt = scenario.workload.deal();
    (0..scenario.workload.jobs)
        .zip(dealt)
        .filter_map(|(index, class_index)| {
            let class = scenario.workload.classes.get(class_index)?;
            let arrival = match scenario.workload.arrival {
                Arrival::Burst => start,
                Arrival::Every(interval) => add(
                    start,
                    interval.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX)),
                ),
            };
            Some(Job {
                index,
                class: class_index,
                arrival,
                deadline: add(arrival, class.deadline),
                images: class.images_per_job,
                request: GenerateRequest::new(format!("simulated job {index}"))
                    .with_priority(class.priority),
            })
        })
        .collect()
}

/// Runs `strategy` over `scenario` on a fresh paused-time runtime in a thread of its own (so it
/// may be called from anywhere, inside another runtime too).
///
/// # Errors
/// A message when the strategy is not built or the runtime could not start.
pub fn run(scenario: &Scenario, strategy: StrategyName) -> Result<Run, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| run_here(scenario, strategy))
            .join()
            .unwrap_or_else(|_| Err(format!("the {strategy} run panicked")))
    })
}

/// [`run`] on the calling thread, which must not be inside a tokio runtime.
fn run_here(scenario: &Scenario, strategy: StrategyName) -> Result<Run, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start the simulation runtime: {e}"))?;
    // A simulated run produces thousands of 429s on purpose; the router would log each one.
    // The report is the output, so the run's own logging goes nowhere.
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        runtime.block_on(drive(scenario, strategy))
    })
}

async fn drive(scenario: &Scenario, name: StrategyName) -> Result<Run, String> {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(scenario.start));
    let world = World::build(scenario, clock.clone());
    let strategy = name.build(&world)?;
    let all_jobs = jobs(scenario);
    let total = all_jobs.len() as u64;
    let queue: Arc<Mutex<VecDeque<Queued>>> = Arc::new(Mutex::new(
        all_jobs.into_iter().map(|job| (job, false)).collect(),
    ));
    let records = Arc::new(Mutex::new(Vec::new()));
    let batcher = world
        .batch_target()
        .map(|t| Batcher::new(t.clone(), clock.clone(), records.clone(), queue.clone()));
    let workers = scenario.client.concurrency.min(total as usize).max(1);
    let mut handles = Vec::with_capacity(workers);
    for _ in 0..workers {
        let (queue, records, clock, strategy, batcher) = (
            queue.clone(),
            records.clone(),
            clock.clone(),
            strategy.clone(),
            batcher.clone(),
        );
        handles.push(tokio::spawn(async move {
            loop {
                let next = queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop_front();
                let Some((job, interactive_only)) = next else {
                    // Jobs the batcher has not submitted yet may come back (refused by the
                    // batch quota): stay while there are any.
                    match &batcher {
                        Some(b) if b.unsubmitted() > 0 => {
                            clock.sleep(Duration::from_millis(1)).await;
                            continue;
                        }
                        _ => break,
                    }
                };
                clock.sleep_until(job.arrival).await;
                let now = clock.now();
                if let Some(batcher) = &batcher
                    && !interactive_only
                    && now < job.deadline
                    && strategy.via(&job).await == Via::Batch
                {
                    batcher.add(job);
                    continue;
                }
                let outcome = if now >= job.deadline {
                    JobOutcome::Failed("deadline passed before a worker was free".to_owned())
                } else {
                    let budget = until(now, job.deadline);
                    match tokio::time::timeout(budget, strategy.run(&job)).await {
                        Ok(Ok(served)) => JobOutcome::Completed(served),
                        Ok(Err(e)) => JobOutcome::Failed(e.kind().as_str().to_owned()),
                        Err(_) => JobOutcome::Failed("deadline".to_owned()),
                    }
                };
                let record = JobRecord {
                    index: job.index,
                    class: job.class,
                    arrival: job.arrival,
                    end: clock.now(),
                    outcome,
                    via: Via::Interactive,
                };
                records
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(record);
            }
        }));
    }
    for handle in handles {
        // A panicked worker loses its job: it shows as `lost`, never silently.
        let _ = handle.await;
    }
    if let Some(batcher) = &batcher {
        batcher.finished().await;
    }
    let batch_jobs: Vec<BatchJobRecord> = world.batches.iter().flat_map(|b| b.jobs()).collect();
    let jobs = std::mem::take(&mut *records.lock().unwrap_or_else(PoisonError::into_inner));
    let calls: BTreeMap<_, _> = world
        .upstreams
        .iter()
        .map(|(key, upstream)| (key.clone(), upstream.calls()))
        .collect();
    let report = measure(name, scenario, total, &jobs, &calls, &batch_jobs);
    Ok(Run {
        report,
        calls,
        jobs,
        batch_jobs,
    })
}

/// Rounds to `places` decimals, for stable reports.
pub(crate) fn round(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

fn measure(
    name: StrategyName,
    scenario: &Scenario,
    total: u64,
    jobs: &[JobRecord],
    calls: &BTreeMap<(UpstreamKind, String), Vec<CallRecord>>,
    batch_jobs: &[BatchJobRecord],
) -> StrategyReport {
    let start = scenario.start;
    let prices = crate::providers::prices();
    let price = |model: &str| prices.per_image(model, None).unwrap_or(0.0);
    // One image at the batch price: the price table's batch factor (half) applied.
    let one = GenerateRequest::new("one image");
    let batch_price = |model: &str| prices.estimate(&one, model, true).unwrap_or(0.0);
    let all = calls.values().flatten();
    let (mut upstream_calls, mut upstream_429, mut upstream_503, mut cost) = (0, 0, 0, 0.0);
    for call in all {
        upstream_calls += 1;
        match call.status {
            429 => upstream_429 += 1,
            503 => upstream_503 += 1,
            _ => {}
        }
        if call.outcome == CallOutcome::Served {
            cost += price(&call.model) * f64::from(call.images);
        }
    }
    let mut batch_images = 0;
    for job in batch_jobs.iter().filter(|j| !j.expired) {
        batch_images += job.images;
        cost += batch_price(&job.model) * job.images as f64;
    }
    let mut completed = 0;
    let mut failed = 0;
    let mut delivered = 0.0;
    let mut last_end = start;
    for job in jobs {
        last_end = last_end.max(job.end);
        match &job.outcome {
            JobOutcome::Completed(served) => {
                completed += 1;
                delivered += served
                    .iter()
                    .map(|m| match job.via {
                        Via::Batch => batch_price(m),
                        Via::Interactive => price(m),
                    })
                    .sum::<f64>();
            }
            JobOutcome::Failed(_) => failed += 1,
        }
    }
    let makespan = Duration::from_millis(
        u64::try_from(last_end.as_millisecond() - start.as_millisecond()).unwrap_or(0),
    );
    StrategyReport {
        strategy: name.as_str().to_owned(),
        completed,
        failed,
        lost: total.saturating_sub(completed + failed),
        upstream_calls,
        upstream_429,
        upstream_503,
        makespan_s: round(makespan.as_secs_f64(), 3),
        goodput: 0.0,
        of_bound: 0.0,
        cost_usd: round(cost, 4),
        wasted_usd: round((cost - delivered).max(0.0), 4),
        batch_images,
        classes: crate::report::classes(scenario, jobs),
    }
}

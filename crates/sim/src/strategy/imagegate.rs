//! `imagegate`: the router (imagegate-router) over the scenario's targets, configured the way a
//! user would configure it: each target's pool is (provider, project, the target's `pool` name
//! or its model) with the limits the client believes (none when it must learn them), its day
//! ending where the provider's does, and the router's retry jitter seeded from the scenario.
//!
//! When a target's pool has a batch API, each job is placed by `[client.batch] via`: `auto` runs
//! the CLI's own policy (`imagegate_router::via::plan`) at the job's arrival, over the job plus
//! the images of jobs running interactively that no call is carrying yet (a call in flight is
//! already counted in its pool's usage; the router's attempt events tell which), the router's
//! pool statuses, the client's concurrency, the upstream latency's maximum and the batch
//! quota's room.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use imagegate_core::quota::{PoolConfig, PoolId};
use imagegate_core::{Clock, Error, ImageProvider, Limits};
use imagegate_router::via::{BatchAhead, PoolAhead, Via, ViaInput, plan};
use imagegate_router::{Event, Policy, Router, Target};
use tokio::sync::mpsc::UnboundedReceiver;

use super::{Job, Served, Strategy};
use crate::scenario::{ClientBatch, ViaMode};
use crate::world::{SimTarget, World, derive_seed};

/// Whether this build can run the router strategy.
pub(crate) const BUILT: bool = true;

/// The router strategy.
#[derive(Debug)]
pub struct Imagegate {
    router: Router,
    clock: Arc<dyn Clock>,
    /// The target whose batch API takes batch work, and how the client uses it.
    batch: Option<(SimTarget, ClientBatch)>,
    /// What `auto` plans with besides the pools: a call's latency, the jobs in flight at once.
    latency: std::time::Duration,
    concurrency: u64,
    /// Images of jobs running interactively now (they compete with a new job's for the pools).
    running: AtomicU64,
    /// The router's events (with a batch API only), and the calls in flight they add up to.
    events: Option<Mutex<(UnboundedReceiver<Event>, u64)>>,
}

/// Counts a job as running interactively while it lives.
struct Running<'a>(&'a AtomicU64, u64);

impl<'a> Running<'a> {
    fn start(counter: &'a AtomicU64, images: u32) -> Self {
        let images = u64::from(images);
        counter.fetch_add(images, Ordering::Relaxed);
        Running(counter, images)
    }
}

pub(crate) fn build(world: &World) -> Result<Arc<dyn Strategy>, String> {
    let knobs = world.router;
    let mut policy = Policy::default();
    if let Some(edf) = knobs.earliest_deadline_first {
        policy = policy.with_earliest_deadline_first(edf);
    }
    if let Some(quantile) = knobs.latency_quantile {
        policy = policy.with_latency_quantile(quantile);
    }
    if let Some(aging) = knobs.background_aging {
        policy = policy.with_background_aging(aging);
    }
    let mut builder = Router::builder(world.clock.clone())
        .policy(policy)
        .seed(derive_seed(world.seed, "strategy/imagegate"))
        .prices(crate::providers::prices());
    for t in &world.targets {
        let id = PoolId::new(t.kind.as_str(), t.project.clone(), t.pool.clone());
        let pool = PoolConfig::new(
            id,
            t.limits.unwrap_or(Limits::NONE),
            crate::providers::zone(t.kind),
        );
        let provider: Arc<dyn ImageProvider> = t.upstream.clone();
        let name = format!("{}/{}/{}", t.kind.as_str(), t.project, t.model);
        builder = builder.target(Target::new(name, provider, t.model.clone(), pool));
    }
    let batch = world
        .batch_target()
        .map(|t| (t.clone(), world.batch_policy));
    let events = if batch.is_some() {
        let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
        builder = builder.events(sender);
        Some(Mutex::new((receiver, 0)))
    } else {
        None
    };
    let router = builder.build().map_err(|e| e.to_string())?;
    Ok(Arc::new(Imagegate {
        router,
        clock: world.clock.clone(),
        batch,
        events,
        latency: world.latency.max,
        concurrency: u64::try_from(world.concurrency).unwrap_or(u64::MAX),
        running: AtomicU64::new(0),
    }))
}

#[async_trait]
impl Strategy for Imagegate {
    async fn run(&self, job: &Job) -> Result<Served, Error> {
        let _running = self
            .batch
            .is_some()
            .then(|| Running::start(&self.running, job.images));
        let request = job
            .request
            .clone()
            .with_count(job.images)
            .with_deadline(job.deadline);
        let response = self.router.generate(&request).await?;
        Ok(vec![
            response.served_by.model.clone();
            response.images.len()
        ])
    }

    async fn via(&self, job: &Job) -> Via {
        let Some((target, client)) = &self.batch else {
            return Via::Interactive;
        };
        let room = target.batch.as_ref().and_then(|b| b.room(&job.request));
        match client.via {
            ViaMode::Interactive => return Via::Interactive,
            ViaMode::Batch => {
                return if room.is_none_or(|r| r >= u64::from(job.images)) {
                    Via::Batch
                } else {
                    Via::Interactive
                };
            }
            ViaMode::Auto => {}
        }
        let statuses = self.router.pool_statuses().await.unwrap_or_default();
        let in_flight = self.calls_in_flight();
        let waiting = self
            .running
            .load(Ordering::Relaxed)
            .saturating_sub(in_flight);
        let requests = waiting + u64::from(job.images);
        let mut input = ViaInput::new(self.clock.now(), job.deadline, requests)
            .with_latency(self.latency)
            .with_concurrency(self.concurrency)
            .with_batch(
                BatchAhead::default()
                    .with_turnaround(client.turnaround)
                    .with_min_deadline(client.min_deadline)
                    .with_capacity(room),
            );
        for pool in statuses.iter().filter_map(PoolAhead::from_status) {
            input = input.with_pool(pool);
        }
        // This job is the last of the work: it goes where the plan puts the last request.
        plan(&input).via(requests - 1)
    }
}

impl Imagegate {
    /// Calls the router has started and not finished, from its events so far.
    fn calls_in_flight(&self) -> u64 {
        let Some(events) = &self.events else {
            return 0;
        };
        let mut guard = events.lock().unwrap_or_else(PoisonError::into_inner);
        let (receiver, in_flight) = &mut *guard;
        while let Ok(event) = receiver.try_recv() {
            match event {
                Event::AttemptStarted { .. } => *in_flight += 1,
                Event::AttemptFinished { .. } => *in_flight = in_flight.saturating_sub(1),
                _ => {}
            }
        }
        *in_flight
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(self.1, Ordering::Relaxed);
    }
}

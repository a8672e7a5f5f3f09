//! The strategies compared: each gets the same jobs, targets and concurrency, and turns one job
//! into images (or gives up) through the simulated upstreams.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use imagegate_core::{Error, GenerateRequest, GenerateResponse, ImageProvider};
use imagegate_router::via::Via;
use jiff::Timestamp;

use crate::world::{SimTarget, World};

mod fixed_interval;
mod imagegate;
mod key_rotation;
mod naive_backoff;
mod oracle;

pub use fixed_interval::{DEFAULT_RPM_LIMIT, FixedInterval, RETRIES};
pub use imagegate::Imagegate;
pub use key_rotation::KeyRotation;
pub use naive_backoff::{ATTEMPTS, NaiveBackoff, REQUESTS_PER_MINUTE};
pub use oracle::Oracle;

/// One job: its request (one image at a time for the published strategies) and its deadline.
#[derive(Clone, Debug)]
pub struct Job {
    /// From 0, in arrival order.
    pub index: u64,
    /// Its class (an index into the workload's classes).
    pub class: usize,
    /// When it arrives.
    pub arrival: Timestamp,
    /// When it is no longer wanted.
    pub deadline: Timestamp,
    /// Images it needs.
    pub images: u32,
    /// The request for one image (no model: strategies choose).
    pub request: GenerateRequest,
}

/// The models that served a job's images, one per image, when it completed.
pub type Served = Vec<String>;

/// A way of running jobs against the upstreams.
#[async_trait]
pub trait Strategy: Send + Sync + fmt::Debug {
    /// Runs one job to completion (the models that served its images) or gives up.
    async fn run(&self, job: &Job) -> Result<Served, Error>;

    /// Where `job` goes, asked when a worker takes it (at its arrival or later), only when a
    /// target's pool has a batch API: [`Via::Batch`] hands it to the engine, which sends it to
    /// the batch API of [`World::batch_target`] without holding a worker; the default (the
    /// published strategies, which know no batch API) is [`Via::Interactive`]: [`run`](Self::run).
    async fn via(&self, _job: &Job) -> Via {
        Via::Interactive
    }
}

/// The strategies by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StrategyName {
    /// Knows the true pools and sends exactly when capacity exists: the physical limit.
    Oracle,
    /// Seed 001: tenacity exponential backoff, a model fallback chain, an 8-per-minute counter.
    NaiveBackoff,
    /// Seed 003: one request every 60/RPM seconds, three tries.
    FixedInterval,
    /// Seed 002: round-robin over the projects' keys.
    KeyRotation,
    /// imagegate's router.
    Imagegate,
}

impl StrategyName {
    /// Every strategy, in report order.
    pub const ALL: [StrategyName; 5] = [
        StrategyName::Oracle,
        StrategyName::NaiveBackoff,
        StrategyName::FixedInterval,
        StrategyName::KeyRotation,
        StrategyName::Imagegate,
    ];

    /// The name on the command line and in reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            StrategyName::Oracle => "oracle",
            StrategyName::NaiveBackoff => "naive-backoff",
            StrategyName::FixedInterval => "fixed-interval",
            StrategyName::KeyRotation => "key-rotation",
            StrategyName::Imagegate => "imagegate",
        }
    }

    /// Whether this build can run it.
    pub fn is_built(self) -> bool {
        self != StrategyName::Imagegate || imagegate::BUILT
    }

    /// The strategy for `world`.
    ///
    /// # Errors
    /// A message when this build cannot run it.
    pub fn build(self, world: &World) -> Result<Arc<dyn Strategy>, String> {
        Ok(match self {
            StrategyName::Oracle => Arc::new(Oracle::new(world)),
            StrategyName::NaiveBackoff => Arc::new(NaiveBackoff::new(world)),
            StrategyName::FixedInterval => Arc::new(FixedInterval::new(world)),
            StrategyName::KeyRotation => Arc::new(KeyRotation::new(world)),
            StrategyName::Imagegate => imagegate::build(world)?,
        })
    }
}

impl fmt::Display for StrategyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StrategyName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        StrategyName::ALL
            .into_iter()
            .find(|n| n.as_str() == s.trim())
            .ok_or_else(|| {
                let names: Vec<_> = StrategyName::ALL.iter().map(|n| n.as_str()).collect();
                format!(
                    "unknown strategy `{s}`: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// Sends `job`'s one-image request to `target`'s model: one upstream call.
pub(crate) async fn call(target: &SimTarget, job: &Job) -> Result<GenerateResponse, Error> {
    let request = job.request.clone().with_model(target.model.clone());
    target.upstream.generate(&request).await
}

/// The model that served a response.
pub(crate) fn served_model(response: &GenerateResponse) -> String {
    response.served_by.model.clone()
}

//! `fixed-interval`: the `RateLimitedGenerator` (Solution 1) of the public article on the Gemini 3.1 Flash Image Preview 429,
//! reproduced statement by statement.
//!
//! ```python
//! def __init__(self, api_key, rpm_limit=10):
//!     self.interval = 60.0 / rpm_limit
//!     self.last_request_time = 0
//! def _wait_for_rate_limit(self):
//!     elapsed = time.time() - self.last_request_time
//!     if elapsed < self.interval:
//!         time.sleep(self.interval - elapsed)
//!     self.last_request_time = time.time()
//! def generate(self, prompt, output_path, retries=3):
//!     for attempt in range(retries):
//!         self._wait_for_rate_limit()
//!         try:
//!             response = requests.post(...)
//!             if response.status_code == 200: ...; return True
//!             elif response.status_code == 429:
//!                 wait = (2 ** attempt) + random.uniform(0, 2)
//!                 time.sleep(wait)
//!         except Exception as e:
//!             time.sleep(2)
//!     return False
//! ```
//!
//! Adaptations: one endpoint, the scenario's first target; `rpm_limit` is that target's
//! configured `limits.rpm` when the client knows it, else the article's default 10. One generator
//! is shared by all `concurrency` workers, unlocked, as the threads of its `ThreadPoolExecutor`
//! would share it: workers that read `last_request_time` together sleep together and send
//! together. Any other status (a 503, a 402) falls through both branches to the next attempt
//! without sleeping, as in the article. The simulated upstream never raises a transport exception,
//! so the `except` branch does not occur.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use imagegate_core::{Error, ErrorKind, clock::Clock};
use jiff::Timestamp;

use super::{Job, Served, Strategy, call, served_model};
use crate::world::{SimTarget, World, derive_seed};

/// `rpm_limit=10`.
pub const DEFAULT_RPM_LIMIT: u64 = 10;
/// `retries=3`.
pub const RETRIES: u32 = 3;

/// Seed 003's generator.
#[derive(Debug)]
pub struct FixedInterval {
    clock: Arc<dyn Clock>,
    target: Option<SimTarget>,
    interval: Duration,
    last_request_time: Mutex<Option<Timestamp>>,
    rng: Mutex<fastrand::Rng>,
}

impl FixedInterval {
    /// The generator for `world`'s first target.
    pub fn new(world: &World) -> Self {
        let target = world.targets.first().cloned();
        let rpm_limit = target
            .as_ref()
            .and_then(|t| t.limits)
            .and_then(|l| l.rpm)
            .filter(|rpm| *rpm > 0)
            .unwrap_or(DEFAULT_RPM_LIMIT);
        FixedInterval {
            clock: world.clock.clone(),
            target,
            interval: Duration::from_secs_f64(60.0 / rpm_limit as f64),
            // `last_request_time = 0`: the epoch, so the first request never waits.
            last_request_time: Mutex::new(None),
            rng: Mutex::new(fastrand::Rng::with_seed(derive_seed(
                world.seed,
                "strategy/fixed-interval",
            ))),
        }
    }

    /// The interval between requests: `60 / rpm_limit`.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    async fn wait_for_rate_limit(&self) {
        let now = self.clock.now();
        let last = *self
            .last_request_time
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(last) = last {
            let elapsed = imagegate_core::hints::until(last, now);
            if elapsed < self.interval {
                self.clock.sleep(self.interval - elapsed).await;
            }
        }
        let now = self.clock.now();
        *self
            .last_request_time
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now);
    }

    async fn generate(&self, job: &Job) -> Result<String, Error> {
        let Some(target) = &self.target else {
            return Err(Error::config("the scenario has no target"));
        };
        let mut last_error = None;
        for attempt in 0..RETRIES {
            self.wait_for_rate_limit().await;
            match call(target, job).await {
                Ok(response) => return Ok(served_model(&response)),
                Err(e) if e.http_status() == Some(429) => {
                    let u = self
                        .rng
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .f64();
                    let wait = 2f64.powi(attempt as i32) + 2.0 * u;
                    self.clock.sleep(Duration::from_secs_f64(wait)).await;
                    last_error = Some(e);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::new(ErrorKind::Unexpected, "no attempt made")))
    }
}

#[async_trait]
impl Strategy for FixedInterval {
    async fn run(&self, job: &Job) -> Result<Served, Error> {
        let mut served = Vec::new();
        for _ in 0..job.images {
            served.push(self.generate(job).await?);
        }
        Ok(served)
    }
}

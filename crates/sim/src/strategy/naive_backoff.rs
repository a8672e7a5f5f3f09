//! `naive-backoff`: the Python `GeminiImageClient` (the "Python Production Client") of
//! the public guide "How to Fix Gemini Image Generation Error 429: Complete Developer Guide (2025)", reproduced statement by statement.
//!
//! ```python
//! requests_per_minute: int = 8  # Stay 20% under limit
//! MODELS = ["gemini-2.0-flash-exp", "gemini-2.5-flash-image"]
//! def _rate_limit(self):
//!     current_time = time.time()
//!     if current_time - self._minute_start >= 60:
//!         self._request_count = 0
//!         self._minute_start = current_time
//!     if self._request_count >= self.config.requests_per_minute:
//!         wait_time = 60 - (current_time - self._minute_start)
//!         if wait_time > 0:
//!             time.sleep(wait_time)
//!             self._request_count = 0
//!             self._minute_start = time.time()
//!     self._request_count += 1
//! @retry(wait=wait_random_exponential(multiplier=1, max=60), stop=stop_after_attempt(5))
//! def _generate_single(self, prompt, model): self._rate_limit(); ...
//! def generate(self, prompt):
//!     for model in self.MODELS:
//!         try: return self._generate_single(prompt, model)
//!         except Exception as e:
//!             if "429" in str(e) or "RESOURCE_EXHAUSTED" in str(e): last_error = e; continue
//!             raise
//! ```
//!
//! Adaptations: the model chain is the scenario's targets in preference order; one client (one
//! counter, created at the scenario's start) is shared by all `concurrency` workers, unlocked,
//! as threads would share it. tenacity's `wait_random_exponential(multiplier=1, max=60)` waits
//! `uniform(0, min(60, 2 ** (n - 1)))` after failed attempt `n`, and retries every exception.
//! After the fifth failure tenacity raises `RetryError`, whose `str()` is
//! `RetryError[<Future at 0x... state=finished raised ClientError>]`: it contains neither
//! "429" nor "RESOURCE_EXHAUSTED", so `generate` re-raises it and **the fallback chain is never
//! reached**. That is what the code does, so that is what this strategy does.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use imagegate_core::{Error, ErrorKind, clock::Clock};
use jiff::Timestamp;

use super::{Job, Served, Strategy, call, served_model};
use crate::world::{SimTarget, World, derive_seed};

/// `RateLimitConfig.requests_per_minute`.
pub const REQUESTS_PER_MINUTE: u64 = 8;
/// `stop_after_attempt(5)`.
pub const ATTEMPTS: u32 = 5;
/// `wait_random_exponential(max=60)`.
const MAX_WAIT_S: f64 = 60.0;

#[derive(Debug)]
struct Counter {
    request_count: u64,
    minute_start: Timestamp,
}

/// Seed 001's client.
#[derive(Debug)]
pub struct NaiveBackoff {
    clock: Arc<dyn Clock>,
    models: Vec<SimTarget>,
    counter: Mutex<Counter>,
    rng: Mutex<fastrand::Rng>,
}

/// How `generate` ends when `_generate_single` raised: tenacity's `RetryError`.
#[derive(Debug)]
struct RetryError {
    last: Error,
}

impl RetryError {
    /// `"429" in str(e) or "RESOURCE_EXHAUSTED" in str(e)` for a `RetryError`: its `str()`
    /// names only the future, never the wrapped exception's text.
    fn str_mentions_rate_limit(&self) -> bool {
        false
    }
}

impl NaiveBackoff {
    /// The client over `world`'s targets, created at the simulated start.
    pub fn new(world: &World) -> Self {
        NaiveBackoff {
            clock: world.clock.clone(),
            models: world.targets.clone(),
            counter: Mutex::new(Counter {
                request_count: 0,
                minute_start: world.clock.now(),
            }),
            rng: Mutex::new(fastrand::Rng::with_seed(derive_seed(
                world.seed,
                "strategy/naive-backoff",
            ))),
        }
    }

    /// `_rate_limit`: check, maybe sleep (other workers run meanwhile, unlocked), count.
    async fn rate_limit(&self) {
        let current_time = self.clock.now();
        let wait = {
            let mut c = self.counter.lock().unwrap_or_else(PoisonError::into_inner);
            if seconds_between(c.minute_start, current_time) >= 60.0 {
                c.request_count = 0;
                c.minute_start = current_time;
            }
            if c.request_count >= REQUESTS_PER_MINUTE {
                Some(60.0 - seconds_between(c.minute_start, current_time))
            } else {
                None
            }
        };
        if let Some(wait_time) = wait
            && wait_time > 0.0
        {
            self.clock.sleep(Duration::from_secs_f64(wait_time)).await;
            let now = self.clock.now();
            let mut c = self.counter.lock().unwrap_or_else(PoisonError::into_inner);
            c.request_count = 0;
            c.minute_start = now;
        }
        let mut c = self.counter.lock().unwrap_or_else(PoisonError::into_inner);
        c.request_count += 1;
    }

    /// `wait_random_exponential(multiplier=1, max=60)` after failed attempt `attempt_number`.
    fn backoff(&self, attempt_number: u32) -> Duration {
        let high = 2f64
            .powi(attempt_number.saturating_sub(1) as i32)
            .min(MAX_WAIT_S);
        let u = self
            .rng
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .f64();
        Duration::from_secs_f64(u * high)
    }

    /// `_generate_single` under `@retry`.
    async fn generate_single(&self, job: &Job, target: &SimTarget) -> Result<String, RetryError> {
        let mut attempt_number = 1;
        loop {
            self.rate_limit().await;
            match call(target, job).await {
                Ok(response) => return Ok(served_model(&response)),
                Err(last) if attempt_number >= ATTEMPTS => return Err(RetryError { last }),
                Err(_) => {
                    self.clock.sleep(self.backoff(attempt_number)).await;
                    attempt_number += 1;
                }
            }
        }
    }

    /// `generate`: the model chain.
    async fn generate(&self, job: &Job) -> Result<String, Error> {
        let mut last_error = None;
        for target in &self.models {
            match self.generate_single(job, target).await {
                Ok(model) => return Ok(model),
                Err(e) if e.str_mentions_rate_limit() => {
                    last_error = Some(e.last);
                    continue;
                }
                Err(e) => return Err(e.last),
            }
        }
        Err(last_error.unwrap_or_else(|| Error::new(ErrorKind::Unexpected, "All models exhausted")))
    }
}

fn seconds_between(from: Timestamp, to: Timestamp) -> f64 {
    (to.as_millisecond() - from.as_millisecond()) as f64 / 1_000.0
}

#[async_trait]
impl Strategy for NaiveBackoff {
    async fn run(&self, job: &Job) -> Result<Served, Error> {
        let mut served = Vec::new();
        for _ in 0..job.images {
            served.push(self.generate(job).await?);
        }
        Ok(served)
    }
}

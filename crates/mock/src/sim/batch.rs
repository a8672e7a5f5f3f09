//! [`SimulatedBatch`]: the batch API of one true pool (Gemini's Batch API), as the simulator
//! models it: a job of many requests is accepted or refused as a whole when it is created, and
//! all its results arrive together after a turnaround drawn from a seeded range. A job whose
//! turnaround would pass [`BATCH_EXPIRY`] expires then, with no results (and nothing billed).
//!
//! Its quota is its own, separate from the interactive pool's: the tokens of the requests in
//! jobs not yet finished (Gemini's "enqueued tokens" per model). A job that would pass it is
//! refused (the real service answers the create with a 429) and nothing is enqueued. Its price
//! is not here: the simulator's report applies the price table's batch factor to every image
//! a job returns.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use imagegate_core::clock::add;
use imagegate_core::{Clock, GenerateRequest};
use jiff::Timestamp;

use super::upstream::{Latency, usage_of};
use std::sync::Arc;

/// How long a batch job may stay pending or running: Gemini's Batch API expires a job after
/// 48 hours, and an expired job has no results.
pub const BATCH_EXPIRY: Duration = Duration::from_secs(48 * 3_600);

/// One pool's batch API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// How long a job takes from creation to its results (uniform over the range).
    pub turnaround: Latency,
    /// The most tokens enqueued at once (requests of unfinished jobs); `None`: no limit.
    pub enqueued_tokens: Option<u64>,
    /// The seed of the turnaround draws.
    pub seed: u64,
}

/// One batch job, as the upstream saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchJobRecord {
    /// When it was created.
    pub submitted_at: Timestamp,
    /// When its results are ready (or, expired, when it expired).
    pub done_at: Timestamp,
    /// It expired before finishing ([`BATCH_EXPIRY`]): no results, nothing billed.
    pub expired: bool,
    /// The model of its requests.
    pub model: String,
    /// Its requests.
    pub requests: u64,
    /// The images they ask for (each billed at the batch price when the job is done).
    pub images: u64,
    /// Their tokens (what counts against the enqueued-token quota until the job is done).
    pub tokens: u64,
}

/// A job the batch quota refused: nothing was enqueued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchFull {
    /// Tokens the job needed.
    pub needed: u64,
    /// Tokens the quota had left.
    pub room: u64,
    /// When the earliest unfinished job ends (and gives its tokens back), if any.
    pub frees_at: Option<Timestamp>,
}

#[derive(Debug)]
struct State {
    rng: fastrand::Rng,
    jobs: Vec<BatchJobRecord>,
}

/// The batch API of one pool.
#[derive(Debug)]
pub struct SimulatedBatch {
    config: BatchConfig,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

impl SimulatedBatch {
    /// A batch API with `config`, on `clock`.
    pub fn new(config: BatchConfig, clock: Arc<dyn Clock>) -> Self {
        SimulatedBatch {
            state: Mutex::new(State {
                rng: fastrand::Rng::with_seed(config.seed),
                jobs: Vec::new(),
            }),
            config,
            clock,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BatchConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a push with no panic in between.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn enqueued(state: &State, now: Timestamp) -> u64 {
        state
            .jobs
            .iter()
            .filter(|j| j.done_at > now)
            .map(|j| j.tokens)
            .sum()
    }

    /// Tokens enqueued now (in jobs not yet done).
    pub fn enqueued_tokens(&self) -> u64 {
        Self::enqueued(&self.lock(), self.clock.now())
    }

    /// How many more requests like `request` the quota takes now; `None`: no limit.
    pub fn room(&self, request: &GenerateRequest) -> Option<u64> {
        let limit = self.config.enqueued_tokens?;
        let each = usage_of(request).tokens.max(1);
        Some(limit.saturating_sub(self.enqueued_tokens()) / each)
    }

    /// Creates a job of `requests` for `model` now: its record (when its results are ready, or
    /// that it expires), or the refusal when its tokens do not fit the quota (nothing enqueued
    /// then).
    ///
    /// # Errors
    /// [`BatchFull`] when the job would pass the enqueued-token quota.
    pub fn submit(
        &self,
        model: &str,
        requests: &[GenerateRequest],
    ) -> Result<BatchJobRecord, BatchFull> {
        let now = self.clock.now();
        let (mut tokens, mut images) = (0u64, 0u64);
        for request in requests {
            let usage = usage_of(request);
            tokens = tokens.saturating_add(usage.tokens);
            images = images.saturating_add(usage.images);
        }
        let mut state = self.lock();
        if let Some(limit) = self.config.enqueued_tokens {
            let room = limit.saturating_sub(Self::enqueued(&state, now));
            if tokens > room {
                let frees_at = state
                    .jobs
                    .iter()
                    .filter(|j| j.done_at > now)
                    .map(|j| j.done_at)
                    .min();
                return Err(BatchFull {
                    needed: tokens,
                    room,
                    frees_at,
                });
            }
        }
        let turnaround = self.config.turnaround.draw(&mut state.rng);
        let expired = turnaround > BATCH_EXPIRY;
        let record = BatchJobRecord {
            submitted_at: now,
            done_at: add(now, turnaround.min(BATCH_EXPIRY)),
            expired,
            model: model.to_owned(),
            requests: requests.len() as u64,
            images,
            tokens,
        };
        state.jobs.push(record.clone());
        Ok(record)
    }

    /// Every job created so far, in creation order.
    pub fn jobs(&self) -> Vec<BatchJobRecord> {
        self.lock().jobs.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use imagegate_core::ManualClock;

    use super::*;

    fn batch(enqueued_tokens: Option<u64>, clock: Arc<ManualClock>) -> SimulatedBatch {
        SimulatedBatch::new(
            BatchConfig {
                turnaround: Latency {
                    min: Duration::from_secs(120),
                    max: Duration::from_secs(600),
                },
                enqueued_tokens,
                seed: 3,
            },
            clock,
        )
    }

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new("2026-03-07T10:00:00Z".parse().unwrap()))
    }

    #[test]
    fn a_job_ends_within_the_turnaround_and_draws_are_seeded() {
        let draws = || {
            let clock = clock();
            let b = batch(None, clock.clone());
            let requests = vec![GenerateRequest::new("x"); 3];
            (0..20)
                .map(|_| b.submit("m", &requests).unwrap().done_at)
                .collect::<Vec<_>>()
        };
        let first = draws();
        assert_eq!(first, draws());
        let start: Timestamp = "2026-03-07T10:00:00Z".parse().unwrap();
        for done in &first {
            let secs = done.as_second() - start.as_second();
            assert!((120..=600).contains(&secs), "{secs}");
        }
        assert!(
            first.iter().any(|d| *d != first[0]),
            "a range, not one value"
        );
    }

    #[test]
    fn the_enqueued_token_quota_refuses_a_whole_job_until_earlier_ones_finish() {
        let clock = clock();
        let request = GenerateRequest::new("x");
        let each = usage_of(&request).tokens;
        let b = batch(Some(each * 5), clock.clone());
        assert_eq!(b.room(&request), Some(5));
        let done = b.submit("m", &vec![request.clone(); 4]).unwrap().done_at;
        assert_eq!(b.room(&request), Some(1));
        let full = b.submit("m", &vec![request.clone(); 2]).unwrap_err();
        assert_eq!(full.needed, 2 * each);
        assert_eq!(full.room, each);
        assert_eq!(full.frees_at, Some(done));
        assert_eq!(b.jobs().len(), 1, "a refused job enqueues nothing");
        clock.set(done);
        assert_eq!(b.enqueued_tokens(), 0);
        b.submit("m", &vec![request; 5]).unwrap();
        let jobs = b.jobs();
        assert_eq!((jobs[1].requests, jobs[1].images), (5, 5));
        assert_eq!(batch(None, clock).room(&GenerateRequest::new("x")), None);
    }

    #[test]
    fn a_job_past_the_expiry_expires_at_48_hours() {
        let clock = clock();
        let slow = SimulatedBatch::new(
            BatchConfig {
                turnaround: Latency::fixed(Duration::from_secs(50 * 3_600)),
                enqueued_tokens: None,
                seed: 1,
            },
            clock.clone(),
        );
        let job = slow.submit("m", &[GenerateRequest::new("x")]).unwrap();
        assert!(job.expired);
        assert_eq!(job.done_at, add(clock.now(), BATCH_EXPIRY));
        let on_time = batch(None, clock)
            .submit("m", &[GenerateRequest::new("x")])
            .unwrap();
        assert!(!on_time.expired);
    }
}

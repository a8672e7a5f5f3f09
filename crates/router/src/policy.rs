//! [`Policy`]: the knobs of the decision rules (retries, backoff, timeouts, wait versus
//! fallback, how long a request without a deadline may queue).

use std::time::Duration;

use crate::options::MaxWait;

/// How the router reacts to errors and waits.
///
/// The defaults: unavailable/connect are retried twice on the same target
/// with full-jitter backoff (500 ms base, 30 s cap) before moving on; timeouts are not retried
/// (the image may already have been billed); a target that is briefly rate limited is left for
/// the next one at once (no waiting for a preferred target).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Policy {
    /// Retries on the same target after `unavailable` or `connect` (and `timeout` when
    /// [`retry_timeouts`](Self::retry_timeouts) is set) before moving on to the next target.
    pub retries: u32,
    /// The backoff's base: retry `n` (from 0) waits a uniformly random time in
    /// `0..=min(cap, base * 2^n)` ("full jitter"), unless the upstream said how long.
    pub backoff_base: Duration,
    /// The backoff's cap.
    pub backoff_cap: Duration,
    /// Retry timeouts like `unavailable`. Off by default: a timed-out request may already have
    /// been generated and billed, so a retry may pay twice.
    pub retry_timeouts: bool,
    /// How many 429s one request takes from one target before leaving it for the rest of the
    /// request (a bound on a target that keeps refusing while its pool looks open).
    pub rate_limit_retries: u32,
    /// Wait versus fallback: wait up to this long for an earlier (preferred) target of the
    /// route instead of falling back to a later one at once. Zero (the default) always falls
    /// back when the later target can send now.
    pub wait_for_preferred: Duration,
    /// Wait versus fallback: wait only when the fallback costs at least this much more per call
    /// (US dollars) than the preferred target. Zero: any wait within
    /// [`wait_for_preferred`](Self::wait_for_preferred) is taken.
    pub min_saving_usd: f64,
    /// How long a request without a deadline may queue for capacity. `None` (the default):
    /// as long as it takes (a queue, not a failure).
    pub max_queue_wait: Option<Duration>,
    /// How long a request may wait for capacity before failing at once with the instant it
    /// returns, when its [`RequestOptions`](crate::RequestOptions) do not say. Default:
    /// [`MaxWait::Unbounded`] (a queue).
    pub max_wait: MaxWait,
    /// Among waiting requests of one priority, the one with the earliest deadline takes
    /// capacity first (on by default); off: the one that started first. Measured in
    /// `docs/performance.md`.
    pub earliest_deadline_first: bool,
    /// A background request that has waited this long takes capacity as an interactive one
    /// due then, so interactive work can delay background work but never starve it.
    pub background_aging: Duration,
    /// Which percentile of a target's latest call latencies a call is expected to take: a call
    /// is not started when the deadline comes before the call would end, and a request whose
    /// earliest start plus this is past its deadline fails at once. `None` never sheds.
    pub latency_quantile: Option<f64>,
}

/// The default [`Policy::background_aging`].
pub const DEFAULT_BACKGROUND_AGING: Duration = Duration::from_secs(300);

/// The default [`Policy::latency_quantile`]: over the latest 64 calls, the slowest, so that a
/// call started is one that finishes in time (a borderline call that misses is paid for and
/// lost, while the capacity it took could have served a request with more time left).
/// Measured against 0.95 in `docs/performance.md`.
pub const DEFAULT_LATENCY_QUANTILE: f64 = 0.99;

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retries: 2,
            backoff_base: Duration::from_millis(500),
            backoff_cap: Duration::from_secs(30),
            retry_timeouts: false,
            rate_limit_retries: 8,
            wait_for_preferred: Duration::ZERO,
            min_saving_usd: 0.0,
            max_queue_wait: None,
            max_wait: MaxWait::Unbounded,
            earliest_deadline_first: true,
            background_aging: DEFAULT_BACKGROUND_AGING,
            latency_quantile: Some(DEFAULT_LATENCY_QUANTILE),
        }
    }
}

impl Policy {
    /// Sets the number of retries for unavailable/connect.
    #[must_use]
    pub fn with_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the backoff base and cap.
    #[must_use]
    pub fn with_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// Retries timeouts too.
    #[must_use]
    pub fn with_retry_timeouts(mut self, retry: bool) -> Self {
        self.retry_timeouts = retry;
        self
    }

    /// Sets the wait-versus-fallback rule: wait up to `max_wait` for a preferred target when
    /// falling back would cost at least `min_saving_usd` more per call.
    #[must_use]
    pub fn with_wait_for_preferred(mut self, max_wait: Duration, min_saving_usd: f64) -> Self {
        self.wait_for_preferred = max_wait;
        self.min_saving_usd = min_saving_usd;
        self
    }

    /// Bounds how long a request without a deadline may queue.
    #[must_use]
    pub fn with_max_queue_wait(mut self, max: Option<Duration>) -> Self {
        self.max_queue_wait = max;
        self
    }

    /// Sets the maximum wait of requests whose options do not set one.
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: MaxWait) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// Sets how many 429s one request accepts from one target.
    #[must_use]
    pub fn with_rate_limit_retries(mut self, retries: u32) -> Self {
        self.rate_limit_retries = retries;
        self
    }

    /// Orders waiting requests of one priority by deadline (`true`) or by start.
    #[must_use]
    pub fn with_earliest_deadline_first(mut self, on: bool) -> Self {
        self.earliest_deadline_first = on;
        self
    }

    /// Sets how long a background request waits before it ranks as an interactive one.
    #[must_use]
    pub fn with_background_aging(mut self, aging: Duration) -> Self {
        self.background_aging = aging;
        self
    }

    /// Sets the latency percentile feasibility is judged by (`None`: never shed).
    #[must_use]
    pub fn with_latency_quantile(mut self, quantile: Option<f64>) -> Self {
        self.latency_quantile = quantile;
        self
    }
}

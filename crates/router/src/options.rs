//! Per-request options: the cache, the maximum wait, and a signal to stop waiting.
//!
//! The maximum wait is a router option rather than a field of `GenerateRequest` because
//! waiting is the router's job alone: providers never wait (one call, one upstream request),
//! so a field on the request every provider receives would be one every provider must ignore,
//! and the cache key would have to leave it out. The callers that decide it (the CLI's
//! `--max-wait`, later the gateway from its client's headers) all hold the router.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How long one request may wait for capacity before it fails at once, saying when capacity
/// returns.
///
/// The rule, checked before every wait: a wait for a per-minute window, a backoff or a free
/// concurrency slot is allowed when the maximum wait allows its length; a wait for a pool
/// parked until its daily reset is allowed only by [`Unbounded`](Self::Unbounded) or an
/// [`UpTo`](Self::UpTo) at least that long. A target disabled for billing, its key or its
/// region never comes back by waiting: when nothing else can serve, the request fails at once
/// with the advice. A wait the rule refuses is never started: the request fails at once with
/// the earliest instant capacity returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaxWait {
    /// Wait as long as it takes, a daily reset included: a queue (the default for a router
    /// used as a plain `ImageProvider`, and the simulator).
    #[default]
    Unbounded,
    /// Wait for per-minute windows, backoffs and concurrency as long as they take, but fail at
    /// once rather than wait for a daily reset (`imagegate batch` without `--max-wait`).
    Windows,
    /// Wait at most this long for anything (`--max-wait`; `imagegate generate` defaults to 2
    /// minutes).
    UpTo(Duration),
}

impl MaxWait {
    /// Whether a wait of `wait` is allowed; `daily` when it waits for a daily reset.
    pub fn allows(self, wait: Duration, daily: bool) -> bool {
        match self {
            MaxWait::Unbounded => true,
            MaxWait::Windows => !daily,
            MaxWait::UpTo(max) => wait <= max,
        }
    }

    /// The bound in words, for error messages.
    pub(crate) fn describe(self) -> String {
        match self {
            MaxWait::Unbounded => "no maximum wait".to_owned(),
            MaxWait::Windows => "a maximum wait that excludes daily resets".to_owned(),
            MaxWait::UpTo(max) => format!(
                "the maximum wait of {}",
                imagegate_core::human_duration(max)
            ),
        }
    }
}

/// Per-request options beyond the [`GenerateRequest`](imagegate_core::GenerateRequest) itself.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RequestOptions {
    /// Use the cache for this request: `None` follows the configuration (on when the router
    /// has a cache), `Some(false)` bypasses it (neither read nor written), `Some(true)` uses it
    /// when configured.
    pub cache: Option<bool>,
    /// How long this request may wait for capacity; `None` follows the policy
    /// ([`Policy::max_wait`](crate::Policy::max_wait)).
    pub max_wait: Option<MaxWait>,
    /// Stop waiting when this is cancelled: a request still waiting for capacity, a slot or a
    /// retry fails at once with `unavailable` ("stopped before it was sent"), while an upstream
    /// call already under way finishes (it may be billed). A gateway cancels it when it begins
    /// to shut down, so queued clients are told to retry elsewhere at once instead of waiting
    /// out the grace period.
    pub stop: Option<CancellationToken>,
}

impl RequestOptions {
    /// Options with the cache on or off for this request.
    #[must_use]
    pub fn with_cache(mut self, cache: bool) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Options with a maximum wait for this request.
    #[must_use]
    pub fn with_max_wait(mut self, max_wait: MaxWait) -> Self {
        self.max_wait = Some(max_wait);
        self
    }

    /// Options whose waiting ends when `stop` is cancelled ([`stop`](Self::stop)).
    #[must_use]
    pub fn with_stop(mut self, stop: CancellationToken) -> Self {
        self.stop = Some(stop);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_maximum_wait_rule() {
        let minute = Duration::from_secs(58);
        let day = Duration::from_secs(21 * 3_600);
        let cases = [
            (MaxWait::Unbounded, minute, false, true),
            (MaxWait::Unbounded, day, true, true),
            (MaxWait::Windows, day, false, true),
            (MaxWait::Windows, day, true, false),
            (MaxWait::Windows, Duration::ZERO, true, false),
            (MaxWait::UpTo(Duration::from_secs(120)), minute, false, true),
            (MaxWait::UpTo(Duration::from_secs(120)), day, true, false),
            (MaxWait::UpTo(Duration::from_secs(30)), minute, false, false),
            (
                MaxWait::UpTo(Duration::from_secs(22 * 3_600)),
                day,
                true,
                true,
            ),
        ];
        for (max, wait, daily, allowed) in cases {
            assert_eq!(max.allows(wait, daily), allowed, "{max:?} {wait:?} {daily}");
        }
    }
}

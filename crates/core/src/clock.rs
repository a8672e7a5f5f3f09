//! The clock through which all time flows.
//!
//! Quotas are about time (sliding minutes, the Pacific day), so every component that reads the
//! time or waits takes an `Arc<dyn Clock>`. Three clocks cover every use:
//!
//! - [`SystemClock`]: wall time and real sleeps, for production.
//! - [`TokioClock`]: wall time anchored at a chosen instant and advanced by tokio's timer. Under
//!   `tokio::time::pause()` (or `#[tokio::test(start_paused = true)]`) tokio jumps straight to the
//!   next timer whenever every task is waiting, so a simulated day of concurrent work finishes in
//!   milliseconds and stays deterministic. The simulator and router tests use it.
//! - [`ManualClock`]: time moves only when told; `sleep` advances it at once and records the
//!   request, so a test can assert exactly which waits were asked for.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};

/// A source of the current instant and a way to wait.
#[async_trait]
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current instant.
    fn now(&self) -> Timestamp;

    /// Waits for `duration` on this clock.
    async fn sleep(&self, duration: Duration);

    /// Waits until `at` on this clock (returns at once when `at` is not in the future).
    async fn sleep_until(&self, at: Timestamp) {
        let wait = span(self.now(), at);
        if !wait.is_zero() {
            self.sleep(wait).await;
        }
    }
}

#[async_trait]
impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
    async fn sleep(&self, duration: Duration) {
        (**self).sleep(duration).await;
    }
    async fn sleep_until(&self, at: Timestamp) {
        (**self).sleep_until(at).await;
    }
}

/// The time from `from` to `to`, zero when `to` is not later: general arithmetic between two
/// instants (an entry's age, a wait, how long a call took), not clamped.
///
/// [`crate::hints::until`] is the clamped twin for delays an upstream asks for, where anything
/// beyond the longest day is a broken hint; an age or a wait computed by us can be longer (a
/// cache entry 48 hours old is 48 hours old).
pub fn span(from: Timestamp, to: Timestamp) -> Duration {
    let nanos = to.as_nanosecond().saturating_sub(from.as_nanosecond());
    if nanos <= 0 {
        return Duration::ZERO;
    }
    let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Duration::new(secs, sub)
}

/// Adds a std duration to an instant, saturating at the end of time.
pub fn add(at: Timestamp, duration: Duration) -> Timestamp {
    SignedDuration::try_from(duration)
        .ok()
        .and_then(|d| at.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// The real clock: the system's wall time and tokio's real sleeps.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// Wall time that starts at a chosen instant and follows tokio's timer.
///
/// `now()` is `start + (tokio::time::Instant::now() - created)`, and `sleep` is
/// `tokio::time::sleep`; with tokio's time paused, time advances only through sleeps, in
/// simulated jumps, identically on every run.
#[derive(Clone, Debug)]
pub struct TokioClock {
    start: Timestamp,
    created: tokio::time::Instant,
}

impl TokioClock {
    /// A clock that reads `start` now. Must be created inside a tokio runtime.
    pub fn starting_at(start: Timestamp) -> Self {
        TokioClock {
            start,
            created: tokio::time::Instant::now(),
        }
    }

    /// How much time has passed on this clock since it was created.
    pub fn elapsed(&self) -> Duration {
        self.created.elapsed()
    }
}

#[async_trait]
impl Clock for TokioClock {
    fn now(&self) -> Timestamp {
        add(self.start, self.created.elapsed())
    }
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// A clock that moves only when told to. `sleep` advances it immediately and records the
/// duration asked for.
#[derive(Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    now: Timestamp,
    sleeps: Vec<Duration>,
}

impl ManualClock {
    /// A clock that reads `start` until advanced.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            state: Arc::new(Mutex::new(ManualState {
                now: start,
                sleeps: Vec::new(),
            })),
        }
    }

    /// Moves the clock forward.
    pub fn advance(&self, duration: Duration) {
        let mut state = self.lock();
        state.now = add(state.now, duration);
    }

    /// Sets the clock to `at` (which may be earlier: tests of clock skew).
    pub fn set(&self, at: Timestamp) {
        self.lock().now = at;
    }

    /// Every duration `sleep` was asked for, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.lock().sleeps.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ManualState> {
        // A panic while holding this lock cannot leave the state half-written (two plain
        // fields), so a poisoned lock is still good to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.lock().now)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.lock().now
    }
    async fn sleep(&self, duration: Duration) {
        let mut state = self.lock();
        state.now = add(state.now, duration);
        state.sleeps.push(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn manual_clock_records_sleeps_and_advances() {
        let clock = ManualClock::new(at("2026-03-08T09:00:00Z"));
        clock.sleep(Duration::from_secs(2)).await;
        clock.sleep_until(at("2026-03-08T09:01:00Z")).await;
        clock.sleep_until(at("2026-03-08T08:00:00Z")).await; // in the past: no sleep
        assert_eq!(clock.now(), at("2026-03-08T09:01:00Z"));
        assert_eq!(
            clock.sleeps(),
            [Duration::from_secs(2), Duration::from_secs(58)]
        );
    }

    #[test]
    fn span_is_not_clamped_and_never_negative() {
        let two_days = span(at("2026-11-20T10:00:00Z"), at("2026-11-22T10:00:00.5Z"));
        assert_eq!(two_days, Duration::from_millis(48 * 3_600_000 + 500));
        assert_eq!(
            span(at("2026-11-22T10:00:00Z"), at("2026-11-20T10:00:00Z")),
            Duration::ZERO
        );
        let far = span(Timestamp::MIN, Timestamp::MAX);
        assert!(far > Duration::from_secs(100 * 365 * 86_400));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_runs_a_simulated_day_instantly() {
        let clock = TokioClock::starting_at(at("2026-11-01T00:00:00-07:00"));
        clock.sleep(Duration::from_secs(86_400)).await;
        // 2026-11-01 is the day daylight saving ends: 24 h of elapsed time ends at 23:00 PST.
        assert_eq!(clock.now(), at("2026-11-01T23:00:00-08:00"));
        assert_eq!(clock.elapsed(), Duration::from_secs(86_400));
    }
}

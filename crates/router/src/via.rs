//! The `auto` policy: which requests go to a batch API (half price, turnaround of hours) and
//! which interactively (now, full price), decided from the deadline and the capacity ahead.
//!
//! A pure function of its input ([`plan`]): no clock reads (`now` is an argument), no I/O, so
//! the CLI (`imagegate batch --via auto`) and the simulator (its `imagegate` strategy) run the
//! very same decision, and the simulator measures what the CLI does. The rules, in order:
//!
//! 1. **The deadline allows the batch API** (`deadline - now` is at least both the turnaround
//!    estimate and the minimum deadline): everything goes to the batch API, up to what its quota
//!    takes; the rest interactively.
//! 2. **Otherwise interactively what the interactive pools can start in time** (before the
//!    deadline minus a call's latency, within their per-minute and daily limits).
//! 3. **The rest spills to the batch API when the interactive pools are parked until a daily
//!    reset** (their daily quota, not their per-minute windows, is what stops them): waiting for
//!    the reset misses the deadline for sure, a batch job usually finishes well inside its
//!    turnaround target. When per-minute windows are what stop them, the rest stays interactive
//!    (it queues, as without this policy), so a deadline too short for the batch API is never
//!    served slower than before.
//!
//! ```
//! use std::time::Duration;
//! use imagegate_router::via::{BatchAhead, PoolAhead, Via, ViaInput, plan};
//!
//! let now: jiff::Timestamp = "2026-03-04T16:00:00Z".parse()?;
//! let pool = PoolAhead::new(now + jiff::SignedDuration::from_hours(8))
//!     .with_per_minute(10)
//!     .with_per_day(1_000);
//! let input = ViaInput::new(now, now + jiff::SignedDuration::from_hours(30), 10_000)
//!     .with_pool(pool)
//!     .with_batch(BatchAhead::default());
//! let plan = plan(&input);
//! assert_eq!((plan.interactive, plan.batch), (0, 10_000));
//! assert_eq!(plan.via(0), Via::Batch);
//! # Ok::<(), jiff::Error>(())
//! ```

use std::time::Duration;

use imagegate_core::clock::span;
use imagegate_core::quota::{BlockReason, next_midnight, zone_named};
use imagegate_core::{Dimension, PoolStatus};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Where one request is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Via {
    /// An ordinary call through the router, now, at the full price.
    Interactive,
    /// The provider's batch API: half price, results within its turnaround.
    Batch,
}

impl Via {
    /// `interactive` or `batch`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Via::Interactive => "interactive",
            Via::Batch => "batch",
        }
    }
}

/// The default [`BatchAhead::turnaround`]: Gemini's Batch API targets 24 hours (and is usually
/// much faster); the policy plans with the target, not the typical case.
pub const DEFAULT_BATCH_TURNAROUND: Duration = Duration::from_secs(24 * 3_600);

/// The default [`BatchAhead::min_deadline`] (`batch.min_deadline`): a deadline shorter than
/// this never sends work to the batch API by choice (only by spilling, rule 3).
pub const DEFAULT_MIN_DEADLINE: Duration = Duration::from_secs(24 * 3_600);

/// What the route's batch API offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchAhead {
    /// How long a batch job is expected to take at worst (a high percentile, or the provider's
    /// target): work is sent by choice only when the deadline is at least this far away.
    pub turnaround: Duration,
    /// The shortest deadline that sends work to the batch API by choice.
    pub min_deadline: Duration,
    /// How many more requests the batch quota takes now; `None`: no limit known.
    pub capacity: Option<u64>,
}

impl Default for BatchAhead {
    fn default() -> Self {
        BatchAhead {
            turnaround: DEFAULT_BATCH_TURNAROUND,
            min_deadline: DEFAULT_MIN_DEADLINE,
            capacity: None,
        }
    }
}

impl BatchAhead {
    /// This with the turnaround estimate `turnaround`.
    #[must_use]
    pub fn with_turnaround(mut self, turnaround: Duration) -> Self {
        self.turnaround = turnaround;
        self
    }

    /// This with the minimum deadline `min_deadline`.
    #[must_use]
    pub fn with_min_deadline(mut self, min_deadline: Duration) -> Self {
        self.min_deadline = min_deadline;
        self
    }

    /// This with the batch quota taking `capacity` more requests.
    #[must_use]
    pub fn with_capacity(mut self, capacity: Option<u64>) -> Self {
        self.capacity = capacity;
        self
    }
}

/// What one interactive pool of the route can still admit, in requests (one image each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolAhead {
    /// Requests per minute (the lower of its RPM and IPM); `None`: no per-minute limit.
    pub per_minute: Option<u64>,
    /// Requests per day (its RPD); `None`: no daily limit.
    pub per_day: Option<u64>,
    /// What today has left; `None`: all of `per_day`.
    pub left_today: Option<u64>,
    /// When its day ends (the daily reset).
    pub day_ends: Timestamp,
    /// It admits nothing before this instant (a retry delay the upstream asked for).
    pub open_from: Option<Timestamp>,
}

impl PoolAhead {
    /// A pool without limits whose day ends at `day_ends`.
    pub fn new(day_ends: Timestamp) -> Self {
        PoolAhead {
            per_minute: None,
            per_day: None,
            left_today: None,
            day_ends,
            open_from: None,
        }
    }

    /// This with `n` requests per minute.
    #[must_use]
    pub fn with_per_minute(mut self, n: u64) -> Self {
        self.per_minute = Some(n);
        self
    }

    /// This with `n` requests per day.
    #[must_use]
    pub fn with_per_day(mut self, n: u64) -> Self {
        self.per_day = Some(n);
        self
    }

    /// This with `n` requests left today.
    #[must_use]
    pub fn with_left_today(mut self, n: u64) -> Self {
        self.left_today = Some(n);
        self
    }

    /// This pool as the router sees it in `status` (from `Router::pool_statuses`): the limits
    /// admission enforces, what today has left, a daily block (parked: nothing left until it
    /// ends), a retry delay; `None` for a pool blocked until billing is attached (it serves
    /// nothing, so it adds no capacity).
    pub fn from_status(status: &PoolStatus) -> Option<PoolAhead> {
        let zone = zone_named(&status.day_zone).unwrap_or(TimeZone::UTC);
        let dim = |d: Dimension| status.dimensions.iter().find(|s| s.dimension == d);
        let day = dim(Dimension::Rpd);
        let mut ahead = PoolAhead::new(
            day.and_then(|d| d.resets_at)
                .unwrap_or_else(|| next_midnight(status.at, &zone)),
        );
        let limit = |d: Dimension| dim(d).and_then(|s| s.limit);
        ahead.per_minute = match (limit(Dimension::Rpm), limit(Dimension::Ipm)) {
            (Some(r), Some(i)) => Some(r.min(i)),
            (r, i) => r.or(i),
        };
        ahead.per_day = day.and_then(|d| d.limit);
        ahead.left_today = day.and_then(|d| d.remaining);
        if let Some(block) = &status.blocked {
            match (block.reason, block.until) {
                (BlockReason::BillingRequired, _) | (_, None) => return None,
                (BlockReason::DailyQuota, Some(until)) => {
                    ahead.left_today = Some(0);
                    ahead.day_ends = until;
                }
                (BlockReason::RetryDelay, Some(until)) => ahead.open_from = Some(until),
            }
        }
        Some(ahead)
    }

    /// Requests it can start in `[now, by]`: (with its daily limit, without it).
    fn starts(&self, now: Timestamp, by: Timestamp) -> (u64, u64) {
        let from = self.open_from.map_or(now, |o| o.max(now));
        if by < from {
            return (0, 0);
        }
        let windows = span(from, by).as_secs() / 60 + 1;
        let by_minute = self
            .per_minute
            .map_or(u64::MAX, |m| m.saturating_mul(windows));
        let by_day = match self.per_day {
            None => u64::MAX,
            Some(per_day) => {
                let mut n = self.left_today.unwrap_or(per_day).min(per_day);
                if by >= self.day_ends {
                    let days = span(self.day_ends, by).as_secs() / 86_400 + 1;
                    n = n.saturating_add(per_day.saturating_mul(days));
                }
                n
            }
        };
        (by_minute.min(by_day), by_minute)
    }
}

/// Everything [`plan`] decides from.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ViaInput {
    /// The instant of the decision.
    pub now: Timestamp,
    /// When the work is due.
    pub deadline: Timestamp,
    /// Requests (one image each) still to send.
    pub requests: u64,
    /// The route's interactive pools (each counted once).
    pub pools: Vec<PoolAhead>,
    /// How long an interactive call takes (a high percentile): a call must start this long
    /// before the deadline.
    pub latency: Duration,
    /// Interactive calls in flight at once; `None`: no limit.
    pub concurrency: Option<u64>,
    /// The route's batch API; `None`: it has none (everything is interactive).
    pub batch: Option<BatchAhead>,
}

impl ViaInput {
    /// `requests` due at `deadline`, decided at `now`, with no pool, no batch API, no latency.
    pub fn new(now: Timestamp, deadline: Timestamp, requests: u64) -> Self {
        ViaInput {
            now,
            deadline,
            requests,
            pools: Vec::new(),
            latency: Duration::ZERO,
            concurrency: None,
            batch: None,
        }
    }

    /// This with one more interactive pool.
    #[must_use]
    pub fn with_pool(mut self, pool: PoolAhead) -> Self {
        self.pools.push(pool);
        self
    }

    /// This with interactive calls taking `latency`.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// This with at most `n` interactive calls in flight.
    #[must_use]
    pub fn with_concurrency(mut self, n: u64) -> Self {
        self.concurrency = Some(n);
        self
    }

    /// This with the route's batch API.
    #[must_use]
    pub fn with_batch(mut self, batch: BatchAhead) -> Self {
        self.batch = Some(batch);
        self
    }

    /// Requests the interactive pools can start in time: (with daily limits, without them).
    fn interactive_in_time(&self) -> (u64, u64) {
        let Some(by) = self
            .deadline
            .checked_sub(jiff::SignedDuration::try_from(self.latency).unwrap_or_default())
            .ok()
            .filter(|by| *by >= self.now)
        else {
            return (0, 0);
        };
        let (mut with_day, mut without) = (0u64, 0u64);
        for pool in &self.pools {
            let (d, m) = pool.starts(self.now, by);
            with_day = with_day.saturating_add(d);
            without = without.saturating_add(m);
        }
        if let Some(n) = self.concurrency {
            let latency = self.latency.as_millis().max(1);
            let rounds = span(self.now, by).as_millis() / latency + 1;
            let cap = u64::try_from(rounds).unwrap_or(u64::MAX).saturating_mul(n);
            (with_day.min(cap), without.min(cap))
        } else {
            (with_day, without)
        }
    }
}

/// Why a [`Plan`] is what it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Why {
    /// The route has no batch API: everything interactive.
    NoBatch,
    /// The deadline allows the batch API: everything there (the rest interactively when its
    /// quota is full).
    DeadlineAllowsBatch,
    /// The deadline is too close for the batch API and the interactive pools are not parked
    /// until a daily reset: everything interactive.
    DeadlineTooClose,
    /// The deadline is too close for the batch API, but the interactive pools' daily quota
    /// stops them before the deadline: what they cannot start in time spills to the batch API.
    Spill,
}

impl Why {
    /// A short phrase for logs and the dry run.
    pub const fn as_str(self) -> &'static str {
        match self {
            Why::NoBatch => "no batch API on the route",
            Why::DeadlineAllowsBatch => "the deadline allows the batch API",
            Why::DeadlineTooClose => "the deadline is too close for the batch API",
            Why::Spill => "the interactive pools are parked until a daily reset",
        }
    }
}

/// How many of the requests go each way: the first [`interactive`](Self::interactive)
/// requests interactively, the rest to the batch API (the requests share one deadline, so
/// which ones is the caller's choice; [`via`](Self::via) is this order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Requests sent interactively.
    pub interactive: u64,
    /// Requests sent to the batch API.
    pub batch: u64,
    /// Of the interactive ones, how many the pools cannot start by the deadline (they queue,
    /// and may miss it).
    pub interactive_late: u64,
    /// Why.
    pub why: Why,
}

impl Plan {
    /// Where request `index` (from 0) goes.
    pub fn via(&self, index: u64) -> Via {
        if index < self.interactive {
            Via::Interactive
        } else {
            Via::Batch
        }
    }
}

/// The `auto` decision for `input` (see the module documentation for the rules).
pub fn plan(input: &ViaInput) -> Plan {
    let n = input.requests;
    let (in_time, in_time_without_days) = input.interactive_in_time();
    let all_interactive = |why| Plan {
        interactive: n,
        batch: 0,
        interactive_late: n.saturating_sub(in_time),
        why,
    };
    let Some(batch) = input.batch else {
        return all_interactive(Why::NoBatch);
    };
    let slack = span(input.now, input.deadline);
    if input.deadline > input.now && slack >= batch.turnaround && slack >= batch.min_deadline {
        let to_batch = batch.capacity.map_or(n, |c| c.min(n));
        let rest = n - to_batch;
        return Plan {
            interactive: rest,
            batch: to_batch,
            interactive_late: rest.saturating_sub(in_time),
            why: Why::DeadlineAllowsBatch,
        };
    }
    let late = n.saturating_sub(in_time);
    let parked = in_time_without_days > in_time;
    if late == 0 || !parked {
        return all_interactive(Why::DeadlineTooClose);
    }
    let spill = batch.capacity.map_or(late, |c| c.min(late));
    Plan {
        interactive: n - spill,
        batch: spill,
        interactive_late: late - spill,
        why: Why::Spill,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed expectation is a failed test

    use imagegate_core::PoolId;
    use imagegate_core::quota::{Block, DimensionStatus};
    use jiff::SignedDuration;

    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn hours(h: i64) -> SignedDuration {
        SignedDuration::from_hours(h)
    }

    /// 16:00 UTC = 08:00 Pacific: the pool's day ends 16 hours later.
    const NOW: &str = "2026-03-04T16:00:00Z";

    fn flash() -> PoolAhead {
        PoolAhead::new(at(NOW) + hours(16))
            .with_per_minute(10)
            .with_per_day(1_000)
    }

    fn input(due_in_hours: i64, requests: u64) -> ViaInput {
        ViaInput::new(at(NOW), at(NOW) + hours(due_in_hours), requests)
            .with_pool(flash())
            .with_latency(Duration::from_secs(30))
            .with_batch(BatchAhead::default())
    }

    #[test]
    fn a_deadline_past_the_turnaround_and_the_minimum_sends_everything_to_batch() {
        let p = plan(&input(30, 10_000));
        assert_eq!(
            p,
            Plan {
                interactive: 0,
                batch: 10_000,
                interactive_late: 0,
                why: Why::DeadlineAllowsBatch
            }
        );
        // Exactly the turnaround is enough.
        assert_eq!(plan(&input(24, 5)).batch, 5);
    }

    #[test]
    fn the_minimum_deadline_holds_even_when_the_turnaround_is_short() {
        let fast = BatchAhead::default().with_turnaround(Duration::from_secs(3_600));
        let p = plan(&input(12, 100).with_batch(fast));
        assert_eq!((p.interactive, p.batch), (100, 0));
        assert_eq!(p.why, Why::DeadlineTooClose);
        let p =
            plan(&input(12, 100).with_batch(fast.with_min_deadline(Duration::from_secs(7_200))));
        assert_eq!((p.interactive, p.batch), (0, 100));
    }

    #[test]
    fn a_long_turnaround_keeps_work_interactive_despite_a_long_deadline() {
        let slow = BatchAhead::default().with_turnaround(Duration::from_secs(48 * 3_600));
        let p = plan(&input(30, 100).with_batch(slow));
        assert_eq!((p.interactive, p.batch), (100, 0));
    }

    #[test]
    fn without_a_batch_api_everything_is_interactive_and_lateness_is_counted() {
        let mut i = input(30, 10_000);
        i.batch = None;
        let p = plan(&i);
        assert_eq!((p.interactive, p.batch, p.why), (10_000, 0, Why::NoBatch));
        // 1,000 left today, 1,000 more after the reset 16 h from now: 2,000 in 30 h.
        assert_eq!(p.interactive_late, 8_000);
    }

    #[test]
    fn the_batch_quota_caps_what_goes_there_and_the_rest_is_interactive() {
        let i = input(30, 500).with_batch(BatchAhead::default().with_capacity(Some(200)));
        let p = plan(&i);
        assert_eq!((p.interactive, p.batch), (300, 200));
        assert_eq!(p.interactive_late, 0);
        assert_eq!(p.via(299), Via::Interactive);
        assert_eq!(p.via(300), Via::Batch);
    }

    #[test]
    fn a_close_deadline_within_the_windows_stays_interactive() {
        // 10 per minute for 2 hours: 1,200 starts, 1,000 allowed today. 900 fit.
        let p = plan(&input(2, 900));
        assert_eq!((p.interactive, p.batch, p.interactive_late), (900, 0, 0));
        assert_eq!(p.why, Why::DeadlineTooClose);
    }

    #[test]
    fn minute_windows_that_cannot_keep_up_queue_interactively_never_spill() {
        // 10 per minute for 1 hour (minus the latency): 600 starts; 900 asked, daily quota ample.
        let p = plan(&input(1, 900));
        assert_eq!((p.interactive, p.batch), (900, 0));
        assert_eq!(p.interactive_late, 300);
        assert_eq!(p.why, Why::DeadlineTooClose);
    }

    #[test]
    fn what_the_daily_quota_cannot_start_in_time_spills_to_batch() {
        let pool = flash().with_left_today(100);
        let i = ViaInput::new(at(NOW), at(NOW) + hours(2), 400)
            .with_pool(pool)
            .with_latency(Duration::from_secs(30))
            .with_batch(BatchAhead::default());
        let p = plan(&i);
        assert_eq!((p.interactive, p.batch, p.why), (100, 300, Why::Spill));
        assert_eq!(p.interactive_late, 0);
        // Parked (nothing left until the reset 16 h away): all of it spills.
        let parked = i.clone();
        let mut parked = parked;
        parked.pools = vec![flash().with_left_today(0)];
        let p = plan(&parked);
        assert_eq!((p.interactive, p.batch), (0, 400));
        // A spill also respects the batch quota.
        let capped = parked.with_batch(BatchAhead::default().with_capacity(Some(50)));
        let p = plan(&capped);
        assert_eq!((p.interactive, p.batch, p.interactive_late), (350, 50, 350));
    }

    #[test]
    fn a_reset_before_the_deadline_counts_the_next_days_quota() {
        // Parked today, but the day ends in 16 h and the deadline is in 20 h: after the reset,
        // 4 h x 10/min = 2,400 starts within 1,000 a day.
        let i = ViaInput::new(at(NOW), at(NOW) + hours(20), 800)
            .with_pool(flash().with_left_today(0))
            .with_batch(BatchAhead::default());
        let p = plan(&i);
        assert_eq!(
            (p.interactive, p.batch, p.why),
            (800, 0, Why::DeadlineTooClose)
        );
    }

    #[test]
    fn pools_add_up_and_concurrency_bounds_them() {
        let i = ViaInput::new(at(NOW), at(NOW) + SignedDuration::from_mins(10), 150)
            .with_pool(flash().with_left_today(40))
            .with_pool(flash().with_left_today(40))
            .with_latency(Duration::from_secs(60))
            .with_batch(BatchAhead::default());
        let p = plan(&i);
        assert_eq!((p.interactive, p.batch), (80, 70));
        // Two in flight, a minute each: 20 starts by the deadline minus a minute. What stops
        // them is then the client's own concurrency, not a daily reset: no spill, they queue.
        let p = plan(&i.with_concurrency(2));
        assert_eq!((p.interactive, p.batch), (150, 0));
        assert_eq!((p.interactive_late, p.why), (130, Why::DeadlineTooClose));
    }

    #[test]
    fn a_deadline_already_past_or_shorter_than_a_call_starts_nothing() {
        let mut i = input(0, 10);
        i.deadline = at(NOW) - hours(1);
        let p = plan(&i);
        assert_eq!(
            (p.interactive, p.batch, p.why),
            (10, 0, Why::DeadlineTooClose)
        );
        assert_eq!(p.interactive_late, 10);
    }

    fn status(blocked: Option<Block>) -> PoolStatus {
        let dim = |dimension, limit: Option<u64>, used: u64, resets_at| DimensionStatus {
            dimension,
            configured: limit,
            learned: None,
            limit,
            learning: false,
            used,
            remaining: limit.map(|l| l.saturating_sub(used)),
            resets_at,
        };
        PoolStatus {
            id: PoolId::new("gemini", "p", "flash"),
            models: vec!["flash".into()],
            day_zone: "America/Los_Angeles".into(),
            at: at(NOW),
            dimensions: vec![
                dim(Dimension::Rpm, Some(10), 3, None),
                dim(Dimension::Rpd, Some(1_000), 400, None),
                dim(Dimension::Tpm, None, 0, None),
                dim(Dimension::Ipm, Some(8), 0, None),
            ],
            blocked,
            shared_pool_suspected: None,
        }
    }

    #[test]
    fn a_pool_status_becomes_its_capacity_ahead() {
        let ahead = PoolAhead::from_status(&status(None)).unwrap();
        assert_eq!(ahead.per_minute, Some(8));
        assert_eq!(ahead.per_day, Some(1_000));
        assert_eq!(ahead.left_today, Some(600));
        // 08:00 Pacific: the next Pacific midnight is 16 hours on.
        assert_eq!(ahead.day_ends, at(NOW) + hours(16));
        let until = at(NOW) + hours(16);
        let parked = PoolAhead::from_status(&status(Some(Block {
            until: Some(until),
            reason: BlockReason::DailyQuota,
            dimension: Some(Dimension::Rpd),
            advice: None,
        })))
        .unwrap();
        assert_eq!((parked.left_today, parked.day_ends), (Some(0), until));
        let billing = status(Some(Block {
            until: None,
            reason: BlockReason::BillingRequired,
            dimension: None,
            advice: None,
        }));
        assert_eq!(PoolAhead::from_status(&billing), None);
    }
}

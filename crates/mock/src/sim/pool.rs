//! The truth about one upstream quota pool: its limits, its windows, and what it has admitted.
//!
//! This is the upstream's side of the bargain, not the client's model of it: it answers "would
//! this request be admitted now, and if not, which limits are full and when does capacity
//! return?" exactly, so the simulated 429s carry the true time to capacity and the oracle
//! strategy can send exactly when a request would pass.

use std::collections::VecDeque;
use std::time::Duration;

use imagegate_core::clock::add;
use imagegate_core::quota::next_midnight;
use imagegate_core::{quota::Dimension, quota::Limits};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;

use super::wire::Headroom;

/// The length of a per-minute window.
const MINUTE: Duration = Duration::from_secs(60);

/// How the per-minute dimensions (RPM, IPM, TPM) count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Window {
    /// The last 60 seconds, whatever the clock says: a request counts until exactly 60 s after
    /// it was admitted.
    #[default]
    Sliding,
    /// The calendar minute (UTC): every count starts again at second 0.
    Fixed,
}

/// One true quota pool: the models that draw on it, its limits, how its minutes count, and the
/// zone whose midnight ends its day.
#[derive(Clone, Debug)]
pub struct TruePool {
    /// The models that share this pool (one, or several when the upstream pools them).
    pub models: Vec<String>,
    /// The limits; a dimension that is `None` has no limit, `Some(0)` means no entitlement.
    pub limits: Limits,
    /// How the per-minute dimensions count.
    pub window: Window,
    /// Where the day ends for RPD: America/Los_Angeles for Gemini, UTC for OpenRouter.
    pub day_zone: TimeZone,
}

impl TruePool {
    /// A pool of `models` with `limits`, sliding windows, and days ending in `day_zone`.
    pub fn new(models: Vec<String>, limits: Limits, day_zone: TimeZone) -> Self {
        TruePool {
            models,
            limits,
            window: Window::Sliding,
            day_zone,
        }
    }

    /// Sets how the per-minute dimensions count.
    #[must_use]
    pub fn with_window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// True when a limit of 0 (rpm or rpd) means the pool can never admit anything: a project
    /// without billing asking for a paid-only model.
    pub fn is_unentitled(&self) -> bool {
        self.limits.rpm == Some(0) || self.limits.rpd == Some(0)
    }
}

/// What one request costs against a pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Images the request asks for.
    pub images: u64,
    /// Tokens in and out.
    pub tokens: u64,
}

/// One full limit: which dimension, its value, and when it will admit the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The dimension that is full.
    pub dimension: Dimension,
    /// The limit's value.
    pub limit: u64,
    /// When this dimension will admit the request; `None` when it never will (a limit of 0,
    /// or a request larger than the limit).
    pub available_at: Option<Timestamp>,
}

/// What a pool has admitted that still counts, per dimension, at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InUse {
    /// Requests inside the current minute window (against RPM).
    pub requests_this_minute: u64,
    /// Images inside the current minute window (against IPM).
    pub images_this_minute: u64,
    /// Tokens inside the current minute window (against TPM).
    pub tokens_this_minute: u64,
    /// Requests admitted today, in the pool's day zone (against RPD).
    pub requests_today: u64,
}

/// What one admitted request left behind in the per-minute windows.
#[derive(Clone, Copy, Debug)]
struct Entry {
    at: Timestamp,
    images: u64,
    tokens: u64,
}

/// A pool's true state: the admitted requests still inside a minute window, and today's count.
#[derive(Debug)]
pub(crate) struct PoolState {
    pub(crate) pool: TruePool,
    minute: VecDeque<Entry>,
    day: Option<(Date, u64)>,
}

impl PoolState {
    pub(crate) fn new(pool: TruePool) -> Self {
        PoolState {
            pool,
            minute: VecDeque::new(),
            day: None,
        }
    }

    /// The start of the window that `now` counts in.
    fn window_start(&self, now: Timestamp) -> Timestamp {
        match self.pool.window {
            Window::Sliding => now
                .checked_sub(jiff::SignedDuration::from_secs(60))
                .unwrap_or(Timestamp::MIN),
            Window::Fixed => {
                let seconds = now.as_second().div_euclid(60) * 60;
                Timestamp::from_second(seconds).unwrap_or(now)
            }
        }
    }

    /// When an entry admitted at `at` stops counting.
    fn expiry(&self, at: Timestamp) -> Timestamp {
        match self.pool.window {
            Window::Sliding => add(at, MINUTE),
            Window::Fixed => {
                let seconds = at.as_second().div_euclid(60) * 60 + 60;
                Timestamp::from_second(seconds).unwrap_or(Timestamp::MAX)
            }
        }
    }

    /// Drops entries that no longer count at `now` (an entry counts while `at > now - 60 s` on a
    /// sliding window, within the current calendar minute on a fixed one).
    fn evict(&mut self, now: Timestamp) {
        let start = self.window_start(now);
        let sliding = self.pool.window == Window::Sliding;
        while let Some(first) = self.minute.front() {
            let gone = if sliding {
                first.at <= start
            } else {
                first.at < start
            };
            if !gone {
                break;
            }
            self.minute.pop_front();
        }
    }

    fn today(&self, now: Timestamp) -> Date {
        now.to_zoned(self.pool.day_zone.clone()).date()
    }

    /// Requests admitted today (in the pool's zone).
    pub(crate) fn used_today(&self, now: Timestamp) -> u64 {
        match self.day {
            Some((date, count)) if date == self.today(now) => count,
            _ => 0,
        }
    }

    /// Every limit that `usage` would break at `now`, in [`Dimension::ALL`] order; empty when
    /// the request would be admitted.
    pub(crate) fn check(&mut self, now: Timestamp, usage: Usage) -> Vec<Violation> {
        self.evict(now);
        let limits = self.pool.limits;
        let mut out = Vec::new();
        for dimension in Dimension::ALL {
            let Some(limit) = limits.get(dimension) else {
                continue;
            };
            let violation = match dimension {
                Dimension::Rpd => {
                    let used = self.used_today(now);
                    (used + 1 > limit).then(|| Violation {
                        dimension,
                        limit,
                        available_at: (limit > 0).then(|| next_midnight(now, &self.pool.day_zone)),
                    })
                }
                Dimension::Rpm => self.minute_violation(dimension, limit, 1, |_| 1),
                Dimension::Ipm => {
                    self.minute_violation(dimension, limit, usage.images, |e| e.images)
                }
                Dimension::Tpm => {
                    self.minute_violation(dimension, limit, usage.tokens, |e| e.tokens)
                }
            };
            out.extend(violation);
        }
        out
    }

    /// A per-minute dimension: full when what counts now plus `cost` exceeds `limit`; capacity
    /// returns when enough of the oldest entries have expired.
    fn minute_violation(
        &self,
        dimension: Dimension,
        limit: u64,
        cost: u64,
        weight: impl Fn(&Entry) -> u64,
    ) -> Option<Violation> {
        let total: u64 = self.minute.iter().map(&weight).sum();
        if total + cost <= limit {
            return None;
        }
        let available_at = if cost > limit {
            None
        } else {
            let mut remaining = total;
            self.minute.iter().find_map(|entry| {
                remaining -= weight(entry);
                (remaining + cost <= limit).then(|| self.expiry(entry.at))
            })
        };
        Some(Violation {
            dimension,
            limit,
            available_at,
        })
    }

    /// What counts against each dimension at `now`: the admitted requests, images and tokens
    /// still inside the minute window, and the requests admitted today.
    pub(crate) fn in_use(&mut self, now: Timestamp) -> InUse {
        self.evict(now);
        InUse {
            requests_this_minute: self.minute.len() as u64,
            images_this_minute: self.minute.iter().map(|e| e.images).sum(),
            tokens_this_minute: self.minute.iter().map(|e| e.tokens).sum(),
            requests_today: self.used_today(now),
        }
    }

    /// Every per-minute limit of the pool at `now`: its value, what is left of it, and when the
    /// oldest use counted against it leaves the window (`None` when nothing counts). This is
    /// what OpenAI's `x-ratelimit-*` headers state on every answer.
    pub(crate) fn headroom(&mut self, now: Timestamp) -> Vec<Headroom> {
        self.evict(now);
        let used = self.in_use(now);
        [Dimension::Rpm, Dimension::Tpm, Dimension::Ipm]
            .into_iter()
            .filter_map(|dimension| {
                let limit = self.pool.limits.get(dimension)?;
                let (counted, weight): (u64, fn(&Entry) -> u64) = match dimension {
                    Dimension::Tpm => (used.tokens_this_minute, |e| e.tokens),
                    Dimension::Ipm => (used.images_this_minute, |e| e.images),
                    _ => (used.requests_this_minute, |_| 1),
                };
                let next_release = self
                    .minute
                    .iter()
                    .find(|e| weight(e) > 0)
                    .map(|e| self.expiry(e.at));
                Some(Headroom {
                    dimension,
                    limit,
                    remaining: limit.saturating_sub(counted),
                    next_release,
                })
            })
            .collect()
    }

    /// Counts an admitted request.
    pub(crate) fn admit(&mut self, now: Timestamp, usage: Usage) {
        self.minute.push_back(Entry {
            at: now,
            images: usage.images,
            tokens: usage.tokens,
        });
        let today = self.today(now);
        let used = self.used_today(now);
        self.day = Some((today, used + 1));
    }
}

/// When a request blocked by `violations` could be admitted: the latest of their times;
/// `None` when one of them never admits it.
pub(crate) fn available_at(violations: &[Violation]) -> Option<Timestamp> {
    violations
        .iter()
        .map(|v| v.available_at)
        .try_fold(Timestamp::MIN, |latest, at| at.map(|at| latest.max(at)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegate_core::quota::PACIFIC;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const ONE: Usage = Usage {
        images: 1,
        tokens: 1_300,
    };

    fn pool(limits: Limits, window: Window) -> PoolState {
        PoolState::new(TruePool::new(vec!["m".into()], limits, PACIFIC.clone()).with_window(window))
    }

    #[test]
    fn sliding_minute_frees_exactly_sixty_seconds_after_the_oldest() {
        let mut p = pool(
            Limits {
                rpm: Some(2),
                ..Limits::NONE
            },
            Window::Sliding,
        );
        let t0 = at("2026-03-07T10:00:10Z");
        p.admit(t0, ONE);
        p.admit(at("2026-03-07T10:00:30Z"), ONE);
        let v = p.check(at("2026-03-07T10:00:40Z"), ONE);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].dimension, Dimension::Rpm);
        assert_eq!(v[0].available_at, Some(at("2026-03-07T10:01:10Z")));
        assert_eq!(p.check(at("2026-03-07T10:01:09.999Z"), ONE).len(), 1);
        assert!(p.check(at("2026-03-07T10:01:10Z"), ONE).is_empty());
    }

    #[test]
    fn fixed_minute_frees_at_the_next_calendar_minute() {
        let mut p = pool(
            Limits {
                ipm: Some(2),
                ..Limits::NONE
            },
            Window::Fixed,
        );
        p.admit(at("2026-03-07T10:00:58Z"), ONE);
        p.admit(at("2026-03-07T10:00:59Z"), ONE);
        let v = p.check(at("2026-03-07T10:00:59.5Z"), ONE);
        assert_eq!(v[0].dimension, Dimension::Ipm);
        assert_eq!(v[0].available_at, Some(at("2026-03-07T10:01:00Z")));
        assert!(p.check(at("2026-03-07T10:01:00Z"), ONE).is_empty());
    }

    #[test]
    fn weighted_dimensions_wait_for_enough_to_expire_and_oversized_never_fit() {
        let mut p = pool(
            Limits {
                tpm: Some(3_000),
                ..Limits::NONE
            },
            Window::Sliding,
        );
        p.admit(at("2026-03-07T10:00:00Z"), ONE);
        p.admit(at("2026-03-07T10:00:20Z"), ONE);
        let v = p.check(at("2026-03-07T10:00:30Z"), ONE);
        assert_eq!(v[0].available_at, Some(at("2026-03-07T10:01:00Z")));
        let huge = Usage {
            images: 1,
            tokens: 5_000,
        };
        assert_eq!(
            p.check(at("2026-03-07T10:00:30Z"), huge)[0].available_at,
            None
        );
    }

    #[test]
    fn day_ends_at_pacific_midnight_and_zero_never_admits() {
        let mut p = pool(
            Limits {
                rpd: Some(1),
                ..Limits::NONE
            },
            Window::Sliding,
        );
        p.admit(at("2026-03-08T07:30:00Z"), ONE); // 23:30 PST on the 7th
        let v = p.check(at("2026-03-08T07:45:00Z"), ONE);
        assert_eq!(v[0].available_at, Some(at("2026-03-08T08:00:00Z")));
        assert!(p.check(at("2026-03-08T08:00:00Z"), ONE).is_empty());
        let mut zero = pool(
            Limits {
                rpd: Some(0),
                ..Limits::NONE
            },
            Window::Sliding,
        );
        let v = zero.check(at("2026-03-08T08:00:00Z"), ONE);
        assert_eq!(v[0].available_at, None);
        assert_eq!(available_at(&v), None);
    }
}

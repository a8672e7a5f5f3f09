//! The synchronous core of the quota model: one pool's counters, admission, settlement and
//! learning, with no locking and no I/O.
//!
//! Stores wrap a [`PoolLedger`] in whatever keeps it consistent (a mutex in memory; a shared
//! store would port the same arithmetic to one atomic script). Every method takes the instant
//! explicitly, so tests and simulations never sleep.
//!
//! Per-minute dimensions keep a log of admitted costs, oldest first, with running sums: an
//! entry counted at `t` is in the window at `now` while `t > now - 60 s`. Admitting at `now` only
//! if the last 60 seconds plus the cost fit the limit guarantees that *no* 60-second window
//! ever holds more than the limit (a store may count uses a little longer than 60 s, a guard
//! for the trip to the upstream: [`PoolLedger::with_window`]). The day is a calendar day in
//! the pool's zone, with its bounds cached so the common case costs two comparisons.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::admission::{Admission, Exhausted, Reservation};
use super::observe::{RateLimitSnapshot, SharedPoolSuspicion};
use super::pool::zone_name;
use super::snapshot::{DaySnapshot, HoldSnapshot, LedgerSnapshot, LoggedUse};
use super::status::{Block, BlockReason, DimensionStatus, PoolStatus};
use super::{Cost, Dimension, Limits, PoolConfig, PoolId, Usage};
use crate::error::{Error, ErrorKind, Result};

/// The length of a per-minute window as the upstreams count it: the default (see
/// [`PoolLedger::with_window`]).
pub(crate) const UPSTREAM_WINDOW: Duration = Duration::from_secs(60);

/// Indexes into per-dimension arrays, in [`Dimension::ALL`] order.
const RPM: usize = 0;
const RPD: usize = 1;
const TPM: usize = 2;
const IPM: usize = 3;
/// The dimensions counted in sliding 60-second windows.
const MINUTE: [usize; 3] = [RPM, TPM, IPM];

const fn index(d: Dimension) -> usize {
    match d {
        Dimension::Rpm => RPM,
        Dimension::Rpd => RPD,
        Dimension::Tpm => TPM,
        Dimension::Ipm => IPM,
    }
}

fn ns(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(if t > Timestamp::UNIX_EPOCH {
        i64::MAX
    } else {
        i64::MIN
    })
}

fn ts(n: i64) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(n)).unwrap_or(Timestamp::MAX)
}

/// A window's length in nanoseconds: at least one, at most what the counters can hold.
fn window_ns(window: Duration) -> i64 {
    i64::try_from(window.as_nanos()).unwrap_or(i64::MAX).max(1)
}

fn after(now: Timestamp, d: Duration) -> Timestamp {
    crate::clock::add(now, d)
}

/// One admitted cost in the per-minute log.
#[derive(Clone, Copy, Debug)]
struct Entry {
    id: u64,
    at: i64,
    /// Indexed like [`Dimension::ALL`]; the RPD slot is unused (the day has its own counter).
    amount: [u64; 4],
}

/// The calendar day the pool is in, in its zone.
#[derive(Clone, Copy, Debug)]
struct Day {
    start: i64,
    end: i64,
    count: u64,
}

/// A block the upstream imposed.
#[derive(Clone, Copy, Debug)]
struct Hold {
    until: i64,
    dimension: Option<Dimension>,
}

/// One pool's quota state: limits configured and learned, windows, blocks, suspicions.
///
/// `Clone` so a simulation can ask "what if" on a copy without disturbing the original.
#[derive(Clone, Debug)]
pub struct PoolLedger {
    id: Arc<PoolId>,
    config: PoolConfig,
    learned: Limits,
    /// `learned` else `config.limits`, per dimension: what admission enforces.
    effective: [Option<u64>; 4],
    log: VecDeque<Entry>,
    /// Sum of `log` per dimension (the RPD slot unused).
    used: [u64; 4],
    day: Option<Day>,
    next_id: u64,
    /// The latest instant seen: time never runs backwards inside a pool, so a caller whose
    /// clock lags is counted at the latest instant instead of slipping into an older window.
    latest: i64,
    /// When this ledger started watching: a window that began earlier was not fully seen.
    since: i64,
    /// How long a per-minute use stays counted, in nanoseconds (60 s unless guarded).
    window: i64,
    wait: Option<Hold>,
    daily: Option<Hold>,
    billing: Option<String>,
    shared: Option<SharedPoolSuspicion>,
}

impl PoolLedger {
    /// A fresh ledger for `config`, watching from `now`.
    pub fn new(config: PoolConfig, now: Timestamp) -> Self {
        let mut ledger = PoolLedger {
            id: Arc::new(config.id.clone()),
            config,
            learned: Limits::NONE,
            effective: [None; 4],
            log: VecDeque::new(),
            used: [0; 4],
            day: None,
            next_id: 0,
            latest: ns(now),
            since: ns(now),
            window: window_ns(UPSTREAM_WINDOW),
            wait: None,
            daily: None,
            billing: None,
            shared: None,
        };
        ledger.recompute_limits();
        ledger
    }

    /// The ledger with per-minute uses counted for `window` instead of the upstreams' 60 s.
    ///
    /// A store stamps a use when it admits it; the upstream counts the request when it
    /// arrives, a trip later. A slot freed exactly 60 s after its admission can be taken by a
    /// request that arrives before the upstream's 60 s have passed for the earlier one (a
    /// faster trip), and is refused. A window a second longer (61 s) covers any trip shorter
    /// than a second, for at most 1/61 of a minute's quota and nothing when the minute is not
    /// what limits. Stores pass their own setting here (`MemoryQuotaStore::with_window`,
    /// `FileQuotaStore::with_window`); a window shorter than the upstream's would overshoot.
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window_ns(window);
        self
    }

    /// Everything this ledger counted, learned and was told, as serialisable data (see
    /// [`LedgerSnapshot`]); [`restore`](Self::restore) turns it back into an identical ledger.
    pub fn snapshot(&self) -> LedgerSnapshot {
        let hold = |h: Hold| HoldSnapshot {
            until: ts(h.until),
            dimension: h.dimension,
        };
        LedgerSnapshot {
            learned: self.learned,
            log: self
                .log
                .iter()
                .map(|e| LoggedUse {
                    id: e.id,
                    at: ts(e.at),
                    requests: e.amount[RPM],
                    tokens: e.amount[TPM],
                    images: e.amount[IPM],
                })
                .collect(),
            day: self.day.map(|d| DaySnapshot {
                zone: zone_name(&self.config.day_zone),
                start: ts(d.start),
                end: ts(d.end),
                count: d.count,
            }),
            next_id: self.next_id,
            latest: ts(self.latest),
            since: ts(self.since),
            wait: self.wait.map(hold),
            daily: self.daily.map(hold),
            billing: self.billing.clone(),
            shared: self.shared.clone(),
        }
    }

    /// A ledger for `config` holding the state `snapshot` recorded: the counts, the day,
    /// learned limits, blocks and suspicions come from the snapshot; limits, zone and models
    /// from `config`, so a configuration change applies while nothing counted is forgotten.
    /// A day recorded under another zone is dropped, as [`reconfigure`](Self::reconfigure)
    /// does.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] naming the pool and the inconsistency when the snapshot
    /// cannot have been written by a ledger (uses out of order or later than the latest
    /// instant, a sequence number already used, a day ending before it starts, counts that
    /// overflow): it was edited or damaged, and restoring it would miscount.
    pub fn restore(config: PoolConfig, snapshot: LedgerSnapshot) -> Result<PoolLedger> {
        let bad = |what: String| {
            Error::config(format!(
                "the saved quota state of pool `{}` is inconsistent: {what}",
                config.id
            ))
        };
        let latest = ns(snapshot.latest);
        let mut log = VecDeque::with_capacity(snapshot.log.len());
        let mut used = [0u64; 4];
        let mut previous: Option<Entry> = None;
        for u in &snapshot.log {
            let entry = Entry {
                id: u.id,
                at: ns(u.at),
                amount: [u.requests, u.requests, u.tokens, u.images],
            };
            if let Some(p) = previous
                && (entry.id <= p.id || entry.at < p.at)
            {
                return Err(bad(format!(
                    "use {} at {} does not follow use {} at {}",
                    entry.id,
                    u.at,
                    p.id,
                    ts(p.at)
                )));
            }
            if entry.at > latest {
                return Err(bad(format!(
                    "use {} at {} is later than the latest instant seen, {}",
                    entry.id, u.at, snapshot.latest
                )));
            }
            if entry.id >= snapshot.next_id {
                return Err(bad(format!(
                    "use {} is not below the next sequence number {}",
                    entry.id, snapshot.next_id
                )));
            }
            for i in MINUTE {
                used[i] = used[i]
                    .checked_add(entry.amount[i])
                    .ok_or_else(|| bad(format!("the counts on {} overflow", Dimension::ALL[i])))?;
            }
            log.push_back(entry);
            previous = Some(entry);
        }
        let day = match snapshot.day {
            Some(d) if d.zone == zone_name(&config.day_zone) => {
                if d.start >= d.end {
                    return Err(bad(format!("the day {} to {} is empty", d.start, d.end)));
                }
                Some(Day {
                    start: ns(d.start),
                    end: ns(d.end),
                    count: d.count,
                })
            }
            _ => None,
        };
        let hold = |h: HoldSnapshot| Hold {
            until: ns(h.until),
            dimension: h.dimension,
        };
        let mut ledger = PoolLedger {
            id: Arc::new(config.id.clone()),
            config,
            learned: snapshot.learned,
            effective: [None; 4],
            log,
            used,
            day,
            next_id: snapshot.next_id,
            latest,
            since: ns(snapshot.since),
            window: window_ns(UPSTREAM_WINDOW),
            wait: snapshot.wait.map(hold),
            daily: snapshot.daily.map(hold),
            billing: snapshot.billing,
            shared: snapshot.shared,
        };
        ledger.recompute_limits();
        Ok(ledger)
    }

    /// Forgets every block: billing required (which otherwise lasts as long as the ledger), a
    /// daily block and a requested delay. Counts, learned limits and suspicions stay. Returns
    /// whether there was a block. For a person who has attached billing, or who wants to try
    /// again before the upstream's reset.
    pub fn clear_blocks(&mut self) -> bool {
        let had = self.billing.is_some() || self.daily.is_some() || self.wait.is_some();
        self.billing = None;
        self.daily = None;
        self.wait = None;
        had
    }

    /// The pool's configuration.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Replaces the configuration (limits, zone, models), keeping counts, learned limits and
    /// blocks: reloading configuration must not forget what was already used.
    pub fn reconfigure(&mut self, config: PoolConfig) {
        if config.day_zone != self.config.day_zone {
            self.day = None;
        }
        self.id = Arc::new(config.id.clone());
        self.config = config;
        self.recompute_limits();
    }

    /// The limit admission enforces on `dimension`.
    pub fn limit(&self, dimension: Dimension) -> Option<u64> {
        self.effective[index(dimension)]
    }

    fn recompute_limits(&mut self) {
        for d in Dimension::ALL {
            self.effective[index(d)] = self.learned.get(d).or(self.config.limits.get(d));
        }
    }

    /// Moves the clock to `now` (never backwards), drops what left the 60-second window and
    /// starts a new day when midnight in the pool's zone has passed. Returns the instant used.
    fn advance(&mut self, now: Timestamp) -> i64 {
        let now = ns(now).max(self.latest);
        self.latest = now;
        while let Some(front) = self.log.front() {
            if front.at > now - self.window {
                break;
            }
            for d in MINUTE {
                self.used[d] -= front.amount[d];
            }
            self.log.pop_front();
        }
        match self.day {
            Some(day) if now >= day.start && now < day.end => {}
            _ => self.day = Some(self.day_at(now)),
        }
        now
    }

    fn day_at(&self, now: i64) -> Day {
        let zone = &self.config.day_zone;
        let at = ts(now);
        let start = at
            .to_zoned(zone.clone())
            .start_of_day()
            .map(|z| z.timestamp())
            .unwrap_or(at);
        let end = super::next_midnight(at, zone);
        Day {
            start: ns(start),
            end: ns(end),
            count: 0,
        }
    }

    fn day(&self) -> Day {
        self.day.unwrap_or(Day {
            start: i64::MIN,
            end: i64::MAX,
            count: 0,
        })
    }

    /// Decides whether `cost` may be sent at `now`, and reserves it if so: all dimensions or
    /// none.
    pub fn admit(&mut self, cost: Cost, now: Timestamp) -> Admission {
        let now = self.advance(now);
        if let Some(advice) = &self.billing {
            return Admission::ExhaustedUntil {
                at: None,
                reason: Exhausted::BillingRequired {
                    advice: advice.clone(),
                },
            };
        }
        let day = self.day();
        // Limits a single cost can never fit, however long it waits.
        for d in Dimension::ALL {
            let i = index(d);
            if let Some(limit) = self.effective[i] {
                let amount = cost.on(d);
                if amount > limit {
                    return Admission::ExhaustedUntil {
                        at: None,
                        reason: Exhausted::TooLarge {
                            dimension: d,
                            cost: amount,
                            limit,
                        },
                    };
                }
            }
        }
        if let Some(hold) = self.daily {
            if hold.until > now {
                return Admission::ExhaustedUntil {
                    at: Some(ts(hold.until)),
                    reason: Exhausted::Quota {
                        dimension: hold.dimension.unwrap_or(Dimension::Rpd),
                    },
                };
            }
            self.daily = None;
        }
        if let Some(limit) = self.effective[RPD]
            && day.count.saturating_add(cost.requests) > limit
        {
            return Admission::ExhaustedUntil {
                at: Some(ts(day.end)),
                reason: Exhausted::Quota {
                    dimension: Dimension::Rpd,
                },
            };
        }
        let mut wait: Option<Hold> = None;
        if let Some(hold) = self.wait {
            if hold.until > now {
                wait = Some(hold);
            } else {
                self.wait = None;
            }
        }
        for i in MINUTE {
            if let Some(limit) = self.effective[i] {
                let amount = cost.on(Dimension::ALL[i]);
                if self.used[i].saturating_add(amount) > limit {
                    let until = self.free_at(i, amount, limit);
                    if wait.is_none_or(|w| until > w.until) {
                        wait = Some(Hold {
                            until,
                            dimension: Some(Dimension::ALL[i]),
                        });
                    }
                }
            }
        }
        if let Some(hold) = wait {
            return Admission::WaitUntil {
                at: ts(hold.until),
                dimension: hold.dimension,
            };
        }
        let id = self.next_id;
        self.next_id += 1;
        let amount = [cost.requests, cost.requests, cost.tokens, cost.images];
        for i in MINUTE {
            self.used[i] += amount[i];
        }
        self.log.push_back(Entry {
            id,
            at: now,
            amount,
        });
        if let Some(d) = &mut self.day {
            d.count = d.count.saturating_add(cost.requests);
        }
        Admission::Go(Reservation {
            pool: Arc::clone(&self.id),
            id,
            at: ts(now),
            day_start: ts(day.start),
            cost,
        })
    }

    /// The earliest instant enough of the window has expired for `amount` to fit `limit` on
    /// dimension `i`.
    fn free_at(&self, i: usize, amount: u64, limit: u64) -> i64 {
        let need = self.used[i].saturating_add(amount).saturating_sub(limit);
        let mut freed = 0u64;
        for e in &self.log {
            freed = freed.saturating_add(e.amount[i]);
            if freed >= need {
                return e.at.saturating_add(self.window);
            }
        }
        self.latest.saturating_add(self.window)
    }

    /// The log entry of `reservation`: same sequence number *and* instant, so a reservation
    /// that outlived its state (a state file deleted and started afresh) cannot touch another
    /// use that happens to reuse its number.
    fn entry_mut(&mut self, reservation: &Reservation) -> Option<&mut Entry> {
        let (id, at) = (reservation.id, ns(reservation.at));
        let pos = self.log.partition_point(|e| e.id < id);
        self.log.get_mut(pos).filter(|e| e.id == id && e.at == at)
    }

    /// Records what the upstream really used for `reservation` (tokens and images replace the
    /// estimate while it is still in the window; the request itself stays counted).
    pub fn settle(&mut self, reservation: Reservation, usage: Usage) {
        let mut delta = [0i128; 4];
        if let Some(entry) = self.entry_mut(&reservation) {
            if let Some(tokens) = usage.tokens {
                delta[TPM] = i128::from(tokens) - i128::from(entry.amount[TPM]);
                entry.amount[TPM] = tokens;
            }
            if let Some(images) = usage.images {
                delta[IPM] = i128::from(images) - i128::from(entry.amount[IPM]);
                entry.amount[IPM] = images;
            }
        }
        for i in MINUTE {
            let v = i128::from(self.used[i]) + delta[i];
            self.used[i] = u64::try_from(v.max(0)).unwrap_or(u64::MAX);
        }
    }

    /// Gives back everything `reservation` took: the upstream did not count the request.
    pub fn release(&mut self, reservation: Reservation) {
        if let Some(entry) = self.entry_mut(&reservation) {
            let amount = std::mem::take(&mut entry.amount);
            for i in MINUTE {
                self.used[i] = self.used[i].saturating_sub(amount[i]);
            }
        }
        if let Some(day) = &mut self.day
            && ts(day.start) == reservation.day_start
        {
            day.count = day.count.saturating_sub(reservation.cost.requests);
        }
    }

    /// What is counted on `dimension` in its current window.
    fn used_on(&self, i: usize) -> u64 {
        if i == RPD {
            self.day().count
        } else {
            self.used[i]
        }
    }

    /// Learns from an upstream error. Returns the dimension on which the upstream refused while
    /// this ledger, over a window it watched entirely, counted room for at least one more
    /// request besides the refused one: the caller records it as a shared-pool suspicion
    /// with [`suspect_shared`](Self::suspect_shared).
    ///
    /// Call it before releasing the refused request's reservation.
    pub fn observe_error(
        &mut self,
        error: &Error,
        now: Timestamp,
    ) -> Option<(Dimension, u64, u64)> {
        let now_ns = self.advance(now);
        let now = ts(now_ns);
        let facts = error.quota();
        let kind = error.kind();
        if kind == ErrorKind::BillingRequired
            || (matches!(kind, ErrorKind::RateLimited | ErrorKind::QuotaExhausted)
                && facts.quota_value == Some(0))
        {
            let advice = if kind == ErrorKind::BillingRequired {
                error.advice()
            } else {
                error.clone().with_kind(ErrorKind::BillingRequired).advice()
            };
            self.billing = Some(advice);
            return None;
        }
        if !matches!(kind, ErrorKind::RateLimited | ErrorKind::QuotaExhausted) {
            return None;
        }
        let daily = super::observe::is_daily_refusal(error);
        let dimension = facts.dimension.or(daily.then_some(Dimension::Rpd));
        let room = dimension.and_then(|d| {
            let i = index(d);
            let window_start = if d.is_daily() {
                self.day().start
            } else {
                now_ns - self.window
            };
            let limit = facts.quota_value.or(self.effective[i])?;
            let used = self.used_on(i);
            (self.since <= window_start && used.saturating_add(1) < limit)
                .then_some((d, used, limit))
        });
        if let (Some(d), Some(value)) = (dimension, facts.quota_value) {
            self.learned.set(d, Some(value));
            self.recompute_limits();
        }
        if daily {
            // The upstream's reset instant if it gave a sane one (in the future, within the
            // longest day there is), else the next midnight in the pool's zone.
            let latest = after(now, crate::hints::MAX_RETRY_HINT);
            let until = facts
                .reset_at
                .filter(|t| *t > now && *t <= latest)
                .unwrap_or_else(|| ts(self.day().end));
            self.hold_daily(ns(until), dimension);
        } else if let Some(delay) = super::observe::plausible_delay(error) {
            self.hold_wait(ns(after(now, delay)), dimension);
        }
        room
    }

    fn hold_wait(&mut self, until: i64, dimension: Option<Dimension>) {
        if self.wait.is_none_or(|w| until > w.until) {
            self.wait = Some(Hold { until, dimension });
        }
    }

    fn hold_daily(&mut self, until: i64, dimension: Option<Dimension>) {
        if self.daily.is_none_or(|w| until > w.until) {
            self.daily = Some(Hold { until, dimension });
        }
    }

    /// Records that a 429 suggested this pool is shared (see [`observe_error`](Self::observe_error)).
    pub fn suspect_shared(&mut self, mut suspicion: SharedPoolSuspicion) {
        if let Some(old) = &self.shared {
            suspicion.count = old.count.saturating_add(suspicion.count);
            for p in &old.partners {
                if !suspicion.partners.contains(p) {
                    suspicion.partners.push(p.clone());
                }
            }
            if suspicion.quota_model.is_none() {
                suspicion.quota_model.clone_from(&old.quota_model);
            }
        }
        self.shared = Some(suspicion);
    }

    /// True when something is counted on `dimension` in its current window at `now`.
    pub fn busy_on(&mut self, dimension: Dimension, now: Timestamp) -> bool {
        self.advance(now);
        self.used_on(index(dimension)) > 0
    }

    /// Learns from rate-limit headers: the limit they state replaces ours; if the upstream
    /// counted more than we did (other clients of the same project), our count rises to
    /// match; nothing remaining with a reset instant blocks the pool until then.
    pub fn observe_snapshot(&mut self, snapshot: &RateLimitSnapshot, now: Timestamp) {
        let now_ns = self.advance(now);
        let d = snapshot.dimension;
        let i = index(d);
        if let Some(limit) = snapshot.limit {
            self.learned.set(d, Some(limit));
            self.recompute_limits();
        }
        if let (Some(limit), Some(remaining)) = (self.effective[i], snapshot.remaining) {
            let upstream_used = limit.saturating_sub(remaining);
            let ours = self.used_on(i);
            if upstream_used > ours {
                let extra = upstream_used - ours;
                if i == RPD {
                    if let Some(day) = &mut self.day {
                        day.count = upstream_used;
                    }
                } else {
                    let mut amount = [0; 4];
                    amount[i] = extra;
                    self.used[i] += extra;
                    let id = self.next_id;
                    self.next_id += 1;
                    self.log.push_back(Entry {
                        id,
                        at: now_ns,
                        amount,
                    });
                }
            }
        }
        if snapshot.remaining == Some(0)
            && let Some(reset) = snapshot.reset_at
            && ns(reset) > now_ns
        {
            if d.is_daily() {
                self.hold_daily(ns(reset), Some(d));
            } else {
                self.hold_wait(ns(reset), Some(d));
            }
        }
    }

    /// The pool's state at `now`.
    pub fn status(&mut self, now: Timestamp) -> PoolStatus {
        let now_ns = self.advance(now);
        let day = self.day();
        let dimensions = Dimension::ALL
            .into_iter()
            .map(|d| {
                let i = index(d);
                let used = self.used_on(i);
                let limit = self.effective[i];
                let resets_at = if d.is_daily() {
                    Some(ts(day.end))
                } else {
                    self.log
                        .iter()
                        .find(|e| e.amount[i] > 0)
                        .map(|e| ts(e.at.saturating_add(self.window)))
                };
                DimensionStatus {
                    dimension: d,
                    configured: self.config.limits.get(d),
                    learned: self.learned.get(d),
                    limit,
                    learning: self.config.learning && limit.is_none(),
                    used,
                    remaining: limit.map(|l| l.saturating_sub(used)),
                    resets_at,
                }
            })
            .collect();
        let blocked = if let Some(advice) = &self.billing {
            Some(Block {
                until: None,
                reason: BlockReason::BillingRequired,
                dimension: None,
                advice: Some(advice.clone()),
            })
        } else if let Some(h) = self.daily.filter(|h| h.until > now_ns) {
            Some(Block {
                until: Some(ts(h.until)),
                reason: BlockReason::DailyQuota,
                dimension: h.dimension,
                advice: None,
            })
        } else {
            self.wait.filter(|h| h.until > now_ns).map(|h| Block {
                until: Some(ts(h.until)),
                reason: BlockReason::RetryDelay,
                dimension: h.dimension,
                advice: None,
            })
        };
        PoolStatus {
            id: self.config.id.clone(),
            models: self.config.models.clone(),
            day_zone: zone_name(&self.config.day_zone),
            at: ts(now_ns),
            dimensions,
            blocked,
            shared_pool_suspected: self.shared.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::PACIFIC;
    use jiff::ToSpan;

    fn t0() -> Timestamp {
        "2026-11-23T18:00:00Z".parse().unwrap()
    }

    fn ledger(limits: Limits) -> PoolLedger {
        let id = PoolId::new("gemini", "p", "m");
        PoolLedger::new(PoolConfig::new(id, limits, PACIFIC.clone()), t0())
    }

    const ONE: Cost = Cost::new(1, 1, 100);

    #[test]
    fn a_lagging_clock_is_counted_at_the_latest_instant() {
        let mut l = ledger(Limits {
            rpm: Some(2),
            ..Limits::NONE
        });
        let late = t0() + 30.seconds();
        assert!(l.admit(ONE, late).is_go());
        // A caller whose clock reads 50 s earlier must not land in a window that has already
        // been left behind: it is counted at `late`.
        let r = l
            .admit(ONE, t0() - 20.seconds())
            .into_reservation()
            .unwrap();
        assert_eq!(r.at(), late);
        assert_eq!(
            l.admit(ONE, late),
            Admission::WaitUntil {
                at: late + 60.seconds(),
                dimension: Some(Dimension::Rpm)
            }
        );
    }

    #[test]
    fn reconfiguring_keeps_what_was_counted() {
        let mut l = ledger(Limits {
            rpm: Some(5),
            ..Limits::NONE
        });
        for _ in 0..3 {
            assert!(l.admit(ONE, t0()).is_go());
        }
        let mut config = l.config().clone();
        config.limits.rpm = Some(3);
        l.reconfigure(config);
        assert!(!l.admit(ONE, t0()).is_go());
        assert_eq!(l.status(t0()).dimensions[0].used, 3);
    }

    #[test]
    fn a_per_minute_snapshot_adopts_the_upstreams_higher_count() {
        let mut l = ledger(Limits::NONE);
        assert!(l.admit(ONE, t0()).is_go());
        let snapshot = RateLimitSnapshot {
            dimension: Dimension::Rpm,
            limit: Some(10),
            remaining: Some(2),
            reset_at: None,
        };
        l.observe_snapshot(&snapshot, t0());
        let rpm = &l.status(t0()).dimensions[0];
        assert_eq!(
            (rpm.learned, rpm.used, rpm.remaining),
            (Some(10), 8, Some(2))
        );
        assert!(l.admit(ONE, t0()).is_go());
        assert!(l.admit(ONE, t0()).is_go());
        assert!(!l.admit(ONE, t0()).is_go());
        // The adopted count leaves the window like any other.
        assert!(l.admit(ONE, t0() + 60.seconds()).is_go());
    }

    #[test]
    fn a_waiting_pool_reports_the_later_of_the_delay_and_the_window() {
        let mut l = ledger(Limits {
            rpm: Some(1),
            ..Limits::NONE
        });
        assert!(l.admit(ONE, t0()).is_go());
        let error = Error::new(ErrorKind::RateLimited, "slow down")
            .with_retry_after(Duration::from_secs(5));
        assert_eq!(l.observe_error(&error, t0()), None);
        // The delay ends after 5 s but the window only after 60 s: come back then.
        assert_eq!(
            l.admit(ONE, t0()),
            Admission::WaitUntil {
                at: t0() + 60.seconds(),
                dimension: Some(Dimension::Rpm)
            }
        );
    }
}

//! The spending limit: at most so many US dollars per run and per UTC day, checked (and
//! reserved) before a call is sent, from the price table's estimate.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::events::BudgetScope;

/// Maximum spend. `None` means no limit on that scope.
///
/// A call is sent only if its estimated price (from the [`PriceTable`](imagegate_core::quota::PriceTable))
/// fits both limits with everything already spent or reserved by calls in flight; a model the
/// table has no price for counts as free (configure `fallback_per_image` to be strict).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Budget {
    /// For the life of the router (one CLI run, one batch).
    pub per_run_usd: Option<f64>,
    /// Per UTC calendar day.
    pub per_day_usd: Option<f64>,
}

impl Budget {
    /// A budget.
    pub fn new(per_run_usd: Option<f64>, per_day_usd: Option<f64>) -> Self {
        Budget {
            per_run_usd,
            per_day_usd,
        }
    }
}

/// Why a call was refused.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Refusal {
    pub(crate) scope: BudgetScope,
    pub(crate) limit: f64,
    pub(crate) spent: f64,
}

#[derive(Debug, Default)]
struct Spent {
    run: f64,
    day: f64,
    day_start: Option<Timestamp>,
}

/// Spend so far, behind a short lock.
#[derive(Debug)]
pub(crate) struct Ledger {
    budget: Budget,
    spent: Mutex<Spent>,
    /// Set once a call was refused: the caller (a batch) stops starting work.
    refused: AtomicBool,
}

fn day_start(now: Timestamp) -> Timestamp {
    now.to_zoned(TimeZone::UTC)
        .start_of_day()
        .map(|z| z.timestamp())
        .unwrap_or(now)
}

impl Ledger {
    pub(crate) fn new(budget: Budget) -> Self {
        Ledger {
            budget,
            spent: Mutex::new(Spent::default()),
            refused: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spent> {
        self.spent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves `price` if it fits both limits at `now`. Spend is counted with no limit too,
    /// so [`spent_run`](Self::spent_run) is always what the run cost.
    pub(crate) fn reserve(&self, price: f64, now: Timestamp) -> Result<(), Refusal> {
        let today = day_start(now);
        let mut spent = self.lock();
        if spent.day_start != Some(today) {
            spent.day_start = Some(today);
            spent.day = 0.0;
        }
        // A tiny tolerance so that a budget of exactly n calls admits n calls despite rounding.
        const EPSILON: f64 = 1e-9;
        if let Some(limit) = self.budget.per_run_usd
            && spent.run + price > limit + EPSILON
        {
            self.refused.store(true, Ordering::Release);
            return Err(Refusal {
                scope: BudgetScope::Run,
                limit,
                spent: spent.run,
            });
        }
        if let Some(limit) = self.budget.per_day_usd
            && spent.day + price > limit + EPSILON
        {
            self.refused.store(true, Ordering::Release);
            return Err(Refusal {
                scope: BudgetScope::Day,
                limit,
                spent: spent.day,
            });
        }
        spent.run += price;
        spent.day += price;
        Ok(())
    }

    /// Replaces a reservation of `reserved` by what the call really cost.
    pub(crate) fn settle(&self, reserved: f64, actual: f64) {
        let mut spent = self.lock();
        spent.run = (spent.run - reserved + actual).max(0.0);
        spent.day = (spent.day - reserved + actual).max(0.0);
    }

    /// Whether a call was ever refused for the budget.
    pub(crate) fn was_refused(&self) -> bool {
        self.refused.load(Ordering::Acquire)
    }

    /// Total spent (and reserved) in this run.
    pub(crate) fn spent_run(&self) -> f64 {
        self.lock().run
    }

    /// Spent (and reserved) in the UTC day holding `now`: what the daily limit is checked against.
    pub(crate) fn spent_day(&self, now: Timestamp) -> f64 {
        let spent = self.lock();
        if spent.day_start == Some(day_start(now)) {
            spent.day
        } else {
            0.0
        }
    }

    /// The limits.
    pub(crate) fn budget(&self) -> Budget {
        self.budget
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserves_until_the_run_budget_then_refuses() {
        let ledger = Ledger::new(Budget::new(Some(0.10), None));
        let now: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
        assert!(ledger.reserve(0.05, now).is_ok());
        assert!(ledger.reserve(0.05, now).is_ok());
        let refusal = ledger.reserve(0.01, now).unwrap_err();
        assert_eq!(refusal.scope, BudgetScope::Run);
        ledger.settle(0.05, 0.0);
        assert!(ledger.reserve(0.01, now).is_ok());
    }

    #[test]
    fn spent_today_is_the_day_count_and_zero_on_a_new_day() {
        let ledger = Ledger::new(Budget::new(None, Some(1.0)));
        let now: Timestamp = "2026-11-23T23:59:00Z".parse().unwrap();
        assert_eq!(ledger.spent_day(now), 0.0);
        assert!(ledger.reserve(0.25, now).is_ok());
        ledger.settle(0.25, 0.125);
        assert_eq!(ledger.spent_day(now), 0.125);
        let tomorrow: Timestamp = "2026-11-24T00:00:01Z".parse().unwrap();
        assert_eq!(ledger.spent_day(tomorrow), 0.0);
        assert_eq!(ledger.spent_run(), 0.125);
        assert_eq!(ledger.budget(), Budget::new(None, Some(1.0)));
    }

    #[test]
    fn the_day_budget_resets_at_utc_midnight() {
        let ledger = Ledger::new(Budget::new(None, Some(0.05)));
        let now: Timestamp = "2026-11-23T23:59:00Z".parse().unwrap();
        assert!(ledger.reserve(0.05, now).is_ok());
        assert_eq!(
            ledger.reserve(0.01, now).unwrap_err().scope,
            BudgetScope::Day
        );
        let tomorrow: Timestamp = "2026-11-24T00:00:01Z".parse().unwrap();
        assert!(ledger.reserve(0.05, tomorrow).is_ok());
    }
}

//! Where quota state lives: the [`QuotaStore`] trait and its in-memory default,
//! [`MemoryQuotaStore`].
//!
//! The trait is shaped for a shared store too: every call names the pool and passes the
//! instant, a reservation is plain data (pool, sequence number, instant, day, cost), and each
//! call is one atomic step, so a Redis store can implement `admit` as one script (check every
//! dimension key, then count them all) without callers changing.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use super::ledger::{PoolLedger, UPSTREAM_WINDOW};
use super::observe::{RateLimitSnapshot, SharedPoolSuspicion};
use super::{Admission, Cost, PoolConfig, PoolId, PoolStatus, Reservation, Usage};
use crate::error::{Error, Result};

/// Quota state for many pools.
///
/// Callers follow one protocol per upstream call: [`admit`](Self::admit); on `Go`, send; then
/// either [`settle`](Self::settle) (the upstream counted it: success, or an error it bills) or
/// [`release`](Self::release) (it did not: a 429, a connection failure), and feed any error to
/// [`observe_error`](Self::observe_error) *before* releasing.
#[async_trait]
pub trait QuotaStore: fmt::Debug + Send + Sync {
    /// Registers a pool, or replaces its configuration keeping what was already counted.
    async fn configure(&self, pool: PoolConfig, now: Timestamp) -> Result<()>;

    /// Decides whether `cost` may be sent to `pool` at `now`, reserving it atomically if so.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) for a pool never
    /// configured; a shared store may also fail to reach its backend.
    async fn admit(&self, pool: &PoolId, cost: Cost, now: Timestamp) -> Result<Admission>;

    /// Records what the upstream really used for a reservation.
    async fn settle(&self, reservation: Reservation, usage: Usage) -> Result<()>;

    /// Gives back a reservation the upstream did not count.
    async fn release(&self, reservation: Reservation) -> Result<()>;

    /// Learns from an upstream error (limits, delays, daily exhaustion, billing, shared pools).
    async fn observe_error(&self, pool: &PoolId, error: &Error, now: Timestamp) -> Result<()>;

    /// Learns from a successful response's rate-limit headers.
    async fn observe_success(
        &self,
        pool: &PoolId,
        snapshot: &RateLimitSnapshot,
        now: Timestamp,
    ) -> Result<()>;

    /// The state of one pool at `now`.
    async fn status(&self, pool: &PoolId, now: Timestamp) -> Result<PoolStatus>;

    /// The state of every pool at `now`, ordered by pool id.
    async fn statuses(&self, now: Timestamp) -> Result<Vec<PoolStatus>>;
}

/// The default store: every pool in process memory, one mutex per pool.
///
/// An admission locks only its own pool, decides and reserves under that one lock, and lets go:
/// concurrent callers can never overshoot, and callers of different pools never wait for each
/// other. The synchronous methods (`*_now`) are the same operations for callers outside async
/// code (and the benchmark); the [`QuotaStore`] impl delegates to them. State lasts until the
/// process ends.
#[derive(Debug)]
pub struct MemoryQuotaStore {
    pools: RwLock<HashMap<PoolId, Arc<Mutex<PoolLedger>>>>,
    /// How long a per-minute use stays counted (see [`with_window`](Self::with_window)).
    window: Duration,
}

impl Default for MemoryQuotaStore {
    fn default() -> Self {
        MemoryQuotaStore {
            pools: RwLock::default(),
            window: UPSTREAM_WINDOW,
        }
    }
}

fn lock(ledger: &Mutex<PoolLedger>) -> MutexGuard<'_, PoolLedger> {
    // Ledger methods do not panic; if one ever did, its counts are still the best we have.
    ledger.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryQuotaStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryQuotaStore::default()
    }

    /// The store with per-minute uses counted for `window` rather than the upstreams' 60 s:
    /// 61 s puts a one-second guard between this store's admission stamp and the upstream's
    /// arrival stamp, so a request admitted the instant a slot frees does not reach the
    /// upstream early ([`PoolLedger::with_window`] says why). The simulator keeps 60 s: its
    /// requests arrive the instant they are admitted. Set it before configuring pools.
    #[must_use]
    pub fn with_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// A store with `pools` configured at `now`.
    pub fn with_pools(pools: impl IntoIterator<Item = PoolConfig>, now: Timestamp) -> Self {
        let store = MemoryQuotaStore::new();
        for pool in pools {
            store.configure_now(pool, now);
        }
        store
    }

    fn ledger(&self, pool: &PoolId) -> Result<Arc<Mutex<PoolLedger>>> {
        let pools = self.pools.read().unwrap_or_else(PoisonError::into_inner);
        pools.get(pool).cloned().ok_or_else(|| {
            Error::config(format!(
                "no quota pool `{pool}` is configured: configure it before admitting requests"
            ))
        })
    }

    /// [`QuotaStore::configure`], synchronously.
    pub fn configure_now(&self, pool: PoolConfig, now: Timestamp) {
        let mut pools = self.pools.write().unwrap_or_else(PoisonError::into_inner);
        match pools.get(&pool.id) {
            Some(ledger) => lock(ledger).reconfigure(pool),
            None => {
                let id = pool.id.clone();
                let ledger = PoolLedger::new(pool, now).with_window(self.window);
                pools.insert(id, Arc::new(Mutex::new(ledger)));
            }
        }
    }

    /// [`QuotaStore::admit`], synchronously.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) for an unknown pool.
    pub fn admit_now(&self, pool: &PoolId, cost: Cost, now: Timestamp) -> Result<Admission> {
        let ledger = self.ledger(pool)?;
        let admission = lock(&ledger).admit(cost, now);
        Ok(admission)
    }

    /// [`QuotaStore::settle`], synchronously.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) for an unknown pool.
    pub fn settle_now(&self, reservation: Reservation, usage: Usage) -> Result<()> {
        let ledger = self.ledger(reservation.pool())?;
        lock(&ledger).settle(reservation, usage);
        Ok(())
    }

    /// [`QuotaStore::release`], synchronously.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) for an unknown pool.
    pub fn release_now(&self, reservation: Reservation) -> Result<()> {
        let ledger = self.ledger(reservation.pool())?;
        lock(&ledger).release(reservation);
        Ok(())
    }

    /// [`QuotaStore::observe_error`], synchronously.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) for an unknown pool.
    pub fn observe_error_now(&self, pool: &PoolId, error: &Error, now: Timestamp) -> Result<()> {
        let ledger = self.ledger(pool)?;
        let room = lock(&ledger).observe_error(error, now);
        let Some((dimension, used, limit)) = room else {
            return Ok(());
        };
        // Which other pools of the same project were busy on that dimension: the likely
        // partners. Each is locked on its own, never two at once.
        let others: Vec<(PoolId, Arc<Mutex<PoolLedger>>)> = {
            let pools = self.pools.read().unwrap_or_else(PoisonError::into_inner);
            pools
                .iter()
                .filter(|(id, _)| *id != pool && id.same_project(pool))
                .map(|(id, l)| (id.clone(), Arc::clone(l)))
                .collect()
        };
        let mut partners: Vec<PoolId> = others
            .into_iter()
            .filter(|(_, l)| lock(l).busy_on(dimension, now))
            .map(|(id, _)| id)
            .collect();
        partners.sort();
        let facts = error.quota();
        lock(&ledger).suspect_shared(SharedPoolSuspicion {
            dimension,
            used,
            limit,
            last_seen: now,
            count: 1,
            quota_model: facts.model.clone(),
            quota_id: facts.quota_id.clone(),
            partners,
        });
        Ok(())
    }

    /// [`QuotaStore::observe_success`], synchronously.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) for an unknown pool.
    pub fn observe_success_now(
        &self,
        pool: &PoolId,
        snapshot: &RateLimitSnapshot,
        now: Timestamp,
    ) -> Result<()> {
        let ledger = self.ledger(pool)?;
        lock(&ledger).observe_snapshot(snapshot, now);
        Ok(())
    }

    /// [`QuotaStore::status`], synchronously.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) for an unknown pool.
    pub fn status_now(&self, pool: &PoolId, now: Timestamp) -> Result<PoolStatus> {
        let ledger = self.ledger(pool)?;
        let status = lock(&ledger).status(now);
        Ok(status)
    }

    /// [`QuotaStore::statuses`], synchronously.
    pub fn statuses_now(&self, now: Timestamp) -> Vec<PoolStatus> {
        let ledgers: Vec<Arc<Mutex<PoolLedger>>> = {
            let pools = self.pools.read().unwrap_or_else(PoisonError::into_inner);
            pools.values().cloned().collect()
        };
        let mut statuses: Vec<PoolStatus> = ledgers.iter().map(|l| lock(l).status(now)).collect();
        statuses.sort_by(|a, b| a.id.cmp(&b.id));
        statuses
    }
}

#[async_trait]
impl QuotaStore for MemoryQuotaStore {
    async fn configure(&self, pool: PoolConfig, now: Timestamp) -> Result<()> {
        self.configure_now(pool, now);
        Ok(())
    }

    async fn admit(&self, pool: &PoolId, cost: Cost, now: Timestamp) -> Result<Admission> {
        self.admit_now(pool, cost, now)
    }

    async fn settle(&self, reservation: Reservation, usage: Usage) -> Result<()> {
        self.settle_now(reservation, usage)
    }

    async fn release(&self, reservation: Reservation) -> Result<()> {
        self.release_now(reservation)
    }

    async fn observe_error(&self, pool: &PoolId, error: &Error, now: Timestamp) -> Result<()> {
        self.observe_error_now(pool, error, now)
    }

    async fn observe_success(
        &self,
        pool: &PoolId,
        snapshot: &RateLimitSnapshot,
        now: Timestamp,
    ) -> Result<()> {
        self.observe_success_now(pool, snapshot, now)
    }

    async fn status(&self, pool: &PoolId, now: Timestamp) -> Result<PoolStatus> {
        self.status_now(pool, now)
    }

    async fn statuses(&self, now: Timestamp) -> Result<Vec<PoolStatus>> {
        Ok(self.statuses_now(now))
    }
}

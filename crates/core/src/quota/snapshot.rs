//! [`LedgerSnapshot`]: a pool's counted state as plain, serialisable data, so that a store can
//! keep it outside the process (a file several processes share) and restore it exactly.
//!
//! The snapshot holds what was *counted and learned*, never what was *configured*: limits, the
//! day's zone and the models always come from the caller's current [`PoolConfig`](super::PoolConfig)
//! when the snapshot is restored, so a configuration change takes effect on the next run while
//! the counts carry over. [`PoolLedger::snapshot`](super::PoolLedger::snapshot) and
//! [`PoolLedger::restore`](super::PoolLedger::restore) convert.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Dimension, Limits, SharedPoolSuspicion};

/// Everything a [`PoolLedger`](super::PoolLedger) counted, learned and was told, as JSON-ready
/// data.
///
/// The fields are private on purpose: the shape follows the ledger's internals, and a store only
/// needs to carry it (serialise, keep, deserialise, restore). Restoring checks it for
/// consistency, so a hand-edited snapshot is refused rather than miscounted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerSnapshot {
    /// Limits learned from the upstream (a 429's quota value, rate-limit headers).
    #[serde(default)]
    pub(crate) learned: Limits,
    /// Counted uses still inside the 60-second window when the snapshot was taken, oldest
    /// first (each one is also the bookkeeping of its reservation: settle and release find it
    /// by `id`).
    #[serde(default)]
    pub(crate) log: Vec<LoggedUse>,
    /// The calendar day the pool was in, and what it counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) day: Option<DaySnapshot>,
    /// The next reservation's sequence number: unique per pool across every process sharing
    /// the snapshot, so a reservation settles the use it made and no other.
    pub(crate) next_id: u64,
    /// The latest instant the pool has seen (time never runs backwards inside a pool).
    pub(crate) latest: Timestamp,
    /// Since when the pool has been watched (for shared-pool suspicions).
    pub(crate) since: Timestamp,
    /// The upstream asked for a delay until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) wait: Option<HoldSnapshot>,
    /// The upstream said a daily quota is used up until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) daily: Option<HoldSnapshot>,
    /// Billing is required; the advice for the person reading it. Lasts until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) billing: Option<String>,
    /// Evidence that the pool is shared with other models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shared: Option<SharedPoolSuspicion>,
}

impl LedgerSnapshot {
    /// Forgets every block (billing required, a daily block, a requested delay) and says
    /// whether there was one. Counts, learned limits and suspicions stay: they are facts, a
    /// block is a decision a person may want to retry.
    pub(crate) fn clear_blocks(&mut self) -> bool {
        let had = self.billing.is_some() || self.daily.is_some() || self.wait.is_some();
        self.billing = None;
        self.daily = None;
        self.wait = None;
        had
    }
}

/// One counted use in the per-minute log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoggedUse {
    /// The reservation's sequence number.
    pub(crate) id: u64,
    /// When it was counted.
    pub(crate) at: Timestamp,
    /// Requests counted on RPM.
    pub(crate) requests: u64,
    /// Tokens counted on TPM.
    pub(crate) tokens: u64,
    /// Images counted on IPM.
    pub(crate) images: u64,
}

/// The pool's current day and its request count.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DaySnapshot {
    /// The zone the day was computed in: a restore under another zone starts a new day, as
    /// reconfiguring a live ledger does.
    pub(crate) zone: String,
    /// Midnight starting the day.
    pub(crate) start: Timestamp,
    /// Midnight ending it.
    pub(crate) end: Timestamp,
    /// Requests counted in the day.
    pub(crate) count: u64,
}

/// A block the upstream imposed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HoldSnapshot {
    /// Until when.
    pub(crate) until: Timestamp,
    /// The dimension concerned, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) dimension: Option<Dimension>,
}

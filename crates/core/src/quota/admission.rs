//! The answer to "may I send this now?": [`Admission`], and the [`Reservation`] a "go" holds.

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Cost, Dimension, PoolId};

/// What [`QuotaStore::admit`](super::QuotaStore::admit) answers.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a Go holds capacity: settle or release its reservation"]
pub enum Admission {
    /// Send now: the cost is reserved on every dimension. Settle the reservation with the real
    /// usage, or release it when the upstream did not count the request.
    Go(Reservation),
    /// A per-minute window is full, or the upstream asked for a delay: nothing is reserved; ask
    /// again at `at` (or use another pool now). `dimension` is `None` when the upstream asked
    /// for a delay without naming a quota.
    WaitUntil {
        /// The earliest instant the same cost could be admitted.
        at: Timestamp,
        /// The dimension that is full.
        dimension: Option<Dimension>,
    },
    /// The pool cannot serve this cost until `at` (the next midnight in the pool's zone for a
    /// daily quota), or ever (`None`: billing required, or a cost larger than a limit).
    ExhaustedUntil {
        /// When the pool becomes usable again, if it ever does without a person acting.
        at: Option<Timestamp>,
        /// Why.
        reason: Exhausted,
    },
}

impl Admission {
    /// True for [`Admission::Go`].
    pub fn is_go(&self) -> bool {
        matches!(self, Admission::Go(_))
    }

    /// The reservation of a "go", else `None`.
    pub fn into_reservation(self) -> Option<Reservation> {
        match self {
            Admission::Go(r) => Some(r),
            _ => None,
        }
    }
}

/// Why a pool is exhausted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Exhausted {
    /// A daily quota is used up (counted here, or reported by the upstream).
    Quota {
        /// Which dimension (RPD).
        dimension: Dimension,
    },
    /// The project has no entitlement (a limit of 0, or the upstream said billing is required).
    /// Only a person can fix it: it lasts until restart with
    /// [`MemoryQuotaStore`](super::MemoryQuotaStore), until cleared with
    /// [`FileQuotaStore`](super::FileQuotaStore) ([`clear_blocks`](super::FileQuotaStore::clear_blocks)).
    BillingRequired {
        /// What to do, for the person reading it.
        advice: String,
    },
    /// This one cost is larger than the limit itself, so no wait can ever admit it (ten images
    /// in one call on a pool with an IPM of 5; any request on a limit of 0).
    TooLarge {
        /// The dimension.
        dimension: Dimension,
        /// What the request needs on it.
        cost: u64,
        /// The limit.
        limit: u64,
    },
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exhausted::Quota { dimension } => write!(f, "{dimension} quota used up"),
            Exhausted::BillingRequired { advice } => write!(f, "billing required: {advice}"),
            Exhausted::TooLarge {
                dimension,
                cost,
                limit,
            } => write!(
                f,
                "a cost of {cost} on {dimension} can never fit its limit of {limit}"
            ),
        }
    }
}

/// Capacity held for one upstream call.
///
/// Not `Clone`: it is given back exactly once, by [`settle`](super::QuotaStore::settle) (the
/// upstream counted the request: record what it really used) or
/// [`release`](super::QuotaStore::release) (it did not: give everything back). Dropping it keeps
/// the estimate counted, which errs on the safe side.
///
/// Plain data, serialisable (`{"pool", "id", "at", "day_start", "cost"}`), so that with a store
/// shared between processes ([`FileQuotaStore`](super::FileQuotaStore)) a reservation made by
/// one process can be settled or released by another.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(from = "ReservationData")]
pub struct Reservation {
    pub(crate) pool: Arc<PoolId>,
    pub(crate) id: u64,
    pub(crate) at: Timestamp,
    pub(crate) day_start: Timestamp,
    pub(crate) cost: Cost,
}

impl Reservation {
    /// A reservation, for [`QuotaStore`](super::QuotaStore) implementations: `id` is the
    /// store's own sequence number within the pool, `at` the instant the cost was counted and
    /// `day_start` the start of the pool's day it was counted in (a release after midnight must
    /// not give back the new day's capacity).
    pub fn new(
        pool: impl Into<Arc<PoolId>>,
        id: u64,
        at: Timestamp,
        day_start: Timestamp,
        cost: Cost,
    ) -> Self {
        Reservation {
            pool: pool.into(),
            id,
            at,
            day_start,
            cost,
        }
    }

    /// The start of the pool's day the reservation was counted in.
    pub fn day_start(&self) -> Timestamp {
        self.day_start
    }

    /// The pool the capacity was taken from.
    pub fn pool(&self) -> &PoolId {
        &self.pool
    }

    /// The instant the capacity was counted at (the admission time, never earlier than any
    /// earlier admission on the pool).
    pub fn at(&self) -> Timestamp {
        self.at
    }

    /// What was reserved.
    pub fn cost(&self) -> Cost {
        self.cost
    }

    /// The pool-local sequence number of the reservation (for a shared store's bookkeeping).
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// [`Reservation`]'s serialised form (the pool by value: `Arc` needs serde's `rc` feature, and
/// `Reservation` is deliberately not `Clone`, so it is written through a borrowing twin).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReservationData {
    pool: PoolId,
    id: u64,
    at: Timestamp,
    day_start: Timestamp,
    cost: Cost,
}

#[derive(Serialize)]
struct ReservationRef<'a> {
    pool: &'a PoolId,
    id: u64,
    at: Timestamp,
    day_start: Timestamp,
    cost: Cost,
}

impl From<ReservationData> for Reservation {
    fn from(d: ReservationData) -> Self {
        Reservation::new(d.pool, d.id, d.at, d.day_start, d.cost)
    }
}

impl Serialize for Reservation {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ReservationRef {
            pool: &self.pool,
            id: self.id,
            at: self.at,
            day_start: self.day_start,
            cost: self.cost,
        }
        .serialize(serializer)
    }
}

//! A [`QuotaStore`](imagegate_core::quota::QuotaStore) in Redis: one project's quota shared by
//! every imagegate instance on every machine, with no overshoot.
//!
//! Each instance's own ledger believes it has the whole quota; several of them together send
//! the upstream more than its limit. [`RedisQuotaStore`] keeps the ledger in Redis instead and
//! runs each operation as one Lua script, so the check of every dimension and the reservation
//! on all of them are one atomic step whichever instance makes it:
//!
//! - the instant is Redis's own (`TIME` inside the script), never an instance's clock, so clock
//!   skew between machines cannot open a window twice;
//! - the pool's day is a calendar day in its zone: the caller passes the midnights around
//!   Redis's time, computed with the zone database, and the script picks the one bracketing
//!   its own instant (days of 23 and 25 hours come out right);
//! - all keys of a pool share one hash tag (Redis Cluster routes them to one slot) and expire
//!   when the pool is idle;
//! - learned limits, blocks and shared-pool suspicions live in Redis, so every instance learns
//!   from any instance's 429;
//! - an admission carries an id: retried after a lost reply, it answers the reservation already
//!   made instead of making a second one;
//! - Redis unreachable: an admission fails closed with a typed
//!   [`Unavailable`](imagegate_core::ErrorKind::Unavailable) error naming the store, or, with
//!   [`OnStoreError::Local`], falls back to an in-process ledger and rejoins when Redis returns.
//!
//! `docs/scaling.md` explains when to use it and how it behaves when Redis fails.

#![deny(missing_docs)]

mod days;
mod keys;
mod options;
mod reply;
mod script;
mod status;
mod store;

pub use options::{OnStoreError, RedisClock, RedisStoreOptions};
pub use store::RedisQuotaStore;

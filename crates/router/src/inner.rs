//! [`Inner`]: everything the router shares between requests, and the one-time setup of its
//! pools in the store.
//!
//! Kept apart from `router.rs` (the public face) so that the modules serving a request depend
//! on this state and not on the builder, and `router.rs` depends on them: no import loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use imagegate_core::quota::TokenEstimator;
use imagegate_core::{
    Capabilities, Error, Result, clock::Clock, quota::PoolConfig, quota::PoolId, quota::PriceTable,
    quota::QuotaStore,
};
use jiff::Timestamp;
use tokio::sync::{Notify, OnceCell};

use crate::backoff::Jitter;
use crate::budget::Ledger;
use crate::cache::Cache;
use crate::events::Events;
use crate::policy::Policy;
use crate::queue::Gate;
use crate::room::Room;
use crate::target::TargetState;

/// Everything the router shares between requests.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Arc<dyn QuotaStore>,
    pub(crate) targets: Vec<TargetState>,
    pub(crate) routes: HashMap<String, Vec<usize>>,
    /// Distinct pools, each with its configuration (the first target naming it).
    pub(crate) pools: Vec<PoolConfig>,
    pub(crate) configured: OnceCell<()>,
    pub(crate) policy: Policy,
    pub(crate) jitter: Arc<dyn Jitter>,
    pub(crate) estimator: TokenEstimator,
    pub(crate) prices: PriceTable,
    pub(crate) budget: Ledger,
    pub(crate) cache: Option<Cache>,
    pub(crate) gate: Arc<Gate>,
    /// The order waiting requests take capacity in.
    pub(crate) room: Room,
    pub(crate) events: Events,
    pub(crate) next_request: AtomicU64,
    /// Notified whenever a target's concurrency permit is given back.
    pub(crate) freed: Arc<Notify>,
    /// The daily-limit warning level (70 or 90) already given per pool, and for which day.
    pub(crate) warned: Mutex<HashMap<PoolId, (Timestamp, u8)>>,
    pub(crate) capabilities: Capabilities,
    pub(crate) default_model: String,
    /// Pools linked as sharing one quota (a 429 revealed it): a call on one reserves on all.
    pub(crate) shared: Mutex<HashMap<PoolId, Vec<PoolId>>>,
    /// Whether `shared` holds anything (so the common case skips its lock).
    pub(crate) any_shared: AtomicBool,
}

impl Inner {
    pub(crate) fn next_request_id(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }

    /// Configures the router's pools in the store, once.
    pub(crate) async fn ensure_configured(&self) -> Result<()> {
        self.configured
            .get_or_try_init(|| async {
                let now = self.clock.now();
                for pool in &self.pools {
                    self.store.configure(pool.clone(), now).await?;
                }
                Ok::<(), Error>(())
            })
            .await
            .map(|_| ())
    }
}

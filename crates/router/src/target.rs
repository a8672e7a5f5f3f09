//! A [`Target`]: one provider x model x project with the quota pool it draws on, and the
//! router's private state about it (disabled, backing off, busy).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use imagegate_core::quota::PoolConfig;
use imagegate_core::{Capabilities, Error, ImageProvider};
use jiff::Timestamp;
use tokio::sync::Semaphore;

use crate::latency::Latencies;

/// Where a request can be sent: a provider, the model to ask it for, and the quota pool the
/// call draws on.
///
/// Targets whose pools have equal [`PoolId`](imagegate_core::quota::PoolId)s share one pool (two
/// models of a free tier that Google counts together, or two keys of one project): the router
/// configures each distinct pool once, from the first target that names it.
#[derive(Clone)]
#[non_exhaustive]
pub struct Target {
    /// A unique name for routes, attempts and events, e.g. `gemini-flash@proj-a`.
    pub name: String,
    /// The backend. One call is at most one upstream request; the router owns every retry.
    pub provider: Arc<dyn ImageProvider>,
    /// The model sent in every request to this target.
    pub model: String,
    /// The quota pool this target spends.
    pub pool: PoolConfig,
}

impl Target {
    /// A target.
    pub fn new(
        name: impl Into<String>,
        provider: Arc<dyn ImageProvider>,
        model: impl Into<String>,
        pool: PoolConfig,
    ) -> Self {
        Target {
            name: name.into(),
            provider,
            model: model.into(),
            pool,
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("provider", &self.provider.name())
            .field("model", &self.model)
            .field("pool", &self.pool.id)
            .finish()
    }
}

/// What the router has learned about a target across requests.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Set by billing_required / unauthorized / region_unsupported / model_not_found: the
    /// target is never called again (until restart). The error carries the advice.
    pub(crate) disabled: Option<Error>,
    /// A bare 429 (no retry hint): the target is avoided until then.
    pub(crate) not_before: Option<Timestamp>,
    /// Consecutive bare 429s, for the backoff's exponent; reset by a success.
    pub(crate) bare_429s: u32,
    /// When `not_before` was last set: only a call sent after it proves the target has room
    /// again. A success of a call sent before it is old news (it was admitted before the
    /// refusal), and clearing the hold for it would send the next call straight into another
    /// 429 whenever several calls are in flight.
    pub(crate) held_at: Option<Timestamp>,
}

impl Health {
    /// Holds the target until `until`, as learned at `now`.
    pub(crate) fn hold(&mut self, until: Timestamp, now: Timestamp) {
        if self.not_before.is_none_or(|t| t < until) {
            self.not_before = Some(until);
        }
        self.held_at = Some(now);
    }

    /// A call sent at `sent` succeeded: the backoff ends, unless a hold came after it was sent.
    pub(crate) fn succeeded(&mut self, sent: Timestamp) {
        if self.held_at.is_none_or(|at| sent >= at) {
            self.bare_429s = 0;
            self.not_before = None;
            self.held_at = None;
        }
    }
}

/// A target and the router's state about it.
#[derive(Debug)]
pub(crate) struct TargetState {
    pub(crate) target: Target,
    /// The provider's capabilities for the target's model, read once (they are constant).
    pub(crate) caps: Capabilities,
    /// Per-target concurrency, when limited.
    pub(crate) permits: Option<Arc<Semaphore>>,
    /// What its successful calls took lately.
    pub(crate) latency: Latencies,
    health: Mutex<Health>,
}

impl TargetState {
    pub(crate) fn new(target: Target, per_target: Option<usize>) -> Self {
        let caps = target.provider.capabilities(Some(&target.model));
        TargetState {
            target,
            caps,
            permits: per_target.map(|n| Arc::new(Semaphore::new(n))),
            latency: Latencies::default(),
            health: Mutex::new(Health::default()),
        }
    }

    /// The health record, locked briefly (never across an await).
    pub(crate) fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The error that disabled the target, if any.
    pub(crate) fn disabled(&self) -> Option<Error> {
        self.health().disabled.clone()
    }

    /// Images one call to this target may return (at least 1).
    pub(crate) fn max_images(&self) -> u32 {
        self.caps.max_images_per_call.max(1)
    }
}

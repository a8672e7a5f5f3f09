//! The typed event stream: what the router did and why, for tracing (always), subscribers
//! (`Router::subscribe`, the CLI's `-v`) and, later, metrics.

use std::time::Duration;

use imagegate_core::quota::PoolId;
use imagegate_core::{ErrorKind, QuotaFacts, quota::Dimension};
use jiff::Timestamp;
use tokio::sync::{broadcast, mpsc};

/// One thing the router did. `request` numbers the router's requests from 1.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// An upstream call is being sent.
    AttemptStarted {
        /// The request.
        request: u64,
        /// The target's name.
        target: String,
        /// Images asked for in this call.
        images: u32,
        /// How long the request waited before this call.
        waited: Duration,
    },
    /// An upstream call ended.
    AttemptFinished {
        /// The request.
        request: u64,
        /// The target's name.
        target: String,
        /// `None` for success, else the error's kind.
        outcome: Option<ErrorKind>,
        /// How long the upstream took.
        elapsed: Duration,
        /// What the call cost in US dollars.
        cost_usd: f64,
    },
    /// The request waits before its next try.
    Throttled {
        /// The request.
        request: u64,
        /// How long.
        wait: Duration,
        /// Until when.
        until: Timestamp,
        /// Why.
        reason: ThrottleReason,
    },
    /// An upstream 429 (rate limited, daily quota or limit 0), with its quota facts.
    RateLimited {
        /// The request.
        request: u64,
        /// The target's name.
        target: String,
        /// The provider.
        provider: String,
        /// The project, when known.
        project: Option<String>,
        /// The model the target asked for.
        model: String,
        /// The error's kind.
        kind: ErrorKind,
        /// The HTTP status.
        status: Option<u16>,
        /// The delay the upstream asked for.
        retry_after: Option<Duration>,
        /// What the upstream said about the quota.
        quota: QuotaFacts,
    },
    /// A pool refuses everything until `until` (a daily quota is used up).
    PoolParked {
        /// The pool.
        pool: PoolId,
        /// Until when (the next midnight in the pool's zone, or the upstream's reset instant).
        until: Option<Timestamp>,
    },
    /// A target is never called again (until restart).
    TargetDisabled {
        /// The target's name.
        target: String,
        /// Why.
        kind: ErrorKind,
        /// What a person should do.
        advice: String,
    },
    /// A target was skipped because its call would pass the budget.
    BudgetReached {
        /// The request.
        request: u64,
        /// The target's name.
        target: String,
        /// Which budget.
        scope: BudgetScope,
        /// The budget in US dollars.
        limit_usd: f64,
        /// Spent so far (reserved included).
        spent_usd: f64,
        /// The call's estimated price.
        estimate_usd: f64,
    },
    /// The answer came from the cache: no quota, no money.
    CacheHit {
        /// The request.
        request: u64,
        /// The cache key (hex SHA-256 of the normalised request).
        key: String,
    },
    /// A pool passed 70% or 90% of a daily limit.
    DailyQuotaWarning {
        /// The pool.
        pool: PoolId,
        /// Requests counted today.
        used: u64,
        /// The daily limit.
        limit: u64,
        /// 70 or 90.
        percent: u8,
    },
}

/// Why a request waits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleReason {
    /// Every usable pool's window is full (or holds an upstream delay or a backoff) until
    /// then.
    QuotaWindow {
        /// The full dimension, when known.
        dimension: Option<Dimension>,
        /// The pool that frees first.
        pool: Option<PoolId>,
    },
    /// Every usable pool is parked for the day; the earliest reset is then.
    DailyQuota {
        /// The pool that resets first.
        pool: Option<PoolId>,
    },
    /// Backing off before retrying the same target after an unavailable/connect error.
    Backoff {
        /// The target.
        target: String,
        /// The retry's number, from 1.
        retry: u32,
    },
    /// Every usable target is at its concurrency limit.
    Concurrency,
    /// Waiting for a preferred target rather than paying for the fallback.
    PreferredTarget {
        /// The target waited for.
        target: String,
    },
}

/// Which budget was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BudgetScope {
    /// The budget for the life of the router (one CLI run).
    Run,
    /// The budget per UTC day.
    Day,
}

/// Where events go: tracing always, then any subscribers.
#[derive(Debug)]
pub(crate) struct Events {
    broadcast: broadcast::Sender<Event>,
    sink: Option<mpsc::UnboundedSender<Event>>,
}

impl Events {
    pub(crate) fn new(sink: Option<mpsc::UnboundedSender<Event>>) -> Self {
        let (broadcast, _) = broadcast::channel(1_024);
        Events { broadcast, sink }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.broadcast.subscribe()
    }

    /// True when someone besides tracing listens (to skip building events nobody reads).
    pub(crate) fn emit(&self, event: Event) {
        trace(&event);
        if let Some(sink) = &self.sink {
            let _ = sink.send(event.clone());
        }
        if self.broadcast.receiver_count() > 0 {
            let _ = self.broadcast.send(event);
        }
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Logs `event` to tracing: every 429 at warn with provider, project, model, status and the
/// quota facts; parking, disabling, budget and daily warnings at warn; the rest at debug.
fn trace(event: &Event) {
    match event {
        Event::AttemptStarted {
            request,
            target,
            images,
            waited,
        } => tracing::debug!(
            request,
            target = %target,
            images,
            waited_ms = ms(*waited),
            "attempt started"
        ),
        Event::AttemptFinished {
            request,
            target,
            outcome,
            elapsed,
            cost_usd,
        } => tracing::debug!(
            request,
            target = %target,
            outcome = outcome.map_or("ok", ErrorKind::as_str),
            elapsed_ms = ms(*elapsed),
            cost_usd,
            "attempt finished"
        ),
        Event::Throttled {
            request,
            wait,
            until,
            reason,
        } => tracing::debug!(
            request,
            wait_ms = ms(*wait),
            until = %until,
            reason = ?reason,
            "throttled"
        ),
        Event::RateLimited {
            request,
            target,
            provider,
            project,
            model,
            kind,
            status,
            retry_after,
            quota,
        } => tracing::warn!(
            request,
            target = %target,
            provider = %provider,
            project = %project.as_deref().unwrap_or("-"),
            model = %model,
            kind = %kind,
            status = status.unwrap_or(429),
            retry_after_ms = retry_after.map(ms),
            dimension = %quota.dimension.map_or("-", Dimension::as_str),
            quota_id = %quota.quota_id.as_deref().unwrap_or("-"),
            quota_value = quota.quota_value,
            quota_model = %quota.model.as_deref().unwrap_or("-"),
            reset_at = quota.reset_at.map(|t| t.to_string()),
            "upstream 429"
        ),
        Event::PoolParked { pool, until } => tracing::warn!(
            pool = %pool,
            until = until.map(|t| t.to_string()),
            "pool parked until its daily reset"
        ),
        Event::TargetDisabled {
            target,
            kind,
            advice,
        } => {
            tracing::warn!(target = %target, kind = kind.as_str(), advice = %advice, "target disabled")
        }
        Event::BudgetReached {
            request,
            target,
            scope,
            limit_usd,
            spent_usd,
            estimate_usd,
        } => tracing::warn!(
            request,
            target = %target,
            scope = ?scope,
            limit_usd,
            spent_usd,
            estimate_usd,
            "budget reached: target skipped"
        ),
        Event::CacheHit { request, key } => tracing::debug!(request, key = %key, "cache hit"),
        Event::DailyQuotaWarning {
            pool,
            used,
            limit,
            percent,
        } => tracing::warn!(
            pool = %pool,
            used,
            limit,
            percent,
            "pool passed {percent}% of its daily limit"
        ),
    }
}

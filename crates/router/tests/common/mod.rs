//! Helpers shared by the router's integration tests: a paused-time clock, pools, scripted
//! targets and errors shaped like the providers' own.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use imagegate_core::quota::{Limits, PACIFIC, PoolConfig, PoolId};
use imagegate_core::{
    Error, ErrorKind, QuotaFacts, clock::Clock, clock::TokioClock, quota::Dimension,
};
use imagegate_mock::{Outcome, ScriptedProvider};
use imagegate_router::Target;
use jiff::Timestamp;

/// 2026-11-23 10:00 UTC = 02:00 PST: the next Pacific midnight is 2026-11-24T08:00:00Z.
pub const T0: &str = "2026-11-23T10:00:00Z";

pub fn t0() -> Timestamp {
    T0.parse().unwrap()
}

pub fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// A clock on tokio's paused time, starting at [`T0`]. Call inside a
/// `#[tokio::test(start_paused = true)]`.
pub fn clock() -> Arc<TokioClock> {
    Arc::new(TokioClock::starting_at(t0()))
}

pub fn dyn_clock(clock: &Arc<TokioClock>) -> Arc<dyn Clock> {
    clock.clone()
}

/// The simulated time since [`T0`].
pub fn elapsed(clock: &TokioClock) -> Duration {
    imagegate_core::hints::until(t0(), clock.now())
}

pub fn pool(provider: &str, project: &str, model: &str, limits: Limits) -> PoolConfig {
    PoolConfig::new(
        PoolId::new(provider, project, model),
        limits,
        PACIFIC.clone(),
    )
}

/// A scripted provider called `name` in project `name-proj`.
pub fn scripted(name: &str, clock: &Arc<TokioClock>) -> Arc<ScriptedProvider> {
    Arc::new(ScriptedProvider::new(name, dyn_clock(clock)).with_project(format!("{name}-proj")))
}

/// A scripted provider that answers `outcome` to every call.
pub fn always(name: &str, clock: &Arc<TokioClock>, outcome: Outcome) -> Arc<ScriptedProvider> {
    Arc::new(
        ScriptedProvider::new(name, dyn_clock(clock))
            .with_project(format!("{name}-proj"))
            .otherwise(outcome),
    )
}

/// A target named `name` over `provider`, model `model-NAME`, with its own pool.
pub fn target(name: &str, provider: &Arc<ScriptedProvider>, limits: Limits) -> Target {
    let model = format!("model-{name}");
    Target::new(
        name,
        provider.clone(),
        model.clone(),
        pool(name, &format!("{name}-proj"), &model, limits),
    )
}

pub fn unlimited() -> Limits {
    Limits::NONE
}

pub fn rpm(n: u64) -> Limits {
    Limits {
        rpm: Some(n),
        ..Limits::NONE
    }
}

/// A per-minute 429 asking for `retry_after`.
pub fn rate_limited(retry_after: Duration) -> Outcome {
    let mut quota = QuotaFacts::default();
    quota.dimension = Some(Dimension::Rpm);
    quota.quota_id = Some("GenerateRequestsPerMinutePerProjectPerModel".into());
    Outcome::error(
        Error::new(ErrorKind::RateLimited, "per-minute quota exceeded")
            .with_http_status(429)
            .with_upstream_code("RESOURCE_EXHAUSTED")
            .with_retry_after(retry_after)
            .with_quota(quota),
    )
}

/// A per-day 429 (no reset instant: the router uses the pool's next midnight).
pub fn daily_quota() -> Outcome {
    let mut quota = QuotaFacts::default();
    quota.dimension = Some(Dimension::Rpd);
    quota.quota_id = Some("GenerateRequestsPerDayPerProjectPerModel-FreeTier".into());
    quota.quota_value = Some(100);
    Outcome::error(
        Error::new(ErrorKind::QuotaExhausted, "per-day quota exceeded")
            .with_http_status(429)
            .with_upstream_code("RESOURCE_EXHAUSTED")
            .with_quota(quota),
    )
}

/// A "limit: 0" 429: no entitlement.
pub fn limit_zero() -> Outcome {
    let mut quota = QuotaFacts::default();
    quota.dimension = Some(Dimension::Rpd);
    quota.quota_value = Some(0);
    quota.model = Some("gemini-3-pro-image".into());
    Outcome::error(
        Error::new(ErrorKind::BillingRequired, "Quota exceeded, limit: 0")
            .with_http_status(429)
            .with_quota(quota),
    )
}

pub fn failure(kind: ErrorKind, status: u16) -> Outcome {
    Outcome::error(Error::new(kind, format!("scripted {kind}")).with_http_status(status))
}

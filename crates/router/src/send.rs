//! Sending one call and its bookkeeping: the reservation settled or given back, the budget,
//! the attempt and its events, what the quota model learns, and the decision rule applied.

use imagegate_core::clock::{add, span};
use imagegate_core::quota::{Usage, next_midnight, plausible_delay};
use imagegate_core::{
    Attempt, Error, ErrorKind, GenerateResponse, Result, quota::Dimension, quota::PoolId,
};
use jiff::Timestamp;

use crate::admit::{Go, disable};
use crate::backoff;
use crate::ctx::Ctx;
use crate::events::Event;
use crate::inner::Inner;
use crate::linking::{link_partners, release_all};
use crate::queue::Slot;
use crate::rules::{Action, Counts, Delay, decide};

/// Whether the upstream counted a failed request against the quota (the reservation is
/// settled) or not (released): a refusal (429, auth, region, bad request) or a request that
/// never arrived or failed upstream is not counted; a timeout, an answer that was generated
/// but unusable, or one [cut off after a success status](cut_after_success) is.
fn counted(error: &Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Timeout
            | ErrorKind::ContentBlocked
            | ErrorKind::NoImage
            | ErrorKind::InvalidResponse
            | ErrorKind::Unexpected
    ) || cut_after_success(error)
}

/// An answer that began with a success status and was cut off on its way (a reset mid-body):
/// the upstream served the call, counted it and billed it; only the image was lost. Released
/// like a 502, the ledger would hold one use fewer than the upstream for a minute and, at
/// saturation, send one call too many (docs/performance.md, "Soak").
fn cut_after_success(error: &Error) -> bool {
    error.kind() == ErrorKind::Unavailable
        && error
            .http_status()
            .is_some_and(|status| (200..300).contains(&status))
}

/// Whether an error is an upstream refusal for quota (a 429 of any kind): the one place this
/// is decided, for the `RateLimited` event every counter of 429s reads.
pub(crate) fn is_quota_refusal(error: &Error) -> bool {
    error.http_status() == Some(429)
        || matches!(
            error.kind(),
            ErrorKind::RateLimited | ErrorKind::QuotaExhausted
        )
}

/// Sends the call; `Some(response)` on success, `None` when the loop should decide again, an
/// error when the request is over.
pub(crate) async fn send(
    inner: &Inner,
    route: &[usize],
    ctx: &mut Ctx<'_>,
    go: Go,
    slot: Slot,
) -> Result<Option<GenerateResponse>> {
    let Go {
        pos,
        reservation,
        partners,
        permit,
        chunk,
        price,
    } = go;
    let ti = route[pos];
    let state = &inner.targets[ti];
    let target = &state.target;
    let started = inner.clock.now();
    let waited = span(ctx.wait_from, started);
    inner.events.emit(Event::AttemptStarted {
        request: ctx.id,
        target: target.name.clone(),
        images: chunk.count,
        waited,
    });
    let result = target.provider.generate(&chunk).await;
    drop(slot);
    drop(permit);
    let finished = inner.clock.now();
    let elapsed = span(started, finished);
    ctx.wait_from = finished;
    let reserved = price.unwrap_or(0.0);
    let pool = &target.pool.id;
    let result = result.and_then(|r| {
        if r.images.is_empty() {
            Err(
                Error::new(ErrorKind::NoImage, "the provider answered without an image")
                    .with_provider(target.provider.name().to_owned()),
            )
        } else {
            Ok(r)
        }
    });
    match result {
        Ok(mut response) => {
            let usage = Usage::reported(response.images.len(), response.usage.as_ref());
            if let Err(e) = inner.store.settle(reservation, usage).await {
                tracing::warn!(pool = %pool, error = %e, "could not settle a reservation");
            }
            for partner in partners {
                if let Err(e) = inner.store.settle(partner, usage).await {
                    tracing::warn!(pool = %pool, error = %e, "could not settle a reservation");
                }
            }
            // Rate-limit headers the answer carried (OpenAI sends them on every answer): the
            // stated limits replace guesses before any 429 teaches them.
            for snapshot in &response.rate_limits {
                if let Err(e) = inner.store.observe_success(pool, snapshot, finished).await {
                    tracing::warn!(pool = %pool, error = %e, "could not record rate-limit headers");
                }
            }
            let cost = response
                .cost_usd
                .filter(|c| *c > 0.0)
                .or(price)
                .unwrap_or(0.0);
            inner.budget.settle(reserved, cost);
            state.latency.record(elapsed);
            state.health().succeeded(started);
            ctx.attempts.push(Attempt::new(
                target.name.clone(),
                None,
                started,
                waited,
                elapsed,
                cost,
            ));
            inner.events.emit(Event::AttemptFinished {
                request: ctx.id,
                target: target.name.clone(),
                outcome: None,
                elapsed,
                cost_usd: cost,
            });
            if target.pool.limits.rpd.is_some() {
                warn_daily(inner, pool, finished).await;
            }
            response.cost_usd = Some(cost);
            Ok(Some(response))
        }
        Err(error) => {
            let kind = error.kind();
            if let Err(e) = inner.store.observe_error(pool, &error, finished).await {
                tracing::warn!(pool = %pool, error = %e, "could not record an upstream error");
            }
            let billed = kind == ErrorKind::Timeout || cut_after_success(&error);
            let cost = if billed { reserved } else { 0.0 };
            let delay = plausible_delay(&error);
            if kind == ErrorKind::RateLimited {
                link_partners(inner, pool, delay.map(|d| add(finished, d)), finished).await;
            }
            let stored = if counted(&error) {
                let mut result = inner.store.settle(reservation, Usage::default()).await;
                for partner in partners {
                    result = result.and(inner.store.settle(partner, Usage::default()).await);
                }
                result
            } else {
                let result = inner.store.release(reservation).await;
                result.and(release_all(inner, partners).await)
            };
            if let Err(e) = stored {
                tracing::warn!(pool = %pool, error = %e, "could not give back a reservation");
            }
            inner.budget.settle(reserved, cost);
            ctx.attempts.push(Attempt::new(
                target.name.clone(),
                Some(kind),
                started,
                waited,
                elapsed,
                cost,
            ));
            inner.events.emit(Event::AttemptFinished {
                request: ctx.id,
                target: target.name.clone(),
                outcome: Some(kind),
                elapsed,
                cost_usd: cost,
            });
            if is_quota_refusal(&error) {
                inner.events.emit(Event::RateLimited {
                    request: ctx.id,
                    target: target.name.clone(),
                    provider: error
                        .provider()
                        .unwrap_or(target.provider.name())
                        .to_owned(),
                    project: error
                        .project()
                        .or(target.provider.project())
                        .map(str::to_owned)
                        .or_else(|| Some(pool.project.clone())),
                    model: target.model.clone(),
                    kind,
                    status: error.http_status(),
                    retry_after: error.retry_after(),
                    quota: error.quota().clone(),
                });
            }
            on_error(inner, ctx, pos, ti, pool, error, finished)
        }
    }
}

/// Applies the decision rule for `error` ([`decide`]). `Ok(None)`: decide again; `Err`: the
/// request is over.
fn on_error(
    inner: &Inner,
    ctx: &mut Ctx<'_>,
    pos: usize,
    ti: usize,
    pool: &PoolId,
    error: Error,
    now: Timestamp,
) -> Result<Option<GenerateResponse>> {
    let policy = &inner.policy;
    let kind = error.kind();
    match kind {
        ErrorKind::RateLimited => ctx.rate_limited[pos] += 1,
        ErrorKind::Unavailable | ErrorKind::Connect | ErrorKind::Timeout => ctx.retries[pos] += 1,
        _ => {}
    }
    let counts = Counts {
        rate_limited: ctx.rate_limited[pos],
        failures: ctx.retries[pos],
    };
    match decide(kind, plausible_delay(&error), policy, counts) {
        Action::Throttle { back_off, leave } => {
            // The store has learned the limit and holds the pool for the delay; a bare 429
            // backs the target off with jitter instead.
            if leave {
                ctx.excluded[pos] = true;
            }
            if back_off {
                let mut health = inner.targets[ti].health();
                let delay = backoff::delay(
                    inner.jitter.as_ref(),
                    policy.backoff_base,
                    policy.backoff_cap,
                    health.bare_429s,
                );
                health.bare_429s = health.bare_429s.saturating_add(1);
                health.hold(add(now, delay), now);
            }
        }
        Action::Park => {
            let zone = &inner.targets[ti].target.pool.day_zone;
            let until = error
                .quota()
                .reset_at
                .filter(|t| *t > now)
                .unwrap_or_else(|| next_midnight(now, zone));
            inner.events.emit(Event::PoolParked {
                pool: pool.clone(),
                until: Some(until),
            });
        }
        Action::Disable => disable(inner, ti, &error),
        Action::Retry { delay, retry } => {
            let delay = match delay {
                Delay::Upstream(d) => d,
                Delay::Backoff(step) => backoff::delay(
                    inner.jitter.as_ref(),
                    policy.backoff_base,
                    policy.backoff_cap,
                    step,
                ),
            };
            ctx.sticky = Some((pos, add(now, delay), retry));
        }
        Action::Leave => ctx.excluded[pos] = true,
        Action::Fail => return Err(error),
    }
    ctx.last_error = Some(error);
    Ok(None)
}

/// Emits a warning when `pool` passes 70% or 90% of its daily limit (once per level per day).
async fn warn_daily(inner: &Inner, pool: &PoolId, now: Timestamp) {
    let Ok(status) = inner.store.status(pool, now).await else {
        return;
    };
    let Some(day) = status
        .dimensions
        .iter()
        .find(|d| d.dimension == Dimension::Rpd)
    else {
        return;
    };
    let Some(limit) = day.limit.filter(|l| *l > 0) else {
        return;
    };
    let percent = day.used.saturating_mul(100) / limit;
    let level = if percent >= 90 {
        90
    } else if percent >= 70 {
        70
    } else {
        return;
    };
    let day_end = day.resets_at.unwrap_or(now);
    {
        let mut warned = inner
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match warned.get(pool) {
            Some((end, given)) if *end == day_end && *given >= level => return,
            _ => {
                warned.insert(pool.clone(), (day_end, level));
            }
        }
    }
    inner.events.emit(Event::DailyQuotaWarning {
        pool: pool.clone(),
        used: day.used,
        limit,
        percent: level,
    });
}

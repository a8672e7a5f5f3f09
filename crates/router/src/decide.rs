//! The decisions, per request: which target, now or when, and what to do about each error.
//!
//! One request may need several upstream calls (more images than a target returns per call);
//! each call runs [`call`]'s loop:
//!
//! 1. scan the route in preference order, skipping targets that cannot serve the request
//!    (excluded for this request, disabled, model or capabilities misfit, a call larger than a
//!    limit, the budget), and take the first whose pool admits it now ([`Admission::Go`]);
//! 2. if none admits, wait for the earliest instant one could (a pool's window, an upstream
//!    delay, a daily reset, a free concurrency slot) if that is within the deadline, else fail
//!    at once saying when capacity returns;
//! 3. send, and act on the outcome by error kind (see [`Router`](crate::Router)'s docs and
//!    `docs/router.md`). Retries happen here and nowhere else.

use std::time::Duration;

use imagegate_core::clock::add;
use imagegate_core::hints::until;
use imagegate_core::quota::{Exhausted, Usage};
use imagegate_core::{
    Admission, Attempt, Dimension, Error, ErrorKind, GenerateRequest, GenerateResponse, PoolId,
    Priority, QuotaFacts, Reservation, Result, TokenUsage,
};
use jiff::Timestamp;
use tokio::sync::OwnedSemaphorePermit;

use crate::backoff;
use crate::budget::Refusal;
use crate::cache::Cache;
use crate::events::{BudgetScope, Event, ThrottleReason};
use crate::queue::Slot;
use crate::router::{Inner, RequestOptions};

/// How much later a background request wakes than an interactive one waiting for the same
/// instant, so the interactive one takes the capacity first.
const BACKGROUND_LAG: Duration = Duration::from_millis(1);

/// Sleeps on the router's clock until `at`, rounding the wait up to whole milliseconds.
///
/// `Clock::sleep_until` rounds down to milliseconds, so a wait for an instant less than a
/// millisecond away would return at once without the time moving; deciding again would find
/// the same wait and spin. Rounding up guarantees the clock has reached `at` on waking.
///
/// It always sleeps at least a millisecond: a store whose clock runs ahead of ours (a shared
/// store on another machine) can name an instant we already passed, and deciding again at once
/// would find it again.
async fn sleep_until(inner: &Inner, at: Timestamp) {
    let now = inner.clock.now();
    let nanos = (at.as_nanosecond() - now.as_nanosecond()).max(0);
    let millis = u64::try_from((nanos + 999_999) / 1_000_000).unwrap_or(u64::MAX);
    inner
        .clock
        .sleep(Duration::from_millis(millis.max(1)))
        .await;
}

/// Configures the router's pools in the store, once.
pub(crate) async fn ensure_configured(inner: &Inner) -> Result<()> {
    inner
        .configured
        .get_or_try_init(|| async {
            let now = inner.clock.now();
            for pool in &inner.pools {
                inner.store.configure(pool.clone(), now).await?;
            }
            Ok::<(), Error>(())
        })
        .await
        .map(|_| ())
}

/// What one request has learned so far.
struct Ctx<'a> {
    id: u64,
    route_name: &'a str,
    deadline: Option<Timestamp>,
    /// Route positions left for the rest of this request (retries exhausted, too large, ...).
    excluded: Vec<bool>,
    /// Unavailable/connect (and timeout) retries per route position.
    retries: Vec<u32>,
    /// 429s per route position.
    rate_limited: Vec<u32>,
    /// Budget refusals already reported, per route position.
    budget_noted: Vec<bool>,
    /// A retry of one target after a backoff: (route position, not before, retry number).
    sticky: Option<(usize, Timestamp, u32)>,
    /// The latest error an attempt of this request got.
    last_error: Option<Error>,
    /// The error that disabled a target the request could not use.
    disabled: Option<Error>,
    /// The budget refusal that made a target unusable.
    budget: Option<(String, Refusal)>,
    /// Why targets did not fit the request.
    misfits: Vec<String>,
    /// When the current wait began (the request's start, or the end of the last attempt).
    wait_from: Timestamp,
    attempts: Vec<Attempt>,
}

impl Ctx<'_> {
    fn misfit(&mut self, why: String) {
        if !self.misfits.contains(&why) {
            self.misfits.push(why);
        }
    }

    /// The error for "no target can ever serve this call".
    fn no_target(&mut self) -> Error {
        if let Some(e) = self.last_error.take() {
            return e;
        }
        if let Some(e) = self.disabled.take() {
            return e;
        }
        if let Some((target, refusal)) = self.budget.take() {
            let scope = match refusal.scope {
                BudgetScope::Run => "per-run",
                BudgetScope::Day => "per-day",
            };
            return Error::config(format!(
                "the {scope} budget of ${:.4} is reached (${:.4} spent): the next call \
                 (to {target}) would pass it, so nothing was sent; raise the budget or wait",
                refusal.limit, refusal.spent
            ))
            .with_provider("router");
        }
        if !self.misfits.is_empty() {
            return Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "no target of route `{}` can serve this request: {}",
                    self.route_name,
                    self.misfits.join("; ")
                ),
            )
            .with_provider("router");
        }
        Error::config(format!("route `{}` has no usable target", self.route_name))
            .with_provider("router")
    }
}

/// Serves one request on `route_name`.
pub(crate) async fn serve(
    inner: &Inner,
    route_name: &str,
    request: &GenerateRequest,
    options: RequestOptions,
) -> Result<GenerateResponse> {
    request.validate()?;
    let route = inner.routes.get(route_name).ok_or_else(|| {
        Error::config(format!(
            "unknown route `{route_name}`: configure it or use `{}`",
            crate::DEFAULT_ROUTE
        ))
    })?;
    ensure_configured(inner).await?;
    let id = inner.next_request_id();
    let cache = inner
        .cache
        .as_ref()
        .filter(|_| options.cache.unwrap_or(true));
    let key = cache.map(|_| Cache::key(route_name, request));
    if let (Some(cache), Some(key)) = (cache, &key)
        && let Some(mut hit) = cache.get(key, inner.clock.now()).await
    {
        hit.attempts.clear();
        hit.cost_usd = Some(0.0);
        inner.events.emit(Event::CacheHit {
            request: id,
            key: key.clone(),
        });
        return Ok(hit);
    }
    let start = inner.clock.now();
    let deadline = request
        .deadline
        .or_else(|| inner.policy.max_queue_wait.map(|w| add(start, w)));
    let n = route.len();
    let mut ctx = Ctx {
        id,
        route_name,
        deadline,
        excluded: vec![false; n],
        retries: vec![0; n],
        rate_limited: vec![0; n],
        budget_noted: vec![false; n],
        sticky: None,
        last_error: None,
        disabled: None,
        budget: None,
        misfits: Vec::new(),
        wait_from: start,
        attempts: Vec::new(),
    };
    let mut combined: Option<GenerateResponse> = None;
    let mut remaining = request.count;
    while remaining > 0 {
        let done = request.count - remaining;
        let response = call(inner, route, request, remaining, done, &mut ctx).await?;
        remaining =
            remaining.saturating_sub(u32::try_from(response.images.len()).unwrap_or(u32::MAX));
        combined = Some(match combined {
            None => response,
            Some(mut all) => {
                merge(&mut all, response);
                all
            }
        });
    }
    let mut response = combined.ok_or_else(|| {
        Error::new(ErrorKind::Unexpected, "no call was made").with_provider("router")
    })?;
    response.attempts = std::mem::take(&mut ctx.attempts);
    response.cost_usd = Some(response.attempts.iter().map(|a| a.cost_usd).sum());
    if let (Some(cache), Some(key)) = (cache, &key) {
        cache.put(key, inner.clock.now(), &response).await;
    }
    Ok(response)
}

/// Appends a later call's response to the first.
fn merge(all: &mut GenerateResponse, next: GenerateResponse) {
    all.images.extend(next.images);
    all.usage = match (all.usage, next.usage) {
        (Some(a), Some(b)) => {
            let mut sum = TokenUsage::default();
            sum.input_tokens = a.input_tokens + b.input_tokens;
            sum.output_tokens = a.output_tokens + b.output_tokens;
            sum.image_tokens = match (a.image_tokens, b.image_tokens) {
                (Some(x), Some(y)) => Some(x + y),
                (x, y) => x.or(y),
            };
            Some(sum)
        }
        (a, b) => a.or(b),
    };
    all.served_by = next.served_by;
    if next.request_id.is_some() {
        all.request_id = next.request_id;
    }
    if all.note.is_none() {
        all.note = next.note;
    }
}

/// A per-target concurrency permit that wakes the requests waiting for one when it is given
/// back, however it is dropped (after the call, or unused when the pool did not admit).
struct TargetPermit {
    _permit: OwnedSemaphorePermit,
    freed: std::sync::Arc<tokio::sync::Notify>,
}

impl Drop for TargetPermit {
    fn drop(&mut self) {
        self.freed.notify_waiters();
    }
}

/// A target that admitted the call: everything needed to send it.
struct Go {
    pos: usize,
    reservation: Reservation,
    /// The same cost reserved on pools suspected to share this one's quota.
    partners: Vec<Reservation>,
    permit: Option<TargetPermit>,
    chunk: GenerateRequest,
    price: Option<f64>,
}

/// Why a target cannot take the call now.
enum Later {
    /// Its pool's window (or an upstream delay) frees at `at`.
    Window(Timestamp, Option<Dimension>),
    /// Its pool is parked until `at` (a daily quota).
    Daily(Timestamp),
    /// Its concurrency limit is reached.
    Busy,
}

enum Admit {
    Go(Box<Go>),
    Later(Later, Option<f64>),
    Skip,
}

/// The request as sent to the target at route position `pos`: its model, at most the images
/// one call returns, and a seed moved on by the images already made (so split calls do not
/// repeat one picture).
fn chunk_for(request: &GenerateRequest, model: &str, count: u32, done: u32) -> GenerateRequest {
    let mut chunk = request.clone();
    chunk.count = count;
    chunk.model = Some(model.to_owned());
    if done > 0 {
        chunk.seed = request.seed.map(|s| s.wrapping_add(u64::from(done)));
    }
    chunk
}

/// Asks the target at route position `pos` whether it can take the call now.
#[allow(clippy::too_many_arguments)]
async fn admit(
    inner: &Inner,
    ctx: &mut Ctx<'_>,
    pos: usize,
    ti: usize,
    request: &GenerateRequest,
    remaining: u32,
    done: u32,
    now: Timestamp,
) -> Result<Admit> {
    if ctx.excluded[pos] {
        return Ok(Admit::Skip);
    }
    let state = &inner.targets[ti];
    let target = &state.target;
    if let Some(error) = state.disabled() {
        ctx.disabled = Some(error);
        return Ok(Admit::Skip);
    }
    if let Some(model) = &request.model
        && *model != target.model
    {
        ctx.misfit(format!(
            "{} serves {}, not {model}",
            target.name, target.model
        ));
        return Ok(Admit::Skip);
    }
    if let Err(why) = state.caps.check(request) {
        ctx.misfit(format!("{} {why}", target.name));
        return Ok(Admit::Skip);
    }
    let not_before = state.health().not_before;
    if let Some(at) = not_before.filter(|at| *at > now) {
        return Ok(Admit::Later(Later::Window(at, None), None));
    }
    let chunk = chunk_for(
        request,
        &target.model,
        remaining.min(state.max_images()),
        done,
    );
    let price = inner.prices.estimate(&chunk, &target.model, false);
    let permit = match &state.permits {
        Some(permits) => match std::sync::Arc::clone(permits).try_acquire_owned() {
            Ok(p) => Some(TargetPermit {
                _permit: p,
                freed: std::sync::Arc::clone(&inner.freed),
            }),
            Err(_) => return Ok(Admit::Later(Later::Busy, price)),
        },
        None => None,
    };
    let cost = inner.estimator.estimate(&chunk, &target.model);
    let pool = &target.pool.id;
    match inner.store.admit(pool, cost, now).await? {
        Admission::Go(reservation) => {
            let partners = match reserve_partners(inner, pool, cost, now).await? {
                Ok(partners) => partners,
                Err(later) => {
                    inner.store.release(reservation).await?;
                    return Ok(Admit::Later(later, price));
                }
            };
            if let Err(refusal) = inner.budget.reserve(price.unwrap_or(0.0), now) {
                inner.store.release(reservation).await?;
                release_all(inner, partners).await?;
                if !ctx.budget_noted[pos] {
                    ctx.budget_noted[pos] = true;
                    inner.events.emit(Event::BudgetReached {
                        request: ctx.id,
                        target: target.name.clone(),
                        scope: refusal.scope,
                        limit_usd: refusal.limit,
                        spent_usd: refusal.spent,
                        estimate_usd: price.unwrap_or(0.0),
                    });
                }
                ctx.budget = Some((target.name.clone(), refusal));
                return Ok(Admit::Skip);
            }
            Ok(Admit::Go(Box::new(Go {
                pos,
                reservation,
                partners,
                permit,
                chunk,
                price,
            })))
        }
        Admission::WaitUntil { at, dimension } => {
            Ok(Admit::Later(Later::Window(at, dimension), price))
        }
        Admission::ExhaustedUntil { at: Some(at), .. } => Ok(Admit::Later(Later::Daily(at), price)),
        Admission::ExhaustedUntil {
            at: None,
            reason: Exhausted::BillingRequired { advice },
        } => {
            let error = Error::new(
                ErrorKind::BillingRequired,
                format!("pool {pool} has no entitlement: {advice}"),
            )
            .with_provider(target.provider.name().to_owned());
            disable(inner, ti, &error);
            ctx.disabled = Some(error);
            Ok(Admit::Skip)
        }
        Admission::ExhaustedUntil { at: None, reason } => {
            ctx.excluded[pos] = true;
            ctx.misfit(format!("{}: {reason}", target.name));
            Ok(Admit::Skip)
        }
    }
}

fn disable(inner: &Inner, ti: usize, error: &Error) {
    let state = &inner.targets[ti];
    let newly = {
        let mut health = state.health();
        let newly = health.disabled.is_none();
        if newly {
            health.disabled = Some(error.clone());
        }
        newly
    };
    if newly {
        inner.events.emit(Event::TargetDisabled {
            target: state.target.name.clone(),
            kind: error.kind(),
            advice: error.advice(),
        });
    }
}

/// The earliest instant something could be sent, and why.
struct Wake {
    at: Timestamp,
    reason: ThrottleReason,
    daily: bool,
}

fn earlier(best: &mut Option<Wake>, candidate: Wake) {
    if best.as_ref().is_none_or(|b| candidate.at < b.at) {
        *best = Some(candidate);
    }
}

/// Whether to wait for the preferred target (free at `at`, costing `preferred`) rather than
/// send now to a fallback costing `fallback`.
fn prefer_waiting(
    inner: &Inner,
    now: Timestamp,
    at: Timestamp,
    deadline: Option<Timestamp>,
    preferred: Option<f64>,
    fallback: Option<f64>,
) -> bool {
    let policy = &inner.policy;
    if policy.wait_for_preferred.is_zero() || until(now, at) > policy.wait_for_preferred {
        return false;
    }
    if deadline.is_some_and(|d| at > d) {
        return false;
    }
    fallback.unwrap_or(0.0) - preferred.unwrap_or(0.0) >= policy.min_saving_usd
}

/// Makes one upstream call succeed for up to `remaining` images, or fails.
async fn call(
    inner: &Inner,
    route: &[usize],
    request: &GenerateRequest,
    remaining: u32,
    done: u32,
    ctx: &mut Ctx<'_>,
) -> Result<GenerateResponse> {
    loop {
        let freed = inner.freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        let now = inner.clock.now();
        if let Some(deadline) = ctx.deadline
            && now > deadline
        {
            return Err(ctx.last_error.take().unwrap_or_else(|| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("the request's deadline {deadline} passed before it could be sent"),
                )
                .with_provider("router")
            }));
        }
        // A backoff before retrying one target: wait for it (or give the target up when the
        // wait would pass the deadline).
        if let Some((pos, not_before, retry)) = ctx.sticky
            && not_before > now
        {
            if ctx.deadline.is_some_and(|d| not_before > d) {
                ctx.sticky = None;
                ctx.excluded[pos] = true;
                continue;
            }
            inner.events.emit(Event::Throttled {
                request: ctx.id,
                wait: until(now, not_before),
                until: not_before,
                reason: ThrottleReason::Backoff {
                    target: inner.targets[route[pos]].target.name.clone(),
                    retry,
                },
            });
            sleep_until(inner, not_before).await;
            continue;
        }
        let slot = inner.gate.acquire(request.priority).await;
        let now = inner.clock.now();
        let mut wake: Option<Wake> = None;
        let mut busy = false;
        let mut preferred: Option<(usize, Timestamp, Option<f64>)> = None;
        let mut picked: Option<Box<Go>> = None;
        // The sticky target first (its retry is due), then the route in order.
        let sticky = ctx.sticky.take().map(|(pos, _, _)| pos);
        let order = sticky.into_iter().chain(0..route.len());
        for pos in order {
            match admit(inner, ctx, pos, route[pos], request, remaining, done, now).await? {
                Admit::Go(go) => {
                    if let Some((ppos, at, pprice)) = preferred
                        && prefer_waiting(inner, now, at, ctx.deadline, pprice, go.price)
                    {
                        inner.store.release(go.reservation).await?;
                        release_all(inner, go.partners).await?;
                        inner.budget.settle(go.price.unwrap_or(0.0), 0.0);
                        earlier(
                            &mut wake,
                            Wake {
                                at,
                                reason: ThrottleReason::PreferredTarget {
                                    target: inner.targets[route[ppos]].target.name.clone(),
                                },
                                daily: false,
                            },
                        );
                        wake = wake.map(|mut w| {
                            // Waiting for the preferred target is a choice: wake for it.
                            w.at = at;
                            w
                        });
                        break;
                    }
                    picked = Some(go);
                    break;
                }
                Admit::Later(Later::Busy, _) => busy = true,
                Admit::Later(Later::Window(at, dimension), price) => {
                    if preferred.is_none() {
                        preferred = Some((pos, at, price));
                    }
                    earlier(
                        &mut wake,
                        Wake {
                            at,
                            reason: ThrottleReason::QuotaWindow { dimension },
                            daily: false,
                        },
                    );
                }
                Admit::Later(Later::Daily(at), _) => earlier(
                    &mut wake,
                    Wake {
                        at,
                        reason: ThrottleReason::DailyQuota,
                        daily: true,
                    },
                ),
                Admit::Skip => {}
            }
        }
        if let Some(go) = picked {
            match send(inner, route, ctx, *go, slot).await? {
                Some(response) => return Ok(response),
                None => continue,
            }
        }
        drop(slot);
        wait(inner, ctx, request.priority, wake, busy, freed, now).await?;
    }
}

/// Waits for the earliest capacity (or a freed concurrency slot), or fails at once when it
/// comes after the deadline or never.
async fn wait(
    inner: &Inner,
    ctx: &mut Ctx<'_>,
    priority: Priority,
    wake: Option<Wake>,
    busy: bool,
    freed: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    now: Timestamp,
) -> Result<()> {
    if wake.is_none() && !busy {
        return Err(ctx.no_target());
    }
    if let Some(deadline) = ctx.deadline
        && deadline <= now
    {
        // Still nothing at the deadline (every target busy, say): done waiting.
        return Err(match &wake {
            Some(w) => capacity_error(ctx, w, deadline, now),
            None => ctx.last_error.take().unwrap_or_else(|| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("every target was busy until the request's deadline {deadline}"),
                )
                .with_provider("router")
            }),
        });
    }
    if let (Some(deadline), Some(w)) = (ctx.deadline, &wake)
        && w.at > deadline
        && !busy
    {
        return Err(capacity_error(ctx, w, deadline, now));
    }
    let mut at = wake.as_ref().map(|w| w.at);
    if priority == Priority::Background {
        at = at.map(|t| add(t, BACKGROUND_LAG));
    }
    if let Some(deadline) = ctx.deadline {
        at = Some(at.map_or(deadline, |t| t.min(deadline)));
    }
    let reason = match wake {
        Some(w) => w.reason,
        None => ThrottleReason::Concurrency,
    };
    let reason = if busy {
        ThrottleReason::Concurrency
    } else {
        reason
    };
    if let Some(at) = at {
        inner.events.emit(Event::Throttled {
            request: ctx.id,
            wait: until(now, at),
            until: at,
            reason,
        });
    }
    let sleep = async {
        match at {
            Some(at) => sleep_until(inner, at).await,
            None => std::future::pending::<()>().await,
        }
    };
    if busy {
        tokio::select! {
            () = sleep => {}
            () = freed => {}
        }
    } else {
        sleep.await;
    }
    Ok(())
}

/// "No capacity before the deadline": the kind says which (a window or a day), `retry_after`
/// and the message say when capacity returns.
fn capacity_error(ctx: &Ctx<'_>, wake: &Wake, deadline: Timestamp, now: Timestamp) -> Error {
    let kind = if wake.daily {
        ErrorKind::QuotaExhausted
    } else {
        ErrorKind::RateLimited
    };
    let mut quota = QuotaFacts::default();
    if wake.daily {
        quota.reset_at = Some(wake.at);
        quota.dimension = Some(Dimension::Rpd);
    } else if let ThrottleReason::QuotaWindow { dimension } = &wake.reason {
        quota.dimension = *dimension;
    }
    Error::new(
        kind,
        format!(
            "no target of route `{}` can send this request before its deadline {deadline}: \
             capacity returns at {} (in {})",
            ctx.route_name,
            wake.at,
            imagegate_core::human_duration(until(now, wake.at)),
        ),
    )
    .with_provider("router")
    .with_retry_after(until(now, wake.at))
    .with_quota(quota)
}

/// Whether the upstream counted a failed request against the quota (the reservation is
/// settled) or not (released): a refusal (429, auth, region, bad request) or a request that
/// never arrived or failed upstream is not counted; a timeout or an answer that was generated
/// but unusable is.
fn counted(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::Timeout
            | ErrorKind::ContentBlocked
            | ErrorKind::NoImage
            | ErrorKind::InvalidResponse
            | ErrorKind::Unexpected
    )
}

/// Sends the call; `Some(response)` on success, `None` when the loop should decide again, an
/// error when the request is over.
async fn send(
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
    let waited = until(ctx.wait_from, started);
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
    let elapsed = until(started, finished);
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
            {
                let mut health = state.health();
                health.bare_429s = 0;
                health.not_before = None;
            }
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
            let billed = kind == ErrorKind::Timeout;
            let cost = if billed { reserved } else { 0.0 };
            if kind == ErrorKind::RateLimited {
                link_partners(
                    inner,
                    pool,
                    error.retry_after().map(|d| add(finished, d)),
                    finished,
                )
                .await;
            }
            let stored = if counted(kind) {
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
            if error.http_status() == Some(429)
                || matches!(kind, ErrorKind::RateLimited | ErrorKind::QuotaExhausted)
            {
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

/// A per-minute 429 on a pool whose own count had room is evidence that it shares its quota
/// with other pools of the project (the store records the suspicion and the pools that were
/// busy alongside). From then on the router treats them as one: every call on either reserves
/// its cost on both ([`reserve_partners`]), so together they stay within the limit; and the
/// partners are held until the refused pool's `retry_after`, so the next calls do not learn the
/// same thing from each of them.
async fn link_partners(inner: &Inner, pool: &PoolId, until: Option<Timestamp>, now: Timestamp) {
    let Ok(status) = inner.store.status(pool, now).await else {
        return;
    };
    let Some(suspicion) = status.shared_pool_suspected else {
        return;
    };
    let ours: Vec<PoolId> = suspicion
        .partners
        .into_iter()
        .filter(|p| p != pool && inner.pools.iter().any(|c| c.id == *p))
        .collect();
    if ours.is_empty() {
        return;
    }
    {
        let mut shared = inner
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for partner in &ours {
            let list = shared.entry(pool.clone()).or_default();
            if !list.contains(partner) {
                list.push(partner.clone());
            }
            let back = shared.entry(partner.clone()).or_default();
            if !back.contains(pool) {
                back.push(pool.clone());
            }
        }
        inner
            .any_shared
            .store(true, std::sync::atomic::Ordering::Release);
    }
    let Some(until) = until else {
        return;
    };
    for state in &inner.targets {
        if ours.contains(&state.target.pool.id) {
            let mut health = state.health();
            if health.not_before.is_none_or(|t| t < until) {
                health.not_before = Some(until);
            }
        }
    }
}

/// Reserves `cost` on every pool linked to `pool` as sharing its quota: all or none. `Err`
/// says when a partner frees up.
async fn reserve_partners(
    inner: &Inner,
    pool: &PoolId,
    cost: imagegate_core::Cost,
    now: Timestamp,
) -> Result<std::result::Result<Vec<Reservation>, Later>> {
    if !inner.any_shared.load(std::sync::atomic::Ordering::Acquire) {
        return Ok(Ok(Vec::new()));
    }
    let partners: Vec<PoolId> = {
        let shared = inner
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        shared.get(pool).cloned().unwrap_or_default()
    };
    let mut taken = Vec::with_capacity(partners.len());
    for partner in &partners {
        let later = match inner.store.admit(partner, cost, now).await? {
            Admission::Go(r) => {
                taken.push(r);
                continue;
            }
            Admission::WaitUntil { at, dimension } => Later::Window(at, dimension),
            Admission::ExhaustedUntil { at: Some(at), .. } => Later::Daily(at),
            // A partner that can never admit (disabled, too large) does not bind this pool.
            Admission::ExhaustedUntil { at: None, .. } => continue,
        };
        release_all(inner, taken).await?;
        return Ok(Err(later));
    }
    Ok(Ok(taken))
}

/// Gives back partner reservations.
async fn release_all(inner: &Inner, reservations: Vec<Reservation>) -> Result<()> {
    for r in reservations {
        inner.store.release(r).await?;
    }
    Ok(())
}

/// The error rules. `Ok(None)`: decide again; `Err`: the request is over.
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
        ErrorKind::RateLimited => {
            // The store has learned the limit and holds the pool for `retry_after`; a bare
            // 429 (no hint) backs the target off with jitter instead.
            ctx.rate_limited[pos] += 1;
            if ctx.rate_limited[pos] > policy.rate_limit_retries {
                ctx.excluded[pos] = true;
            }
            if error.retry_after().is_none() {
                let mut health = inner.targets[ti].health();
                let delay = backoff::delay(
                    inner.jitter.as_ref(),
                    policy.backoff_base,
                    policy.backoff_cap,
                    health.bare_429s,
                );
                health.bare_429s = health.bare_429s.saturating_add(1);
                health.not_before = Some(add(now, delay));
            }
            ctx.last_error = Some(error);
            Ok(None)
        }
        ErrorKind::QuotaExhausted => {
            let zone = &inner.targets[ti].target.pool.day_zone;
            let until = error
                .quota()
                .reset_at
                .filter(|t| *t > now)
                .unwrap_or_else(|| imagegate_core::quota::next_midnight(now, zone));
            inner.events.emit(Event::PoolParked {
                pool: pool.clone(),
                until: Some(until),
            });
            ctx.last_error = Some(error);
            Ok(None)
        }
        ErrorKind::BillingRequired
        | ErrorKind::Unauthorized
        | ErrorKind::RegionUnsupported
        | ErrorKind::ModelNotFound => {
            disable(inner, ti, &error);
            ctx.last_error = Some(error);
            Ok(None)
        }
        ErrorKind::Unavailable | ErrorKind::Connect => {
            retry_or_move_on(inner, ctx, pos, error, now);
            Ok(None)
        }
        ErrorKind::Timeout if policy.retry_timeouts => {
            retry_or_move_on(inner, ctx, pos, error, now);
            Ok(None)
        }
        _ => Err(error),
    }
}

/// Bounded retries on the same target with full-jitter backoff (or the upstream's delay),
/// then the next target.
fn retry_or_move_on(inner: &Inner, ctx: &mut Ctx<'_>, pos: usize, error: Error, now: Timestamp) {
    let policy = &inner.policy;
    ctx.retries[pos] += 1;
    let retry = ctx.retries[pos];
    if retry <= policy.retries {
        let delay = error.retry_after().unwrap_or_else(|| {
            backoff::delay(
                inner.jitter.as_ref(),
                policy.backoff_base,
                policy.backoff_cap,
                retry - 1,
            )
        });
        ctx.sticky = Some((pos, add(now, delay), retry));
    } else {
        ctx.excluded[pos] = true;
    }
    ctx.last_error = Some(error);
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

//! One upstream call that succeeds, for up to `remaining` images: scan the route, send to the
//! first target that admits, wait for the earliest capacity when none does, decide again after
//! every error. Retries happen here and nowhere else.

use std::time::Duration;

use imagegate_core::clock::{add, span};
use imagegate_core::{Error, ErrorKind, GenerateRequest, GenerateResponse, Result, human_duration};
use jiff::Timestamp;

use crate::admit::{Admit, Go, Later, admit};
use crate::ctx::Ctx;
use crate::events::{Event, ThrottleReason};
use crate::inner::Inner;
use crate::linking::release_all;
use crate::send::send;
use crate::wait::{Wake, earlier, sleep_until, wait};

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
    if policy.wait_for_preferred.is_zero() || span(now, at) > policy.wait_for_preferred {
        return false;
    }
    if deadline.is_some_and(|d| at > d) {
        return false;
    }
    fallback.unwrap_or(0.0) - preferred.unwrap_or(0.0) >= policy.min_saving_usd
}

/// What a call to the target at `ti` is expected to take (`None`: not known yet, or shedding
/// is off).
fn expected(inner: &Inner, ti: usize) -> Option<Duration> {
    inner
        .policy
        .latency_quantile
        .and_then(|q| inner.targets.get(ti)?.latency.expected(q))
}

/// The shortest call any target still open to the request is expected to take (zero when one
/// is not known): a wait that ends later than the deadline minus this is a wait for nothing.
fn soonest(inner: &Inner, route: &[usize], ctx: &Ctx<'_>) -> Duration {
    route
        .iter()
        .enumerate()
        .filter(|(pos, _)| !ctx.excluded[*pos])
        .map(|(_, &ti)| expected(inner, ti).unwrap_or(Duration::ZERO))
        .min()
        .unwrap_or(Duration::ZERO)
}

/// The error for a call that could be sent now but would end after the deadline.
fn cannot_finish(
    inner: &Inner,
    ti: usize,
    took: Duration,
    deadline: Timestamp,
    now: Timestamp,
) -> Error {
    let name = inner
        .targets
        .get(ti)
        .map_or("?", |t| t.target.name.as_str());
    Error::new(
        ErrorKind::Timeout,
        format!(
            "the request cannot finish before its deadline {deadline} (in {}): calls to {name} \
             lately take {} or more, so none was started",
            human_duration(span(now, deadline)),
            human_duration(took),
        ),
    )
    .with_provider("router")
}

/// Makes one upstream call succeed for up to `remaining` images, or fails.
pub(crate) async fn call(
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
        // wait would pass the deadline or the maximum wait).
        if let Some((pos, not_before, retry)) = ctx.sticky
            && not_before > now
        {
            let took = expected(inner, route[pos]).unwrap_or(Duration::ZERO);
            if ctx.deadline.is_some_and(|d| add(not_before, took) > d)
                || !ctx.max_wait.allows(span(ctx.wait_from, not_before), false)
            {
                ctx.sticky = None;
                ctx.excluded[pos] = true;
                continue;
            }
            inner.events.emit(Event::Throttled {
                request: ctx.id,
                wait: span(now, not_before),
                until: not_before,
                reason: ThrottleReason::Backoff {
                    target: inner.targets[route[pos]].target.name.clone(),
                    retry,
                },
            });
            ctx.unless_stopped(sleep_until(inner, not_before)).await?;
            continue;
        }
        let slot = ctx
            .unless_stopped(inner.gate.acquire(request.priority))
            .await?;
        let now = inner.clock.now();
        let rank = crate::room::rank(
            &inner.policy,
            request.priority,
            ctx.start,
            ctx.deadline,
            ctx.id,
            now,
        );
        let turn = ctx.unless_stopped(inner.room.turn(rank)).await?;
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
                        // Waiting for the preferred target is a choice: wake for it.
                        let target = &inner.targets[route[ppos]].target;
                        wake = Some(Wake {
                            at,
                            reason: ThrottleReason::PreferredTarget {
                                target: target.name.clone(),
                            },
                            daily: false,
                            pool: Some(target.pool.id.clone()),
                            dimension: None,
                        });
                        break;
                    }
                    picked = Some(go);
                    break;
                }
                Admit::Later(Later::Busy, _) => busy = true,
                Admit::Later(
                    Later::Window {
                        at,
                        dimension,
                        pool,
                    },
                    price,
                ) => {
                    if preferred.is_none() {
                        preferred = Some((pos, at, price));
                    }
                    earlier(
                        &mut wake,
                        Wake {
                            at,
                            reason: ThrottleReason::QuotaWindow {
                                dimension,
                                pool: pool.clone(),
                            },
                            daily: false,
                            pool,
                            dimension,
                        },
                    );
                }
                Admit::Later(
                    Later::Daily {
                        at,
                        dimension,
                        pool,
                    },
                    _,
                ) => earlier(
                    &mut wake,
                    Wake {
                        at,
                        reason: ThrottleReason::DailyQuota {
                            pool: Some(pool.clone()),
                        },
                        daily: true,
                        pool: Some(pool),
                        dimension,
                    },
                ),
                Admit::Skip => {}
            }
        }
        if let Some(go) = picked {
            let ti = route[go.pos];
            if let (Some(deadline), Some(took)) = (ctx.deadline, expected(inner, ti))
                && add(now, took) > deadline
            {
                // It would end too late: paying for an image thrown away helps no one, and
                // the capacity goes to the next request in the room.
                inner.store.release(go.reservation).await?;
                release_all(inner, go.partners).await?;
                inner.budget.settle(go.price.unwrap_or(0.0), 0.0);
                ctx.excluded[go.pos] = true;
                ctx.last_error = Some(cannot_finish(inner, ti, took, deadline, now));
                drop(turn);
                drop(slot);
                continue;
            }
            drop(turn);
            if let Err(stopped) = ctx.check_stop() {
                inner.store.release(go.reservation).await?;
                release_all(inner, go.partners).await?;
                inner.budget.settle(go.price.unwrap_or(0.0), 0.0);
                return Err(stopped);
            }
            match send(inner, route, ctx, *go, slot).await? {
                Some(response) => return Ok(response),
                None => continue,
            }
        }
        drop(turn);
        drop(slot);
        ctx.call_takes = soonest(inner, route, ctx);
        // An aged background request wakes with the interactive ones (no background lag), or
        // it would find their capacity taken every time and its aging would count for nothing.
        let priority = if rank.0 == 0 {
            imagegate_core::Priority::Interactive
        } else {
            request.priority
        };
        wait(inner, ctx, priority, wake, busy, freed, now).await?;
    }
}

//! Picking and admitting a target: whether the target at one route position can take the
//! call now ([`admit`]), and if not, when it could ([`Later`]).
//!
//! Admission itself is the quota store's (`QuotaStore::admit`, core's quota module): this is
//! the only place in the router that asks it, besides the partner reservations of
//! shared-pool linking.

use std::sync::Arc;

use imagegate_core::quota::Exhausted;
use imagegate_core::{
    Error, ErrorKind, GenerateRequest, Result, quota::Admission, quota::Dimension, quota::PoolId,
    quota::Reservation,
};
use jiff::Timestamp;
use tokio::sync::{Notify, OwnedSemaphorePermit};

use crate::ctx::Ctx;
use crate::events::Event;
use crate::inner::Inner;
use crate::linking::{release_all, reserve_partners};

/// A per-target concurrency permit that wakes the requests waiting for one when it is given
/// back, however it is dropped (after the call, or unused when the pool did not admit).
pub(crate) struct TargetPermit {
    _permit: OwnedSemaphorePermit,
    freed: Arc<Notify>,
}

impl Drop for TargetPermit {
    fn drop(&mut self) {
        self.freed.notify_waiters();
    }
}

/// A target that admitted the call: everything needed to send it.
pub(crate) struct Go {
    pub(crate) pos: usize,
    pub(crate) reservation: Reservation,
    /// The same cost reserved on pools suspected to share this one's quota.
    pub(crate) partners: Vec<Reservation>,
    pub(crate) permit: Option<TargetPermit>,
    pub(crate) chunk: GenerateRequest,
    pub(crate) price: Option<f64>,
}

/// Why a target cannot take the call now.
pub(crate) enum Later {
    /// Its pool's window (or an upstream delay, or a backoff) frees at `at`.
    Window {
        at: Timestamp,
        dimension: Option<Dimension>,
        pool: Option<PoolId>,
    },
    /// Its pool is parked until `at` (a daily quota).
    Daily {
        at: Timestamp,
        dimension: Option<Dimension>,
        pool: PoolId,
    },
    /// Its concurrency limit is reached.
    Busy,
}

/// The answer for one route position.
pub(crate) enum Admit {
    Go(Box<Go>),
    Later(Later, Option<f64>),
    Skip,
}

/// The dimension a daily exhaustion names.
fn exhausted_dimension(reason: &Exhausted) -> Option<Dimension> {
    match reason {
        Exhausted::Quota { dimension } => Some(*dimension),
        _ => None,
    }
}

/// When a pool that did not admit frees up (`None` for an answer that is not a wait).
fn later(answer: Admission, pool: &PoolId) -> Option<Later> {
    match answer {
        Admission::WaitUntil { at, dimension } => Some(Later::Window {
            at,
            dimension,
            pool: Some(pool.clone()),
        }),
        Admission::ExhaustedUntil {
            at: Some(at),
            reason,
        } => Some(Later::Daily {
            at,
            dimension: exhausted_dimension(&reason),
            pool: pool.clone(),
        }),
        _ => None,
    }
}

/// The request as sent to the target: its model, at most the images one call returns, and a
/// seed moved on by the images already made (so split calls do not repeat one picture).
fn chunk_for(request: &GenerateRequest, model: &str, count: u32, done: u32) -> GenerateRequest {
    let mut chunk = request.clone();
    chunk.count = count;
    chunk.model = Some(model.to_owned());
    if done > 0 {
        chunk.seed = request.seed.map(|s| s.wrapping_add(u64::from(done)));
    }
    chunk
}

/// Asks the target at route position `pos` (target index `ti`) whether it can take the call
/// now: model and capabilities, its backoff, its concurrency, its pool (and linked pools),
/// then the budget.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn admit(
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
    let pool = &target.pool.id;
    let not_before = state.health().not_before;
    if let Some(at) = not_before.filter(|at| *at > now) {
        let later = Later::Window {
            at,
            dimension: None,
            pool: Some(pool.clone()),
        };
        return Ok(Admit::Later(later, None));
    }
    let chunk = chunk_for(
        request,
        &target.model,
        remaining.min(state.max_images()),
        done,
    );
    let price = inner.prices.estimate(&chunk, &target.model, false);
    let permit = match &state.permits {
        Some(permits) => match Arc::clone(permits).try_acquire_owned() {
            Ok(p) => Some(TargetPermit {
                _permit: p,
                freed: Arc::clone(&inner.freed),
            }),
            Err(_) => return Ok(Admit::Later(Later::Busy, price)),
        },
        None => None,
    };
    let cost = inner.estimator.estimate(&chunk, &target.model);
    match inner.store.admit(pool, cost, now).await? {
        Admission::Go(reservation) => {
            let partners = match reserve_partners(inner, pool, cost, now).await? {
                Ok(partners) => partners,
                Err((partner, answer)) => {
                    inner.store.release(reservation).await?;
                    return Ok(match later(answer, &partner) {
                        Some(later) => Admit::Later(later, price),
                        None => Admit::Skip,
                    });
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
        answer @ (Admission::WaitUntil { .. } | Admission::ExhaustedUntil { at: Some(_), .. }) => {
            Ok(later(answer, pool).map_or(Admit::Skip, |later| Admit::Later(later, price)))
        }
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

/// Disables the target `ti` until restart, announcing it once.
pub(crate) fn disable(inner: &Inner, ti: usize, error: &Error) {
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

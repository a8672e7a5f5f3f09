//! Shared-pool linking: pools a 429 reveals as sharing one quota are treated as one.
//!
//! A per-minute 429 on a pool whose own count had room is evidence that it shares its quota
//! with other pools of the project (the store records the suspicion and the pools that were
//! busy alongside). From then on every call on either reserves its cost on both
//! ([`reserve_partners`]), so together they stay within the limit; and the partners are held
//! until the refused pool's delay ([`link_partners`]), so the next calls do not learn the same
//! thing from each of them.

use std::sync::PoisonError;
use std::sync::atomic::Ordering;

use imagegate_core::{Result, quota::Admission, quota::Cost, quota::PoolId, quota::Reservation};
use jiff::Timestamp;

use crate::inner::Inner;

/// Links `pool` with the partners the store suspects, and holds them until `until`.
pub(crate) async fn link_partners(
    inner: &Inner,
    pool: &PoolId,
    until: Option<Timestamp>,
    now: Timestamp,
) {
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
        let mut shared = inner.shared.lock().unwrap_or_else(PoisonError::into_inner);
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
        inner.any_shared.store(true, Ordering::Release);
    }
    let Some(until) = until else {
        return;
    };
    for state in &inner.targets {
        if ours.contains(&state.target.pool.id) {
            state.health().hold(until, now);
        }
    }
}

/// Reserves `cost` on every pool linked to `pool` as sharing its quota: all or none. `Err`
/// names the partner that refused and its answer (when it frees up), for admission to wait on.
pub(crate) async fn reserve_partners(
    inner: &Inner,
    pool: &PoolId,
    cost: Cost,
    now: Timestamp,
) -> Result<std::result::Result<Vec<Reservation>, (PoolId, Admission)>> {
    if !inner.any_shared.load(Ordering::Acquire) {
        return Ok(Ok(Vec::new()));
    }
    let partners: Vec<PoolId> = {
        let shared = inner.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.get(pool).cloned().unwrap_or_default()
    };
    let mut taken = Vec::with_capacity(partners.len());
    for partner in partners {
        match inner.store.admit(&partner, cost, now).await? {
            Admission::Go(r) => taken.push(r),
            // A partner that can never admit (disabled, too large) does not bind this pool.
            Admission::ExhaustedUntil { at: None, .. } => {}
            later => {
                release_all(inner, taken).await?;
                return Ok(Err((partner, later)));
            }
        }
    }
    Ok(Ok(taken))
}

/// Gives back partner reservations.
pub(crate) async fn release_all(inner: &Inner, reservations: Vec<Reservation>) -> Result<()> {
    for r in reservations {
        inner.store.release(r).await?;
    }
    Ok(())
}

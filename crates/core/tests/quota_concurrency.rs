//! 1,000 concurrent admissions on a multi-thread runtime never overshoot a pool, and admit
//! exactly up to its limit (no capacity is lost to races either).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;

use imagegate_core::quota::{
    Admission, Cost, Dimension, Limits, MemoryQuotaStore, PACIFIC, PoolConfig, PoolId, QuotaStore,
};
use jiff::{Timestamp, ToSpan};
use tokio::sync::Barrier;

const TASKS: usize = 1_000;

fn start() -> Timestamp {
    "2026-11-23T10:00:00Z".parse().unwrap()
}

async fn store_with(pools: &[(PoolId, Limits)]) -> Arc<dyn QuotaStore> {
    let store: Arc<dyn QuotaStore> = Arc::new(MemoryQuotaStore::new());
    for (id, limits) in pools {
        store
            .configure(
                PoolConfig::new(id.clone(), *limits, PACIFIC.clone()),
                start(),
            )
            .await
            .unwrap();
    }
    store
}

/// Spawns `TASKS` tasks that all wait on one barrier, then admit `cost(i)` on `pool(i)` at an
/// instant within the same minute. Returns, per task, the pool and the admission.
async fn race(
    store: &Arc<dyn QuotaStore>,
    pool: impl Fn(usize) -> PoolId,
    cost: impl Fn(usize) -> Cost,
) -> Vec<(PoolId, Cost, Admission)> {
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut handles = Vec::with_capacity(TASKS);
    for i in 0..TASKS {
        let store = Arc::clone(store);
        let barrier = Arc::clone(&barrier);
        let id = pool(i);
        let cost = cost(i);
        let now = start() + ((i % 50) as i64).milliseconds();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let admission = store.admit(&id, cost, now).await.unwrap();
            (id, cost, admission)
        }));
    }
    let mut out = Vec::with_capacity(TASKS);
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_admissions_admit_exactly_the_limit() {
    let id = PoolId::new("gemini", "proj-a", "gemini-2.5-flash-image");
    let limits = Limits {
        rpm: Some(100),
        rpd: Some(10_000),
        tpm: Some(1_000_000),
        ipm: Some(1_000),
    };
    let store = store_with(&[(id.clone(), limits)]).await;
    let results = race(&store, |_| id.clone(), |_| Cost::new(1, 1, 1_290)).await;
    let go = results.iter().filter(|(_, _, a)| a.is_go()).count();
    assert_eq!(go, 100);
    for (_, _, a) in &results {
        match a {
            Admission::Go(_) => {}
            Admission::WaitUntil { at, dimension } => {
                assert_eq!(*dimension, Some(Dimension::Rpm));
                assert!(*at >= start() + 60.seconds(), "{at}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let status = store.status(&id, start() + 1.second()).await.unwrap();
    assert_eq!(status.dimensions[0].used, 100);
    assert_eq!(status.dimensions[1].used, 100);
    assert_eq!(status.dimensions[2].used, 100 * 1_290);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uneven_costs_on_two_pools_never_overshoot_any_dimension() {
    let a = PoolId::new("gemini", "proj-a", "m1");
    let b = PoolId::new("gemini", "proj-b", "m1");
    let limits = Limits {
        rpm: Some(400),
        rpd: Some(300),
        tpm: Some(200_000),
        ipm: Some(150),
    };
    let store = store_with(&[(a.clone(), limits), (b.clone(), limits)]).await;
    let pool = |i: usize| {
        if i.is_multiple_of(2) {
            a.clone()
        } else {
            b.clone()
        }
    };
    let cost = |i: usize| Cost::new(1, (i % 4) as u64, 500 + (i % 7) as u64 * 900);
    let results = race(&store, pool, cost).await;
    for id in [&a, &b] {
        let admitted: Vec<Cost> = results
            .iter()
            .filter(|(p, _, adm)| p == id && adm.is_go())
            .map(|(_, c, _)| *c)
            .collect();
        let requests: u64 = admitted.iter().map(|c| c.requests).sum();
        let images: u64 = admitted.iter().map(|c| c.images).sum();
        let tokens: u64 = admitted.iter().map(|c| c.tokens).sum();
        assert!(requests <= 300, "{id}: {requests} requests");
        assert!(images <= 150, "{id}: {images} images");
        assert!(tokens <= 200_000, "{id}: {tokens} tokens");
        // Every refusal was real: what was admitted is what the store counted.
        let status = store.status(id, start() + 1.second()).await.unwrap();
        assert_eq!(status.dimensions[0].used, requests);
        assert_eq!(status.dimensions[2].used, tokens);
        assert_eq!(status.dimensions[3].used, images);
        assert!(requests > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn releases_racing_admissions_never_overshoot() {
    let id = PoolId::new("gemini", "proj-a", "m");
    let limits = Limits {
        rpm: Some(50),
        ..Limits::NONE
    };
    let store = store_with(&[(id.clone(), limits)]).await;
    // Each task admits; half of the admitted give their reservation back (the upstream did
    // not count them) and try once more. The total kept can never exceed 50.
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let store = Arc::clone(&store);
        let barrier = Arc::clone(&barrier);
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let now = start() + ((i % 10) as i64).milliseconds();
            let mut kept = 0u64;
            if let Admission::Go(r) = store.admit(&id, Cost::new(1, 0, 0), now).await.unwrap() {
                if i.is_multiple_of(2) {
                    store.release(r).await.unwrap();
                } else {
                    kept += 1;
                    store.settle(r, Default::default()).await.unwrap();
                }
            }
            if i.is_multiple_of(2)
                && store
                    .admit(&id, Cost::new(1, 0, 0), now)
                    .await
                    .unwrap()
                    .is_go()
            {
                kept += 1;
            }
            kept
        }));
    }
    let mut kept = 0;
    for h in handles {
        kept += h.await.unwrap();
    }
    assert_eq!(kept, 50, "released capacity is reused, never doubled");
    let status = store.status(&id, start() + 1.second()).await.unwrap();
    assert_eq!(status.dimensions[0].used, 50);
}

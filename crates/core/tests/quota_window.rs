//! The per-minute window's length: 60 s as the upstreams count by default, and a longer one
//! (a guard for the trip to the upstream) counted the same way by the memory and file stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use imagegate_core::quota::{
    Admission, Cost, Dimension, FileQuotaStore, Limits, MemoryQuotaStore, PACIFIC, PoolConfig,
    PoolId, QuotaStore,
};
use jiff::{Timestamp, ToSpan};

const ONE: Cost = Cost::new(1, 1, 1_290);

fn t0() -> Timestamp {
    "2026-11-23T18:00:00Z".parse().unwrap()
}

fn pool() -> PoolConfig {
    let limits = Limits {
        rpm: Some(1),
        ..Limits::NONE
    };
    PoolConfig::new(
        PoolId::new("gemini", "proj-a", "gemini-2.5-flash-image"),
        limits,
        PACIFIC.clone(),
    )
}

/// Admits one request at `t0` on an RPM-1 pool, then asks again `after` later: `None` when
/// admitted, else the instant the store says to come back.
async fn again_after(store: &dyn QuotaStore, after: Duration) -> Option<Timestamp> {
    let id = pool().id;
    store.configure(pool(), t0()).await.unwrap();
    let first = store.admit(&id, ONE, t0()).await.unwrap();
    assert!(matches!(first, Admission::Go(_)), "{first:?}");
    let later = t0() + jiff::SignedDuration::try_from(after).unwrap();
    match store.admit(&id, ONE, later).await.unwrap() {
        Admission::Go(_) => None,
        Admission::WaitUntil {
            at,
            dimension: Some(Dimension::Rpm),
        } => Some(at),
        other => panic!("expected a go or an RPM wait, got {other:?}"),
    }
}

/// Stores under test, each with its name for messages.
type Named = Vec<(&'static str, Arc<dyn QuotaStore>)>;

/// One fresh store of each kind with `window` (`None`: the default), and the directory that
/// holds the file store's state.
fn stores(window: Option<Duration>) -> (tempfile::TempDir, Named) {
    let dir = tempfile::tempdir().unwrap();
    let memory = MemoryQuotaStore::new();
    let file = FileQuotaStore::open(dir.path().join("quota.json")).unwrap();
    let stores: Named = match window {
        None => vec![("memory", Arc::new(memory)), ("file", Arc::new(file))],
        Some(w) => vec![
            ("memory", Arc::new(memory.with_window(w))),
            ("file", Arc::new(file.with_window(w))),
        ],
    };
    (dir, stores)
}

#[tokio::test]
async fn by_default_a_use_leaves_the_window_after_the_upstreams_sixty_seconds() {
    let (_dir, fresh) = stores(None);
    for (name, store) in fresh {
        assert_eq!(
            again_after(&*store, Duration::from_secs(59)).await,
            Some(t0() + 60.seconds()),
            "{name}"
        );
    }
    let (_dir, fresh) = stores(None);
    for (name, store) in fresh {
        assert_eq!(
            again_after(&*store, Duration::from_secs(60)).await,
            None,
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_guarded_window_keeps_the_use_one_second_longer_in_every_store() {
    let guarded = Some(Duration::from_secs(61));
    let (_dir, fresh) = stores(guarded);
    for (name, store) in fresh {
        // The instant the upstream's own window frees, the store still counts the use.
        assert_eq!(
            again_after(&*store, Duration::from_secs(60)).await,
            Some(t0() + 61.seconds()),
            "{name}"
        );
        // The status says when it leaves, too.
        let status = store.status(&pool().id, t0() + 60.seconds()).await.unwrap();
        let rpm = &status.dimensions[0];
        assert_eq!((rpm.dimension, rpm.used), (Dimension::Rpm, 1), "{name}");
        assert_eq!(rpm.resets_at, Some(t0() + 61.seconds()), "{name}");
    }
    let (_dir, fresh) = stores(guarded);
    for (name, store) in fresh {
        assert_eq!(
            again_after(&*store, Duration::from_secs(61)).await,
            None,
            "{name}"
        );
    }
}

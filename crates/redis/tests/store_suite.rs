//! The quota store's behaviour, one suite run against every store: the memory store (the
//! reference), the file store and the Redis store (a real `redis-server`, with the caller's
//! clock so the suite can drive time). Each behaviour is the memory store's, as the core
//! crate's own tests pin it (`quota_learning`, `quota_day_boundary`, `quota_concurrency` and
//! the ledger's unit tests); a store that differs fails here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use imagegate_core::quota::{
    Admission, BlockReason, Cost, Exhausted, FileQuotaStore, Limits, MemoryQuotaStore, PACIFIC,
    PoolConfig, PoolId, QuotaStore, RateLimitSnapshot, Usage, next_midnight,
};
use imagegate_core::{Error, ErrorKind, QuotaFacts, hints, quota::Dimension};
use imagegate_redis::{RedisClock, RedisQuotaStore, RedisStoreOptions};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use tokio::sync::Barrier;

use support::RedisServer;

#[derive(Clone, Copy, Debug)]
enum Kind {
    Memory,
    File,
    Redis,
}

/// A store and what keeps it alive (its directory, its server).
struct Fixture {
    store: Arc<dyn QuotaStore>,
    _dir: Option<tempfile::TempDir>,
    _server: Option<RedisServer>,
}

/// A store of `kind` with `pools` configured at `now`; `None` when the Redis server is not
/// installed (the reason is printed; `IMAGEGATE_REQUIRE_REDIS=1` fails instead).
async fn fixture(kind: Kind, pools: Vec<PoolConfig>, now: Timestamp) -> Option<Fixture> {
    let (store, dir, server): (Arc<dyn QuotaStore>, _, _) = match kind {
        Kind::Memory => (Arc::new(MemoryQuotaStore::new()), None, None),
        Kind::File => {
            let dir = tempfile::tempdir().unwrap();
            let store = FileQuotaStore::open(dir.path().join("quota.json")).unwrap();
            (Arc::new(store), Some(dir), None)
        }
        Kind::Redis => {
            let server = RedisServer::start()?;
            let options = RedisStoreOptions::new(server.url()).with_clock(RedisClock::Caller);
            let store = RedisQuotaStore::new(options).unwrap();
            (Arc::new(store), None, Some(server))
        }
    };
    for pool in pools {
        store.configure(pool, now).await.unwrap();
    }
    Some(Fixture {
        store,
        _dir: dir,
        _server: server,
    })
}

const ONE: Cost = Cost::new(1, 1, 1_290);
const MODEL: &str = "gemini-2.5-flash-image";
const FREE: Limits = Limits {
    rpm: Some(10),
    rpd: Some(1_500),
    tpm: None,
    ipm: None,
};
const TIER1: Limits = Limits {
    rpm: Some(300),
    rpd: Some(10_000),
    tpm: None,
    ipm: None,
};

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn t0() -> Timestamp {
    at("2026-11-23T18:00:00Z") // 10:00 PST
}

fn pool(model: &str) -> PoolId {
    PoolId::new("gemini", "proj-a", model)
}

fn configs(limits: Limits, models: &[&str]) -> Vec<PoolConfig> {
    models
        .iter()
        .map(|m| PoolConfig::new(pool(m), limits, PACIFIC.clone()))
        .collect()
}

fn facts(dimension: Dimension, value: Option<u64>, quota_id: &str, model: &str) -> QuotaFacts {
    let mut f = QuotaFacts::default();
    f.dimension = Some(dimension);
    f.quota_id = Some(quota_id.into());
    f.quota_metric =
        Some("generativelanguage.googleapis.com/generate_content_free_tier_requests".into());
    f.quota_value = value;
    f.model = Some(model.into());
    f
}

fn per_minute_429(value: u64, delay: Duration, model: &str) -> Error {
    Error::new(ErrorKind::RateLimited, "You exceeded your current quota")
        .with_quota(facts(
            Dimension::Rpm,
            Some(value),
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            model,
        ))
        .with_retry_after(delay)
        .with_upstream_code("RESOURCE_EXHAUSTED")
        .with_provider("gemini")
        .with_http_status(429)
}

fn per_day_429(value: u64, now: Timestamp) -> Error {
    let reset = next_midnight(now, &PACIFIC);
    let mut quota = facts(
        Dimension::Rpd,
        Some(value),
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        MODEL,
    );
    quota.reset_at = Some(reset);
    Error::new(ErrorKind::QuotaExhausted, "You exceeded your current quota")
        .with_quota(quota)
        .with_retry_after(hints::until(now, reset))
        .with_upstream_code("RESOURCE_EXHAUSTED")
        .with_provider("gemini")
        .with_http_status(429)
}

fn limit_zero_429() -> Error {
    Error::new(
        ErrorKind::BillingRequired,
        "Quota exceeded for metric ..., limit: 0",
    )
    .with_quota(facts(
        Dimension::Rpd,
        Some(0),
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        "gemini-3-pro-image",
    ))
    .with_upstream_code("RESOURCE_EXHAUSTED")
    .with_project("proj-a")
    .with_provider("gemini")
    .with_http_status(429)
}

fn exhausted_rpd_until(a: &Admission) -> Option<Timestamp> {
    match a {
        Admission::ExhaustedUntil {
            at,
            reason: Exhausted::Quota {
                dimension: Dimension::Rpd,
            },
        } => *at,
        other => panic!("expected an exhausted RPD, got {other:?}"),
    }
}

async fn go(store: &Arc<dyn QuotaStore>, id: &PoolId, cost: Cost, now: Timestamp) -> bool {
    store.admit(id, cost, now).await.unwrap().is_go()
}

// ---- admission and the window ----

async fn the_window_admits_the_limit_then_waits_for_the_oldest_use(kind: Kind) {
    let limits = Limits {
        rpm: Some(2),
        ..Limits::NONE
    };
    let Some(f) = fixture(kind, configs(limits, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    assert!(go(s, &pool(MODEL), ONE, t0()).await);
    assert!(go(s, &pool(MODEL), ONE, t0() + 10.seconds()).await);
    assert_eq!(
        s.admit(&pool(MODEL), ONE, t0() + 20.seconds())
            .await
            .unwrap(),
        Admission::WaitUntil {
            at: t0() + 60.seconds(),
            dimension: Some(Dimension::Rpm)
        }
    );
    // At exactly 60 s the first use has left the window; the second has not.
    assert!(go(s, &pool(MODEL), ONE, t0() + 60.seconds()).await);
    assert!(!go(s, &pool(MODEL), ONE, t0() + 60.seconds()).await);
}

async fn a_lagging_clock_is_counted_at_the_latest_instant(kind: Kind) {
    let limits = Limits {
        rpm: Some(2),
        ..Limits::NONE
    };
    let Some(f) = fixture(kind, configs(limits, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    let late = t0() + 30.seconds();
    assert!(go(s, &pool(MODEL), ONE, late).await);
    let r = s
        .admit(&pool(MODEL), ONE, t0() - 20.seconds())
        .await
        .unwrap()
        .into_reservation()
        .unwrap();
    assert_eq!(r.at(), late);
    assert_eq!(
        s.admit(&pool(MODEL), ONE, late).await.unwrap(),
        Admission::WaitUntil {
            at: late + 60.seconds(),
            dimension: Some(Dimension::Rpm)
        }
    );
}

async fn reconfiguring_keeps_what_was_counted(kind: Kind) {
    let limits = Limits {
        rpm: Some(5),
        ..Limits::NONE
    };
    let Some(f) = fixture(kind, configs(limits, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    for _ in 0..3 {
        assert!(go(s, &pool(MODEL), ONE, t0()).await);
    }
    let tighter = Limits {
        rpm: Some(3),
        ..Limits::NONE
    };
    s.configure(configs(tighter, &[MODEL]).remove(0), t0())
        .await
        .unwrap();
    assert!(!go(s, &pool(MODEL), ONE, t0()).await);
    assert_eq!(
        s.status(&pool(MODEL), t0()).await.unwrap().dimensions[0].used,
        3
    );
}

async fn releasing_gives_everything_back_once(kind: Kind) {
    let limits = Limits {
        rpm: Some(1),
        rpd: Some(1),
        ..Limits::NONE
    };
    let Some(f) = fixture(kind, configs(limits, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    let r = s
        .admit(&pool(MODEL), ONE, t0())
        .await
        .unwrap()
        .into_reservation()
        .unwrap();
    assert!(!go(s, &pool(MODEL), ONE, t0()).await);
    s.release(r).await.unwrap();
    let status = s.status(&pool(MODEL), t0()).await.unwrap();
    assert_eq!(
        (status.dimensions[0].used, status.dimensions[1].used),
        (0, 0)
    );
    assert!(go(s, &pool(MODEL), ONE, t0()).await);
}

async fn settling_replaces_the_token_estimate_with_real_usage(kind: Kind) {
    let limits = Limits {
        tpm: Some(3_000),
        ..Limits::NONE
    };
    let Some(f) = fixture(kind, configs(limits, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    let r = s
        .admit(&pool(MODEL), Cost::new(1, 1, 2_000), t0())
        .await
        .unwrap()
        .into_reservation()
        .unwrap();
    assert!(!go(s, &pool(MODEL), Cost::new(1, 1, 2_000), t0()).await);
    s.settle(
        r,
        Usage {
            tokens: Some(900),
            images: Some(1),
        },
    )
    .await
    .unwrap();
    assert!(go(s, &pool(MODEL), Cost::new(1, 1, 2_000), t0()).await);
    assert_eq!(
        s.status(&pool(MODEL), t0()).await.unwrap().dimensions[2].used,
        2_900
    );
}

async fn a_cost_larger_than_a_limit_is_exhausted_for_good(kind: Kind) {
    let limits = Limits {
        ipm: Some(2),
        ..Limits::NONE
    };
    let Some(f) = fixture(kind, configs(limits, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    assert_eq!(
        s.admit(&pool(MODEL), Cost::new(1, 3, 0), t0())
            .await
            .unwrap(),
        Admission::ExhaustedUntil {
            at: None,
            reason: Exhausted::TooLarge {
                dimension: Dimension::Ipm,
                cost: 3,
                limit: 2
            }
        }
    );
    let unknown = PoolId::new("gemini", "proj-z", MODEL);
    let err = s.admit(&unknown, ONE, t0()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(
        err.to_string()
            .contains("gemini/proj-z/gemini-2.5-flash-image"),
        "{err}"
    );
}

// ---- learning ----

async fn a_per_minute_429_learns_the_limit_and_blocks_for_the_retry_delay(kind: Kind) {
    let Some(f) = fixture(kind, configs(TIER1, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    let delay = Duration::from_millis(15_002);
    s.observe_error(&pool(MODEL), &per_minute_429(10, delay, MODEL), t0())
        .await
        .unwrap();
    assert_eq!(
        s.admit(&pool(MODEL), ONE, t0()).await.unwrap(),
        Admission::WaitUntil {
            at: t0() + 15_002.milliseconds(),
            dimension: Some(Dimension::Rpm)
        }
    );
    let status = s.status(&pool(MODEL), t0()).await.unwrap();
    let rpm = &status.dimensions[0];
    assert_eq!(
        (rpm.configured, rpm.learned, rpm.limit),
        (Some(300), Some(10), Some(10))
    );
    assert_eq!(
        status.blocked.as_ref().unwrap().reason,
        BlockReason::RetryDelay
    );
    let later = t0() + 15_002.milliseconds();
    for _ in 0..10 {
        assert!(go(s, &pool(MODEL), ONE, later).await);
    }
    assert_eq!(
        s.admit(&pool(MODEL), ONE, later).await.unwrap(),
        Admission::WaitUntil {
            at: later + 60.seconds(),
            dimension: Some(Dimension::Rpm)
        }
    );
}

async fn a_per_day_429_blocks_until_midnight_pacific_and_learns_the_rpd(kind: Kind) {
    let Some(f) = fixture(kind, configs(FREE, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    s.observe_error(&pool(MODEL), &per_day_429(250, t0()), t0())
        .await
        .unwrap();
    let midnight = at("2026-11-24T08:00:00Z");
    for now in [t0(), t0() + 5.hours(), midnight - 1.millisecond()] {
        assert_eq!(
            s.admit(&pool(MODEL), ONE, now).await.unwrap(),
            Admission::ExhaustedUntil {
                at: Some(midnight),
                reason: Exhausted::Quota {
                    dimension: Dimension::Rpd
                }
            }
        );
    }
    // Time never runs backwards inside a pool: the status is read at the latest instant.
    let status = s.status(&pool(MODEL), t0()).await.unwrap();
    assert_eq!(status.dimensions[1].learned, Some(250));
    let block = status.blocked.unwrap();
    assert_eq!(
        (block.reason, block.until),
        (BlockReason::DailyQuota, Some(midnight))
    );
    assert!(go(s, &pool(MODEL), ONE, midnight).await);
}

async fn a_limit_of_zero_marks_the_pool_billing_required(kind: Kind) {
    let Some(f) = fixture(kind, configs(FREE, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    s.observe_error(&pool(MODEL), &limit_zero_429(), t0())
        .await
        .unwrap();
    for now in [t0(), t0() + 73.hours()] {
        match s.admit(&pool(MODEL), ONE, now).await.unwrap() {
            Admission::ExhaustedUntil {
                at: None,
                reason: Exhausted::BillingRequired { advice },
            } => assert!(
                advice.contains("attach a billing account to project proj-a"),
                "{advice}"
            ),
            other => panic!("expected billing required, got {other:?}"),
        }
    }
    let block = s.status(&pool(MODEL), t0()).await.unwrap().blocked.unwrap();
    assert_eq!(
        (block.reason, block.until),
        (BlockReason::BillingRequired, None)
    );
}

async fn a_429_with_room_left_is_recorded_as_a_shared_pool_suspicion(kind: Kind) {
    let limits = Limits {
        rpm: Some(10),
        ..Limits::NONE
    };
    let other = "gemini-3.1-flash-image-preview";
    let start = t0();
    let partner = PoolId::new("gemini", "proj-b", "unrelated");
    let mut pools = configs(limits, &[MODEL, other]);
    pools.push(PoolConfig::new(partner.clone(), limits, PACIFIC.clone()));
    let Some(f) = fixture(kind, pools, start).await else {
        return;
    };
    let s = &f.store;
    // The file store starts watching a pool at its first operation on the file (configuring
    // touches no file): one admission given back at `start` makes every store watch from then.
    let first = s.admit(&pool(MODEL), ONE, start).await.unwrap();
    s.release(first.into_reservation().unwrap()).await.unwrap();
    let now = start + 2.minutes();
    for _ in 0..6 {
        assert!(go(s, &pool(other), ONE, now).await);
    }
    assert!(go(s, &partner, ONE, now).await);
    let mine = s
        .admit(&pool(MODEL), ONE, now)
        .await
        .unwrap()
        .into_reservation()
        .unwrap();
    let error = per_minute_429(
        10,
        Duration::from_secs(20),
        "gemini-2.5-flash-preview-image",
    );
    s.observe_error(&pool(MODEL), &error, now).await.unwrap();
    s.release(mine).await.unwrap();
    let status = s.status(&pool(MODEL), now).await.unwrap();
    let sus = status.shared_pool_suspected.expect("a suspicion");
    assert_eq!(
        (sus.dimension, sus.used, sus.limit, sus.count),
        (Dimension::Rpm, 1, 10, 1)
    );
    assert_eq!(
        sus.quota_model.as_deref(),
        Some("gemini-2.5-flash-preview-image")
    );
    assert_eq!(sus.partners, vec![pool(other)]);
    s.observe_error(&pool(MODEL), &error, now).await.unwrap();
    let status = s.status(&pool(MODEL), now).await.unwrap();
    assert_eq!(status.shared_pool_suspected.unwrap().count, 2);
}

async fn a_429_on_a_full_pool_or_an_unwatched_window_is_no_evidence(kind: Kind) {
    let limits = Limits {
        rpm: Some(3),
        ..Limits::NONE
    };
    let Some(f) = fixture(kind, configs(limits, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    let now = t0() + 2.minutes();
    for _ in 0..3 {
        assert!(go(s, &pool(MODEL), ONE, now).await);
    }
    let error = per_minute_429(3, Duration::from_secs(5), MODEL);
    s.observe_error(&pool(MODEL), &error, now).await.unwrap();
    assert_eq!(
        s.status(&pool(MODEL), now)
            .await
            .unwrap()
            .shared_pool_suspected,
        None
    );
    let Some(f) = fixture(kind, configs(limits, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    s.observe_error(&pool(MODEL), &error, t0() + 30.seconds())
        .await
        .unwrap();
    assert_eq!(
        s.status(&pool(MODEL), t0())
            .await
            .unwrap()
            .shared_pool_suspected,
        None
    );
}

async fn errors_that_are_not_about_quota_change_nothing(kind: Kind) {
    let Some(f) = fixture(kind, configs(FREE, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    let before = s.status(&pool(MODEL), t0()).await.unwrap();
    for k in [
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::InvalidRequest,
        ErrorKind::ContentBlocked,
        ErrorKind::Unauthorized,
    ] {
        let error = Error::new(k, "x").with_retry_after(Duration::from_secs(30));
        s.observe_error(&pool(MODEL), &error, t0()).await.unwrap();
    }
    assert_eq!(s.status(&pool(MODEL), t0()).await.unwrap(), before);
    assert!(go(s, &pool(MODEL), ONE, t0()).await);
}

async fn rate_limit_headers_teach_the_limit_and_block_until_reset(kind: Kind) {
    let id = PoolId::new("openrouter", "acct", "google/gemini-2.5-flash-image:free");
    let pools = vec![PoolConfig::new(id.clone(), Limits::NONE, TimeZone::UTC)];
    let Some(f) = fixture(kind, pools, t0()).await else {
        return;
    };
    let s = &f.store;
    let mut h = HeaderMap::new();
    h.insert("x-ratelimit-limit", "50".parse().unwrap());
    h.insert("x-ratelimit-remaining", "0".parse().unwrap());
    h.insert("x-ratelimit-reset", "1795478400000".parse().unwrap()); // 2026-11-24T00:00Z
    let snapshot = RateLimitSnapshot::from_headers(&h, Dimension::Rpd).unwrap();
    s.observe_success(&id, &snapshot, t0()).await.unwrap();
    let reset = at("2026-11-24T00:00:00Z");
    assert_eq!(
        s.admit(&id, ONE, t0()).await.unwrap(),
        Admission::ExhaustedUntil {
            at: Some(reset),
            reason: Exhausted::Quota {
                dimension: Dimension::Rpd
            }
        }
    );
    let status = s.status(&id, t0()).await.unwrap();
    assert_eq!(status.dimensions[1].learned, Some(50));
    assert_eq!(
        status.dimensions[1].used, 50,
        "the upstream's count is adopted"
    );
    assert!(go(s, &id, ONE, reset).await);
}

async fn a_per_minute_snapshot_adopts_the_upstreams_higher_count(kind: Kind) {
    let Some(f) = fixture(kind, configs(Limits::NONE, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    assert!(go(s, &pool(MODEL), ONE, t0()).await);
    let snapshot = RateLimitSnapshot {
        dimension: Dimension::Rpm,
        limit: Some(10),
        remaining: Some(2),
        reset_at: None,
    };
    s.observe_success(&pool(MODEL), &snapshot, t0())
        .await
        .unwrap();
    let status = s.status(&pool(MODEL), t0()).await.unwrap();
    let rpm = &status.dimensions[0];
    assert_eq!(
        (rpm.learned, rpm.used, rpm.remaining),
        (Some(10), 8, Some(2))
    );
    assert!(go(s, &pool(MODEL), ONE, t0()).await);
    assert!(go(s, &pool(MODEL), ONE, t0()).await);
    assert!(!go(s, &pool(MODEL), ONE, t0()).await);
    assert!(go(s, &pool(MODEL), ONE, t0() + 60.seconds()).await);
}

async fn a_waiting_pool_reports_the_later_of_the_delay_and_the_window(kind: Kind) {
    let limits = Limits {
        rpm: Some(1),
        ..Limits::NONE
    };
    let Some(f) = fixture(kind, configs(limits, &[MODEL]), t0()).await else {
        return;
    };
    let s = &f.store;
    assert!(go(s, &pool(MODEL), ONE, t0()).await);
    let error =
        Error::new(ErrorKind::RateLimited, "slow down").with_retry_after(Duration::from_secs(5));
    s.observe_error(&pool(MODEL), &error, t0()).await.unwrap();
    assert_eq!(
        s.admit(&pool(MODEL), ONE, t0()).await.unwrap(),
        Admission::WaitUntil {
            at: t0() + 60.seconds(),
            dimension: Some(Dimension::Rpm)
        }
    );
}

// ---- the day ----

fn rpd_pool(zone: TimeZone, rpd: u64) -> (Vec<PoolConfig>, PoolId) {
    let id = pool(MODEL);
    let limits = Limits {
        rpd: Some(rpd),
        ..Limits::NONE
    };
    (vec![PoolConfig::new(id.clone(), limits, zone)], id)
}

async fn spring_forward_day_is_23_hours_long(kind: Kind) {
    let (pools, id) = rpd_pool(PACIFIC.clone(), 2);
    let Some(f) = fixture(kind, pools, at("2026-03-08T07:00:00Z")).await else {
        return;
    };
    let s = &f.store;
    assert!(go(s, &id, ONE, at("2026-03-08T07:59:59Z")).await);
    assert!(go(s, &id, ONE, at("2026-03-08T08:00:00Z")).await);
    assert!(go(s, &id, ONE, at("2026-03-08T12:00:00Z")).await);
    let refused = s.admit(&id, ONE, at("2026-03-08T12:00:01Z")).await.unwrap();
    assert_eq!(
        exhausted_rpd_until(&refused),
        Some(at("2026-03-09T07:00:00Z"))
    );
    let last = s
        .admit(&id, ONE, at("2026-03-09T06:59:59.999Z"))
        .await
        .unwrap();
    assert_eq!(exhausted_rpd_until(&last), Some(at("2026-03-09T07:00:00Z")));
    assert!(go(s, &id, ONE, at("2026-03-09T07:00:00Z")).await);
}

async fn fall_back_day_is_25_hours_long(kind: Kind) {
    // 2026-11-01 in America/Los_Angeles: 00:00 PDT = 07:00Z to 00:00 PST = 08:00Z next day.
    let start = at("2026-11-01T07:00:00Z");
    let (pools, id) = rpd_pool(PACIFIC.clone(), 1);
    let Some(f) = fixture(kind, pools, start).await else {
        return;
    };
    let s = &f.store;
    assert!(go(s, &id, ONE, start).await);
    let refused = s.admit(&id, ONE, at("2026-11-01T09:30:00Z")).await.unwrap();
    assert_eq!(
        exhausted_rpd_until(&refused),
        Some(at("2026-11-02T08:00:00Z"))
    );
    let refused = s.admit(&id, ONE, at("2026-11-02T07:00:00Z")).await.unwrap();
    assert_eq!(
        exhausted_rpd_until(&refused),
        Some(at("2026-11-02T08:00:00Z"))
    );
    assert!(go(s, &id, ONE, at("2026-11-02T08:00:00Z")).await);
}

async fn utc_days_end_at_midnight_utc(kind: Kind) {
    let start = at("2026-11-01T23:00:00Z");
    let (pools, id) = rpd_pool(TimeZone::UTC, 1);
    let Some(f) = fixture(kind, pools, start).await else {
        return;
    };
    let s = &f.store;
    assert!(go(s, &id, ONE, start).await);
    let refused = s.admit(&id, ONE, at("2026-11-01T23:59:59Z")).await.unwrap();
    assert_eq!(
        exhausted_rpd_until(&refused),
        Some(at("2026-11-02T00:00:00Z"))
    );
    assert!(go(s, &id, ONE, at("2026-11-02T00:00:00Z")).await);
}

async fn a_per_day_429_blocks_until_the_next_pacific_midnight_across_daylight_saving(kind: Kind) {
    let now = at("2026-11-02T07:00:00Z");
    let (pools, id) = rpd_pool(PACIFIC.clone(), 1_000);
    let Some(f) = fixture(kind, pools, now).await else {
        return;
    };
    let s = &f.store;
    let mut q = QuotaFacts::default();
    q.dimension = Some(Dimension::Rpd);
    q.quota_id = Some("GenerateRequestsPerDayPerProjectPerModel".into());
    let error = Error::new(ErrorKind::QuotaExhausted, "Quota exceeded")
        .with_provider("gemini")
        .with_http_status(429)
        .with_quota(q);
    s.observe_error(&id, &error, now).await.unwrap();
    let refused = s.admit(&id, ONE, at("2026-11-02T07:59:59Z")).await.unwrap();
    assert_eq!(
        exhausted_rpd_until(&refused),
        Some(at("2026-11-02T08:00:00Z"))
    );
    assert!(go(s, &id, ONE, at("2026-11-02T08:00:00Z")).await);
}

async fn releasing_yesterdays_reservation_does_not_give_back_todays_capacity(kind: Kind) {
    let start = at("2026-03-09T06:59:00Z");
    let (pools, id) = rpd_pool(PACIFIC.clone(), 1);
    let Some(f) = fixture(kind, pools, start).await else {
        return;
    };
    let s = &f.store;
    let yesterday = s
        .admit(&id, ONE, start)
        .await
        .unwrap()
        .into_reservation()
        .unwrap();
    let today = at("2026-03-09T07:00:30Z");
    assert!(go(s, &id, ONE, today).await);
    s.release(yesterday).await.unwrap();
    let refused = s.admit(&id, ONE, today).await.unwrap();
    assert_eq!(
        exhausted_rpd_until(&refused),
        Some(at("2026-03-10T07:00:00Z"))
    );
}

// ---- concurrency ----

async fn concurrent_admissions_admit_exactly_the_limit(kind: Kind) {
    const TASKS: usize = 400;
    let id = pool(MODEL);
    let limits = Limits {
        rpm: Some(100),
        rpd: Some(10_000),
        tpm: Some(1_000_000),
        ipm: Some(1_000),
    };
    let start = t0();
    let Some(f) = fixture(kind, configs(limits, &[MODEL]), start).await else {
        return;
    };
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let store = Arc::clone(&f.store);
        let barrier = Arc::clone(&barrier);
        let id = id.clone();
        let now = start + ((i % 50) as i64).milliseconds();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            store.admit(&id, ONE, now).await.unwrap()
        }));
    }
    let mut admitted = 0;
    for h in handles {
        match h.await.unwrap() {
            Admission::Go(_) => admitted += 1,
            Admission::WaitUntil { at, dimension } => {
                assert_eq!(dimension, Some(Dimension::Rpm));
                assert!(at >= start + 60.seconds(), "{at}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(admitted, 100);
    let status = f.store.status(&id, start + 1.second()).await.unwrap();
    assert_eq!(status.dimensions[0].used, 100);
    assert_eq!(status.dimensions[1].used, 100);
    assert_eq!(status.dimensions[2].used, 100 * 1_290);
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Memory).await })*
        }
        mod file {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::File).await })*
        }
        mod redis {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(super::Kind::Redis).await })*
        }
    };
}

suite!(
    the_window_admits_the_limit_then_waits_for_the_oldest_use,
    a_lagging_clock_is_counted_at_the_latest_instant,
    reconfiguring_keeps_what_was_counted,
    releasing_gives_everything_back_once,
    settling_replaces_the_token_estimate_with_real_usage,
    a_cost_larger_than_a_limit_is_exhausted_for_good,
    a_per_minute_429_learns_the_limit_and_blocks_for_the_retry_delay,
    a_per_day_429_blocks_until_midnight_pacific_and_learns_the_rpd,
    a_limit_of_zero_marks_the_pool_billing_required,
    a_429_with_room_left_is_recorded_as_a_shared_pool_suspicion,
    a_429_on_a_full_pool_or_an_unwatched_window_is_no_evidence,
    errors_that_are_not_about_quota_change_nothing,
    rate_limit_headers_teach_the_limit_and_block_until_reset,
    a_per_minute_snapshot_adopts_the_upstreams_higher_count,
    a_waiting_pool_reports_the_later_of_the_delay_and_the_window,
    spring_forward_day_is_23_hours_long,
    fall_back_day_is_25_hours_long,
    utc_days_end_at_midnight_utc,
    a_per_day_429_blocks_until_the_next_pacific_midnight_across_daylight_saving,
    releasing_yesterdays_reservation_does_not_give_back_todays_capacity,
    concurrent_admissions_admit_exactly_the_limit,
);

//! Learning from the upstream: errors built the way the Google classifier
//! (imagegate-google-rpc) builds them from real 429 bodies, and rate-limit headers, change the
//! pool as docs/quota-model.md describes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use std::time::Duration;

use http::HeaderMap;
use imagegate_core::quota::{
    Admission, BlockReason, Cost, Exhausted, Limits, MemoryQuotaStore, PACIFIC, PoolConfig, PoolId,
    RateLimitSnapshot, Usage, next_midnight, render_table,
};
use imagegate_core::{Error, ErrorKind, QuotaFacts, hints, quota::Dimension};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};

const ONE: Cost = Cost::new(1, 1, 1_290);
const MODEL: &str = "gemini-2.5-flash-image";
/// Limits as a free-tier preset gives them (the figures are the provider's; any will do here).
const FREE: Limits = Limits {
    rpm: Some(10),
    rpd: Some(1_500),
    tpm: None,
    ipm: None,
};
/// Limits as a paid-tier preset gives them.
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

fn store_with(limits: Limits, models: &[&str], now: Timestamp) -> MemoryQuotaStore {
    MemoryQuotaStore::with_pools(
        models
            .iter()
            .map(|m| PoolConfig::new(pool(m), limits, PACIFIC.clone())),
        now,
    )
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

/// A per-minute 429 as the classifier builds it: `rate_limited`, RetryInfo's delay, the
/// QuotaFailure violation's facts.
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

/// A per-day 429 as the classifier builds it: `quota_exhausted`, reset at the next Pacific
/// midnight, retry_after the time until then.
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

/// A limit-0 429 as the classifier builds it: `billing_required`, no retry_after.
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

#[test]
fn a_per_minute_429_learns_the_limit_and_blocks_for_the_retry_delay() {
    let tier1 = TIER1;
    assert_eq!(tier1.rpm, Some(300));
    let store = store_with(tier1, &[MODEL], t0());
    let delay = Duration::from_millis(15_002);
    store
        .observe_error_now(&pool(MODEL), &per_minute_429(10, delay, MODEL), t0())
        .unwrap();

    let wait = store.admit_now(&pool(MODEL), ONE, t0()).unwrap();
    assert_eq!(
        wait,
        Admission::WaitUntil {
            at: t0() + 15_002.milliseconds(),
            dimension: Some(Dimension::Rpm)
        }
    );
    let status = store.status_now(&pool(MODEL), t0()).unwrap();
    let rpm = &status.dimensions[0];
    assert_eq!(
        (rpm.configured, rpm.learned, rpm.limit),
        (Some(300), Some(10), Some(10))
    );
    assert_eq!(
        status.blocked.as_ref().unwrap().reason,
        BlockReason::RetryDelay
    );

    // After the delay the learned limit, not the preset, governs: 10 go, the 11th waits a
    // full window from the first.
    let later = t0() + 15_002.milliseconds();
    for _ in 0..10 {
        assert!(store.admit_now(&pool(MODEL), ONE, later).unwrap().is_go());
    }
    assert_eq!(
        store.admit_now(&pool(MODEL), ONE, later).unwrap(),
        Admission::WaitUntil {
            at: later + 60.seconds(),
            dimension: Some(Dimension::Rpm)
        }
    );
}

#[test]
fn a_per_day_429_blocks_until_midnight_pacific_and_learns_the_rpd() {
    let store = store_with(FREE, &[MODEL], t0());
    store
        .observe_error_now(&pool(MODEL), &per_day_429(250, t0()), t0())
        .unwrap();
    let midnight = at("2026-11-24T08:00:00Z");
    for now in [t0(), t0() + 5.hours(), midnight - 1.millisecond()] {
        assert_eq!(
            store.admit_now(&pool(MODEL), ONE, now).unwrap(),
            Admission::ExhaustedUntil {
                at: Some(midnight),
                reason: Exhausted::Quota {
                    dimension: Dimension::Rpd
                }
            }
        );
    }
    let status = store.status_now(&pool(MODEL), t0()).unwrap();
    assert_eq!(status.dimensions[1].learned, Some(250));
    let block = status.blocked.unwrap();
    assert_eq!(
        (block.reason, block.until),
        (BlockReason::DailyQuota, Some(midnight))
    );
    assert!(
        store
            .admit_now(&pool(MODEL), ONE, midnight)
            .unwrap()
            .is_go()
    );
}

#[test]
fn a_limit_of_zero_marks_the_pool_billing_required_until_restart() {
    let store = store_with(FREE, &[MODEL], t0());
    store
        .observe_error_now(&pool(MODEL), &limit_zero_429(), t0())
        .unwrap();
    for now in [t0(), t0() + 73.hours()] {
        match store.admit_now(&pool(MODEL), ONE, now).unwrap() {
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
    let status = store.status_now(&pool(MODEL), t0()).unwrap();
    let block = status.blocked.unwrap();
    assert_eq!(
        (block.reason, block.until),
        (BlockReason::BillingRequired, None)
    );

    // A 429 classified as rate_limited that still carries a limit of 0 means the same.
    let store = store_with(Limits::NONE, &[MODEL], t0());
    let mut f = facts(Dimension::Rpm, Some(0), "X", MODEL);
    f.quota_value = Some(0);
    let error = Error::new(ErrorKind::RateLimited, "limit: 0").with_quota(f);
    store.observe_error_now(&pool(MODEL), &error, t0()).unwrap();
    assert!(matches!(
        store.admit_now(&pool(MODEL), ONE, t0()).unwrap(),
        Admission::ExhaustedUntil {
            at: None,
            reason: Exhausted::BillingRequired { .. }
        }
    ));
}

#[test]
fn a_429_with_room_left_is_recorded_as_a_shared_pool_suspicion() {
    let limits = Limits {
        rpm: Some(10),
        ..Limits::NONE
    };
    let other = "gemini-3.1-flash-image-preview";
    let start = t0();
    let store = store_with(limits, &[MODEL, other], start);
    let now = start + 2.minutes(); // the store has watched a whole window
    let partner = PoolId::new("gemini", "proj-b", "unrelated");
    store.configure_now(
        PoolConfig::new(partner.clone(), limits, PACIFIC.clone()),
        start,
    );
    for _ in 0..6 {
        assert!(store.admit_now(&pool(other), ONE, now).unwrap().is_go());
    }
    assert!(store.admit_now(&partner, ONE, now).unwrap().is_go());
    let mine = store
        .admit_now(&pool(MODEL), ONE, now)
        .unwrap()
        .into_reservation()
        .unwrap();
    // The upstream refuses MODEL's first request of the minute, naming a sibling model.
    let error = per_minute_429(
        10,
        Duration::from_secs(20),
        "gemini-2.5-flash-preview-image",
    );
    store.observe_error_now(&pool(MODEL), &error, now).unwrap();
    store.release_now(mine).unwrap();

    let status = store.status_now(&pool(MODEL), now).unwrap();
    let s = status.shared_pool_suspected.expect("a suspicion");
    assert_eq!(
        (s.dimension, s.used, s.limit, s.count),
        (Dimension::Rpm, 1, 10, 1)
    );
    assert_eq!(
        s.quota_model.as_deref(),
        Some("gemini-2.5-flash-preview-image")
    );
    // Only the busy pool of the same project is a partner, not another project's pool.
    assert_eq!(s.partners, vec![pool(other)]);

    // A second one counts up.
    store.observe_error_now(&pool(MODEL), &error, now).unwrap();
    let status = store.status_now(&pool(MODEL), now).unwrap();
    assert_eq!(status.shared_pool_suspected.unwrap().count, 2);
}

#[test]
fn a_429_on_a_full_pool_or_an_unwatched_window_is_no_evidence() {
    let limits = Limits {
        rpm: Some(3),
        ..Limits::NONE
    };
    // Full: three of three counted.
    let store = store_with(limits, &[MODEL], t0());
    let now = t0() + 2.minutes();
    for _ in 0..3 {
        assert!(store.admit_now(&pool(MODEL), ONE, now).unwrap().is_go());
    }
    let error = per_minute_429(3, Duration::from_secs(5), MODEL);
    store.observe_error_now(&pool(MODEL), &error, now).unwrap();
    assert_eq!(
        store
            .status_now(&pool(MODEL), now)
            .unwrap()
            .shared_pool_suspected,
        None
    );

    // Just started: the last minute was not watched, so another process may have used it.
    let store = store_with(limits, &[MODEL], t0());
    store
        .observe_error_now(&pool(MODEL), &error, t0() + 30.seconds())
        .unwrap();
    assert_eq!(
        store
            .status_now(&pool(MODEL), t0())
            .unwrap()
            .shared_pool_suspected,
        None
    );
}

#[test]
fn errors_that_are_not_about_quota_change_nothing() {
    let store = store_with(FREE, &[MODEL], t0());
    let before = store.status_now(&pool(MODEL), t0()).unwrap();
    for kind in [
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::InvalidRequest,
        ErrorKind::ContentBlocked,
        ErrorKind::Unauthorized,
    ] {
        let error = Error::new(kind, "x").with_retry_after(Duration::from_secs(30));
        store.observe_error_now(&pool(MODEL), &error, t0()).unwrap();
    }
    assert_eq!(store.status_now(&pool(MODEL), t0()).unwrap(), before);
    assert!(store.admit_now(&pool(MODEL), ONE, t0()).unwrap().is_go());
}

#[test]
fn rate_limit_headers_teach_the_limit_and_block_until_reset() {
    let id = PoolId::new("openrouter", "acct", "google/gemini-2.5-flash-image:free");
    let zone = TimeZone::UTC;
    let store =
        MemoryQuotaStore::with_pools([PoolConfig::new(id.clone(), Limits::NONE, zone)], t0());
    let mut h = HeaderMap::new();
    h.insert("x-ratelimit-limit", "50".parse().unwrap());
    h.insert("x-ratelimit-remaining", "0".parse().unwrap());
    h.insert("x-ratelimit-reset", "1795478400000".parse().unwrap()); // 2026-11-24T00:00Z
    let snapshot = RateLimitSnapshot::from_headers(&h, Dimension::Rpd).unwrap();
    store.observe_success_now(&id, &snapshot, t0()).unwrap();
    let reset = at("2026-11-24T00:00:00Z");
    assert_eq!(
        store.admit_now(&id, ONE, t0()).unwrap(),
        Admission::ExhaustedUntil {
            at: Some(reset),
            reason: Exhausted::Quota {
                dimension: Dimension::Rpd
            }
        }
    );
    let status = store.status_now(&id, t0()).unwrap();
    assert_eq!(status.dimensions[1].learned, Some(50));
    assert_eq!(
        status.dimensions[1].used, 50,
        "the upstream's count is adopted"
    );
    assert!(store.admit_now(&id, ONE, reset).unwrap().is_go());
}

#[test]
fn settling_replaces_the_token_estimate_with_real_usage() {
    let limits = Limits {
        tpm: Some(3_000),
        ..Limits::NONE
    };
    let store = store_with(limits, &[MODEL], t0());
    let r = store
        .admit_now(&pool(MODEL), Cost::new(1, 1, 2_000), t0())
        .unwrap();
    let r = r.into_reservation().unwrap();
    assert!(
        !store
            .admit_now(&pool(MODEL), Cost::new(1, 1, 2_000), t0())
            .unwrap()
            .is_go()
    );
    store
        .settle_now(
            r,
            Usage {
                tokens: Some(900),
                images: Some(1),
            },
        )
        .unwrap();
    assert!(
        store
            .admit_now(&pool(MODEL), Cost::new(1, 1, 2_000), t0())
            .unwrap()
            .is_go()
    );
    assert_eq!(
        store.status_now(&pool(MODEL), t0()).unwrap().dimensions[2].used,
        2_900
    );
}

#[test]
fn a_cost_larger_than_a_limit_is_exhausted_for_good() {
    let limits = Limits {
        ipm: Some(2),
        ..Limits::NONE
    };
    let store = store_with(limits, &[MODEL], t0());
    assert_eq!(
        store
            .admit_now(&pool(MODEL), Cost::new(1, 3, 0), t0())
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
    let err = store.admit_now(&unknown, ONE, t0()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(
        err.to_string()
            .contains("gemini/proj-z/gemini-2.5-flash-image"),
        "{err}"
    );
}

#[test]
fn the_status_table_shows_limits_use_resets_and_blocks_for_people() {
    let limits = Limits {
        rpm: Some(10),
        rpd: Some(250),
        tpm: None,
        ipm: None,
    };
    let store = store_with(limits, &[MODEL, "gemini-3-pro-image-preview"], t0());
    let now = t0() + 10.seconds();
    for _ in 0..3 {
        let _ = store.admit_now(&pool(MODEL), ONE, now).unwrap();
    }
    store
        .observe_error_now(&pool("gemini-3-pro-image-preview"), &limit_zero_429(), now)
        .unwrap();
    let statuses = store.statuses_now(now);
    let json = serde_json::to_value(&statuses).unwrap();
    assert_eq!(json[1]["id"]["pool"], "gemini-3-pro-image-preview");
    assert_eq!(json[1]["blocked"]["reason"], "billing_required");
    assert_eq!(json[0]["dimensions"][0]["used"], 3);

    let table = render_table(&statuses, &TimeZone::UTC);
    let expected = "\
POOL                                      DIM  LIMIT  USED  LEFT  NEXT RESET (local / day zone)
gemini/proj-a/gemini-2.5-flash-image      rpm  10     3     7     2026-11-23 18:01:10 UTC / 10:01:10 PST
                                          rpd  250    3     247   2026-11-24 08:00:00 UTC / 00:00:00 PST
                                          tpm  -      3870  -     2026-11-23 18:01:10 UTC / 10:01:10 PST
                                          ipm  -      3     -     2026-11-23 18:01:10 UTC / 10:01:10 PST
gemini/proj-a/gemini-3-pro-image-preview  rpm  10     0     10    -
                                          rpd  250    0     250   2026-11-24 08:00:00 UTC / 00:00:00 PST
gemini/proj-a/gemini-3-pro-image-preview: blocked until cleared: billing_required. Retrying cannot help: attach a billing account to project proj-a (or buy credits), or use a model or provider this account is entitled to.
";
    assert_eq!(table, expected, "{table}");
}

#[test]
fn a_learning_pool_admits_until_the_first_429_then_keeps_the_stated_limit() {
    // No tier configured: nothing preset, every dimension unknown.
    let id = pool(MODEL);
    let store = MemoryQuotaStore::with_pools(
        [PoolConfig::new(id.clone(), Limits::NONE, PACIFIC.clone()).with_learning(true)],
        t0(),
    );
    let status = store.status_now(&id, t0()).unwrap();
    assert!(
        status
            .dimensions
            .iter()
            .all(|d| d.learning && d.limit.is_none())
    );
    let table = render_table(&[status], &TimeZone::UTC);
    assert_eq!(table.matches("unknown (learning)").count(), 4, "{table}");

    // A billed project sends far more than a free tier's 10 a minute without being held back.
    for _ in 0..50 {
        assert!(store.admit_now(&id, ONE, t0()).unwrap().is_go());
    }
    // The first 429 states the per-minute limit: that dimension is learned, the rest still
    // unknown.
    store
        .observe_error_now(
            &id,
            &per_minute_429(60, Duration::from_secs(20), MODEL),
            t0(),
        )
        .unwrap();
    let status = store.status_now(&id, t0()).unwrap();
    let rpm = &status.dimensions[0];
    assert_eq!(rpm.dimension, Dimension::Rpm);
    assert_eq!(
        (rpm.learned, rpm.limit, rpm.learning),
        (Some(60), Some(60), false)
    );
    assert!(status.dimensions[1..].iter().all(|d| d.learning));
    let table = render_table(&[status], &TimeZone::UTC);
    assert!(table.contains("60 (learned)"), "{table}");
    assert_eq!(table.matches("unknown (learning)").count(), 3, "{table}");

    // A pool with limits known up front never shows a learning row.
    let known = store_with(FREE, &[MODEL], t0());
    let status = known.status_now(&id, t0()).unwrap();
    assert!(status.dimensions.iter().all(|d| !d.learning));
}

#[test]
fn the_status_table_shows_resets_in_each_pools_own_day_zone() {
    let id = PoolId::new("openrouter", "acct", "google/gemini-2.5-flash-image:free");
    let limits = Limits {
        rpd: Some(50),
        ..Limits::NONE
    };
    let store =
        MemoryQuotaStore::with_pools([PoolConfig::new(id.clone(), limits, TimeZone::UTC)], t0());
    let status = store.status_now(&id, t0()).unwrap();
    let table = render_table(&[status], &PACIFIC);
    // Local time is Pacific here; the pool's day ends at midnight UTC.
    assert!(
        table.contains("2026-11-23 16:00:00 PST / 00:00:00 UTC"),
        "{table}"
    );
}

//! The quota model learns from real Gemini 429 bodies, classified by this crate's own
//! `parse_error`: a quota value updates the limit, a retry delay blocks the pool, a per-day
//! quota blocks it until the next Pacific midnight, and a limit of 0 marks it billing_required.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use imagegate_core::Error;
use imagegate_core::quota::{
    Admission, BlockReason, Cost, Dimension, Limits, MemoryQuotaStore, PoolConfig, PoolId,
    PoolStatus, Tier,
};
use imagegate_gemini::{DESCRIPTOR, parse_error, preset};
use imagegate_testkit::Fixture;
use jiff::{Timestamp, ToSpan};

fn classified(id: &str) -> (Error, Timestamp) {
    let fixture = Fixture::by_id(id).unwrap();
    let error = parse_error(
        fixture.status(),
        &fixture.headers(),
        &fixture.body(),
        fixture.now(),
    );
    (error, fixture.now())
}

fn pool(limits: Limits) -> (MemoryQuotaStore, PoolId) {
    let id = PoolId::new("gemini", "proj-a", "gemini-2.5-flash-image");
    let store = MemoryQuotaStore::new();
    let config = PoolConfig::new(id.clone(), limits, DESCRIPTOR.zone());
    store.configure_now(config, "2026-01-15T00:00:00Z".parse().unwrap());
    (store, id)
}

fn dimension(status: &PoolStatus, d: Dimension) -> &imagegate_core::quota::DimensionStatus {
    status.dimensions.iter().find(|s| s.dimension == d).unwrap()
}

#[test]
fn a_per_minute_quota_value_is_learned_and_the_retry_delay_blocks_the_pool() {
    let (error, now) = classified("gemini/generate-content/429-quotafailure-tpm-freetier");
    let (store, id) = pool(preset("gemini-2.5-flash-image", Tier::Free));
    store.observe_error_now(&id, &error, now).unwrap();

    let status = store.status_now(&id, now).unwrap();
    assert_eq!(dimension(&status, Dimension::Tpm).learned, Some(250_000));
    let block = status.blocked.expect("the retry delay blocks the pool");
    assert_eq!(block.reason, BlockReason::RetryDelay);
    let delay = error.retry_after().unwrap();
    assert_eq!(
        block.until,
        Some(now + jiff::SignedDuration::try_from(delay).unwrap())
    );

    // Nothing goes before the delay has passed; a request right after it does.
    let cost = Cost {
        requests: 1,
        images: 1,
        tokens: 1_290,
    };
    assert!(
        !store
            .admit_now(&id, cost, now + 1.second())
            .unwrap()
            .is_go()
    );
    let after = block.until.unwrap() + 1.second();
    assert!(matches!(
        store.admit_now(&id, cost, after).unwrap(),
        Admission::Go(_)
    ));
}

#[test]
fn a_per_day_quota_parks_the_pool_until_midnight_pacific() {
    let (error, now) = classified("gemini/generate-content/429-quotafailure-rpd-quotavalue");
    let (store, id) = pool(Limits::NONE);
    store.observe_error_now(&id, &error, now).unwrap();

    let status = store.status_now(&id, now).unwrap();
    assert_eq!(dimension(&status, Dimension::Rpd).learned, Some(25));
    let block = status.blocked.expect("a daily quota blocks the pool");
    assert_eq!(block.reason, BlockReason::DailyQuota);
    // 2026-01-15T12:00Z is 04:00 PST; the Pacific day ends at 08:00 UTC the next day.
    assert_eq!(block.until, Some("2026-01-16T08:00:00Z".parse().unwrap()));
    let cost = Cost {
        requests: 1,
        images: 1,
        tokens: 1_290,
    };
    let just_before: Timestamp = "2026-01-16T07:59:59Z".parse().unwrap();
    assert!(!store.admit_now(&id, cost, just_before).unwrap().is_go());
    let midnight: Timestamp = "2026-01-16T08:00:00Z".parse().unwrap();
    assert!(store.admit_now(&id, cost, midnight).unwrap().is_go());
}

#[test]
fn a_limit_of_zero_marks_the_pool_billing_required_with_advice() {
    let (error, now) = classified("gemini/generate-content/429-limit0-freetier-image");
    let (store, id) = pool(Limits::NONE);
    store.observe_error_now(&id, &error, now).unwrap();

    let block = store
        .status_now(&id, now)
        .unwrap()
        .blocked
        .expect("blocked");
    assert_eq!(block.reason, BlockReason::BillingRequired);
    assert_eq!(block.until, None, "until restart");
    assert!(block.advice.unwrap().contains("billing"));
    let a_week_later = now + 168.hours();
    let cost = Cost {
        requests: 1,
        images: 1,
        tokens: 1_290,
    };
    assert!(!store.admit_now(&id, cost, a_week_later).unwrap().is_go());
}

#[test]
fn with_no_tier_a_pool_starts_unknown_and_learns_from_the_first_429() {
    use imagegate_core::quota::ProviderQuotaConfig;
    let config = ProviderQuotaConfig::default()
        .pool_for(&DESCRIPTOR, "proj-a", "gemini-2.5-flash-image")
        .unwrap();
    assert!(config.limits.is_empty() && config.learning, "{config:?}");
    let (error, now) = classified("gemini/generate-content/429-per-minute-requests");
    let store = MemoryQuotaStore::new();
    store.configure_now(config.clone(), now);
    let before = store.status_now(&config.id, now).unwrap();
    assert!(before.dimensions.iter().all(|d| d.learning));
    store.observe_error_now(&config.id, &error, now).unwrap();
    let after = store.status_now(&config.id, now).unwrap();
    let rpm = dimension(&after, Dimension::Rpm);
    let stated = error
        .quota()
        .quota_value
        .expect("the fixture states the limit");
    assert_eq!((rpm.limit, rpm.learning), (Some(stated), false));
    assert!(dimension(&after, Dimension::Rpd).learning);

    // A configured tier keeps today's presets.
    let free: ProviderQuotaConfig =
        serde_json::from_value(serde_json::json!({"tier": "free"})).unwrap();
    let pool = free
        .pool_for(&DESCRIPTOR, "proj-a", "gemini-2.5-flash-image")
        .unwrap();
    assert_eq!(pool.limits, preset("gemini-2.5-flash-image", Tier::Free));
    assert!(!pool.learning);
}

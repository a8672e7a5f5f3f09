//! The RPD day is a calendar day in the pool's zone, computed with the real tz database: on
//! 2026-03-08 (spring forward) a Pacific day lasts 23 hours, on 2026-11-01 (fall back) 25.
//! OpenRouter's day is the UTC day.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use imagegate_core::quota::{
    Admission, Cost, Exhausted, Limits, MemoryQuotaStore, PACIFIC, PoolConfig, PoolId,
};
use imagegate_core::{Error, ErrorKind, QuotaFacts, quota::Dimension};
use jiff::Timestamp;
use jiff::tz::TimeZone;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const ONE: Cost = Cost::new(1, 1, 1_290);

fn store(zone: TimeZone, rpd: u64, now: Timestamp) -> (MemoryQuotaStore, PoolId) {
    let id = PoolId::new("gemini", "proj-a", "gemini-2.5-flash-image");
    let limits = Limits {
        rpd: Some(rpd),
        ..Limits::NONE
    };
    let store = MemoryQuotaStore::with_pools([PoolConfig::new(id.clone(), limits, zone)], now);
    (store, id)
}

fn exhausted_until(a: &Admission) -> Option<Timestamp> {
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

#[test]
fn spring_forward_day_is_23_hours_long() {
    // 2026-03-08 00:00 PST = 08:00Z; the next midnight is 00:00 PDT = 2026-03-09T07:00Z.
    let start = at("2026-03-08T08:00:00Z");
    let (store, id) = store(PACIFIC.clone(), 2, at("2026-03-08T07:00:00Z"));
    // One second earlier still belongs to the 7th and does not count towards the 8th.
    assert!(
        store
            .admit_now(&id, ONE, at("2026-03-08T07:59:59Z"))
            .unwrap()
            .is_go()
    );
    assert!(store.admit_now(&id, ONE, start).unwrap().is_go());
    // After the clocks jump (10:00Z = 03:00 PDT) it is the same day.
    assert!(
        store
            .admit_now(&id, ONE, at("2026-03-08T12:00:00Z"))
            .unwrap()
            .is_go()
    );
    let refused = store
        .admit_now(&id, ONE, at("2026-03-08T12:00:01Z"))
        .unwrap();
    assert_eq!(exhausted_until(&refused), Some(at("2026-03-09T07:00:00Z")));
    // 23 hours after the day began: still the 8th until the last instant...
    let last = store
        .admit_now(&id, ONE, at("2026-03-09T06:59:59.999Z"))
        .unwrap();
    assert_eq!(exhausted_until(&last), Some(at("2026-03-09T07:00:00Z")));
    // ...and a fresh day at 00:00 PDT, not at 08:00Z as a fixed PST offset would say.
    assert!(
        store
            .admit_now(&id, ONE, at("2026-03-09T07:00:00Z"))
            .unwrap()
            .is_go()
    );
}

#[test]
fn fall_back_day_is_25_hours_long() {
    // 2026-11-01 00:00 PDT = 07:00Z; the next midnight is 00:00 PST = 2026-11-02T08:00Z.
    let start = at("2026-11-01T07:00:00Z");
    let (store, id) = store(PACIFIC.clone(), 1, start);
    assert!(store.admit_now(&id, ONE, start).unwrap().is_go());
    // 01:30 happens twice (08:30Z PDT and 09:30Z PST): both are the same day.
    let refused = store
        .admit_now(&id, ONE, at("2026-11-01T09:30:00Z"))
        .unwrap();
    assert_eq!(exhausted_until(&refused), Some(at("2026-11-02T08:00:00Z")));
    // 24 hours later a fixed-offset day would have ended; the real one has not.
    let refused = store
        .admit_now(&id, ONE, at("2026-11-02T07:00:00Z"))
        .unwrap();
    assert_eq!(exhausted_until(&refused), Some(at("2026-11-02T08:00:00Z")));
    assert!(
        store
            .admit_now(&id, ONE, at("2026-11-02T08:00:00Z"))
            .unwrap()
            .is_go()
    );
}

#[test]
fn utc_days_end_at_midnight_utc() {
    let zone = TimeZone::UTC;
    let start = at("2026-11-01T23:00:00Z");
    let (store, id) = store(zone, 1, start);
    assert!(store.admit_now(&id, ONE, start).unwrap().is_go());
    let refused = store
        .admit_now(&id, ONE, at("2026-11-01T23:59:59Z"))
        .unwrap();
    assert_eq!(exhausted_until(&refused), Some(at("2026-11-02T00:00:00Z")));
    assert!(
        store
            .admit_now(&id, ONE, at("2026-11-02T00:00:00Z"))
            .unwrap()
            .is_go()
    );
}

#[test]
fn a_per_day_429_blocks_until_the_next_pacific_midnight_across_daylight_saving() {
    // Fall back: an exhausted daily quota at 23:00 PST on Nov 1 (= 07:00Z Nov 2) resets at
    // 08:00Z, one hour later, not at 07:00Z as a PDT offset would say.
    let now = at("2026-11-02T07:00:00Z");
    let (store, id) = store(PACIFIC.clone(), 1_000, now);
    let mut facts = QuotaFacts::default();
    facts.dimension = Some(Dimension::Rpd);
    facts.quota_id = Some("GenerateRequestsPerDayPerProjectPerModel".into());
    let error = Error::new(ErrorKind::QuotaExhausted, "Quota exceeded")
        .with_provider("gemini")
        .with_http_status(429)
        .with_quota(facts);
    store.observe_error_now(&id, &error, now).unwrap();
    let refused = store
        .admit_now(&id, ONE, at("2026-11-02T07:59:59Z"))
        .unwrap();
    assert_eq!(exhausted_until(&refused), Some(at("2026-11-02T08:00:00Z")));
    assert!(
        store
            .admit_now(&id, ONE, at("2026-11-02T08:00:00Z"))
            .unwrap()
            .is_go()
    );
}

#[test]
fn releasing_yesterdays_reservation_does_not_give_back_todays_capacity() {
    let start = at("2026-03-09T06:59:00Z"); // 23:59 PDT on the 8th
    let (store, id) = store(PACIFIC.clone(), 1, start);
    let yesterday = store
        .admit_now(&id, ONE, start)
        .unwrap()
        .into_reservation()
        .unwrap();
    let today = at("2026-03-09T07:00:30Z");
    assert!(store.admit_now(&id, ONE, today).unwrap().is_go());
    store.release_now(yesterday).unwrap();
    let refused = store.admit_now(&id, ONE, today).unwrap();
    assert_eq!(exhausted_until(&refused), Some(at("2026-03-10T07:00:00Z")));
}

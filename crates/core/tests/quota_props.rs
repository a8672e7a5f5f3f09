//! Property tests of admission: whatever the sequence of admissions, settlements and releases,
//! no 60-second window ever holds more than a per-minute limit, no calendar day (in the pool's
//! zone) more than the RPD, and every "wait until" is honest.
//!
//! Times are passed explicitly and start just before the 2026 daylight-saving changes in
//! Pacific time, so generated sequences cross 23- and 25-hour days.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use std::collections::BTreeMap;

use imagegate_core::quota::{
    Admission, Cost, Dimension, Exhausted, Limits, PACIFIC, PoolConfig, PoolId, PoolLedger, Usage,
    next_midnight,
};
use jiff::{Timestamp, ToSpan};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, RngSeed};

const WINDOW_MS: i64 = 60_000;

#[derive(Clone, Debug)]
enum Op {
    /// Admit a cost after `gap_ms`.
    Admit {
        gap_ms: i64,
        images: u64,
        tokens: u64,
    },
    /// Settle the n-th outstanding reservation with less than was estimated.
    Settle { pick: usize, tokens_fraction: u64 },
    /// Release the n-th outstanding reservation (the upstream did not count it).
    Release { pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0i64..30_000, 0u64..4, 0u64..3_000)
            .prop_map(|(gap_ms, images, tokens)| Op::Admit { gap_ms, images, tokens }),
        // Large gaps move whole hours, so sequences reach the day boundary.
        1 => (0i64..(6 * 3_600_000), 0u64..4, 0u64..3_000)
            .prop_map(|(gap_ms, images, tokens)| Op::Admit { gap_ms, images, tokens }),
        1 => (any::<usize>(), 0u64..=100)
            .prop_map(|(pick, tokens_fraction)| Op::Settle { pick, tokens_fraction }),
        1 => any::<usize>().prop_map(|pick| Op::Release { pick }),
    ]
}

fn limits() -> impl Strategy<Value = Limits> {
    (
        prop::option::of(1u64..8),
        prop::option::of(1u64..20),
        prop::option::of(3_000u64..12_000),
        prop::option::of(3u64..10),
    )
        .prop_map(|(rpm, rpd, tpm, ipm)| Limits { rpm, rpd, tpm, ipm })
}

fn start() -> impl Strategy<Value = Timestamp> {
    let base = [
        "2026-03-07T20:00:00Z", // the day before spring-forward (23-hour day on the 8th)
        "2026-10-31T20:00:00Z", // the day before fall-back (25-hour day on the 1st)
    ];
    (0usize..2, 0i64..(24 * 3_600_000))
        .prop_map(move |(i, off)| base[i].parse::<Timestamp>().unwrap() + off.milliseconds())
}

/// What was really counted, per admitted reservation.
#[derive(Clone, Copy, Debug)]
struct Counted {
    at: Timestamp,
    cost: Cost,
}

fn check_windows(limits: &Limits, counted: &BTreeMap<u64, Counted>) -> Result<(), TestCaseError> {
    let all: Vec<Counted> = counted.values().copied().collect();
    for end in &all {
        // The window (end - 60 s, end]: the busiest windows end on an admission.
        let in_window = all.iter().filter(|c| {
            let age = end.at.as_millisecond() - c.at.as_millisecond();
            (0..WINDOW_MS).contains(&age)
        });
        let (mut r, mut t, mut i) = (0, 0, 0);
        for c in in_window {
            r += c.cost.requests;
            t += c.cost.tokens;
            i += c.cost.images;
        }
        for (dim, used) in [
            (Dimension::Rpm, r),
            (Dimension::Tpm, t),
            (Dimension::Ipm, i),
        ] {
            if let Some(limit) = limits.get(dim) {
                prop_assert!(
                    used <= limit,
                    "{dim}: {used} > {limit} in the window ending {}",
                    end.at
                );
            }
        }
    }
    if let Some(rpd) = limits.rpd {
        let mut per_day: BTreeMap<jiff::civil::Date, u64> = BTreeMap::new();
        for c in &all {
            *per_day
                .entry(c.at.to_zoned(PACIFIC.clone()).date())
                .or_default() += c.cost.requests;
        }
        for (day, n) in per_day {
            prop_assert!(n <= rpd, "rpd: {n} > {rpd} on {day}");
        }
    }
    Ok(())
}

fn config() -> Config {
    Config {
        cases: 256,
        // Seeded: the same cases on every run and every machine.
        rng_algorithm: RngAlgorithm::ChaCha,
        rng_seed: RngSeed::Fixed(20_261_123),
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_window_and_no_day_ever_exceeds_its_limit(
        limits in limits(),
        start in start(),
        ops in prop::collection::vec(op(), 1..160),
    ) {
        let id = PoolId::new("gemini", "proj", "m");
        let mut ledger = PoolLedger::new(PoolConfig::new(id, limits, PACIFIC.clone()), start);
        let mut now = start;
        let mut outstanding = Vec::new();
        let mut counted: BTreeMap<u64, Counted> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Admit { gap_ms, images, tokens } => {
                    now += gap_ms.milliseconds();
                    let cost = Cost::new(1, images, tokens);
                    match ledger.admit(cost, now) {
                        Admission::Go(r) => {
                            prop_assert_eq!(r.at(), now);
                            counted.insert(r.id(), Counted { at: r.at(), cost });
                            outstanding.push(r);
                        }
                        Admission::WaitUntil { at, dimension } => {
                            prop_assert!(at > now);
                            prop_assert!(at <= now + 60.seconds());
                            prop_assert!(dimension.is_some_and(|d| !d.is_daily()));
                            // Honest: at `at`, with nothing else happening, the cost fits (on a
                            // copy, so the sequence itself is not disturbed).
                            let mut probe = ledger.clone();
                            prop_assert!(probe.admit(cost, at).is_go(), "not admitted at {at}");
                        }
                        Admission::ExhaustedUntil { at, reason } => match reason {
                            Exhausted::Quota { dimension } => {
                                prop_assert_eq!(dimension, Dimension::Rpd);
                                prop_assert_eq!(at, Some(next_midnight(now, &PACIFIC)));
                            }
                            Exhausted::TooLarge { dimension, cost: c, limit } => {
                                prop_assert!(at.is_none());
                                prop_assert!(c > limit);
                                prop_assert_eq!(limits.get(dimension), Some(limit));
                            }
                            other => prop_assert!(false, "unexpected {other:?}"),
                        },
                    }
                }
                Op::Settle { pick, tokens_fraction } if !outstanding.is_empty() => {
                    let r = outstanding.swap_remove(pick % outstanding.len());
                    let real = r.cost().tokens * tokens_fraction / 100;
                    if let Some(c) = counted.get_mut(&r.id()) {
                        c.cost.tokens = real;
                    }
                    ledger.settle(r, Usage { tokens: Some(real), images: None });
                }
                Op::Release { pick } if !outstanding.is_empty() => {
                    let r = outstanding.swap_remove(pick % outstanding.len());
                    counted.remove(&r.id());
                    ledger.release(r);
                }
                _ => {}
            }
            check_windows(&limits, &counted)?;
        }
    }

    #[test]
    fn a_released_reservation_gives_its_capacity_back(
        start in start(),
        rpm in 1u64..6,
    ) {
        let id = PoolId::new("gemini", "proj", "m");
        let limits = Limits { rpm: Some(rpm), ..Limits::NONE };
        let mut ledger = PoolLedger::new(PoolConfig::new(id, limits, PACIFIC.clone()), start);
        let mut held = Vec::new();
        for _ in 0..rpm {
            held.push(ledger.admit(Cost::new(1, 0, 0), start).into_reservation().unwrap());
        }
        let refused = ledger.admit(Cost::new(1, 0, 0), start);
        prop_assert!(
            matches!(refused, Admission::WaitUntil { at, .. } if at == start + 60.seconds()),
            "{refused:?}"
        );
        ledger.release(held.pop().unwrap());
        prop_assert!(ledger.admit(Cost::new(1, 0, 0), start).is_go());
    }
}

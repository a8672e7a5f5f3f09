//! The daily quota resets at midnight Pacific, on the zone's calendar: on 2026-03-08 clocks
//! spring forward, so the next midnight is 00:00 PDT = 07:00 UTC, not 08:00 UTC.

#![allow(clippy::unwrap_used, clippy::panic)] // a failed expectation is a failed test

use std::path::PathBuf;

use imagegate_mock::sim::CallOutcome;
use imagegate_sim::{engine::run, scenario::Scenario, strategy::StrategyName};
use jiff::Timestamp;

#[test]
fn the_shipped_dst_burst_resets_at_midnight_pdt() {
    let file = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/scenarios/dst-midnight-burst.toml"
    ));
    let scenario = Scenario::load(&file).unwrap();
    let run = run(&scenario, StrategyName::Oracle).unwrap();
    let midnight_pdt: Timestamp = "2026-03-09T07:00:00Z".parse().unwrap();
    for (key, calls) in &run.calls {
        let served: Vec<Timestamp> = calls
            .iter()
            .filter(|c| c.outcome == CallOutcome::Served)
            .map(|c| c.at)
            .collect();
        let before = served.iter().filter(|at| **at < midnight_pdt).count();
        // 100 a day: the whole first day's quota in the half hour before midnight...
        assert_eq!(before, 100, "{key:?}");
        // ...and the next ones right after 00:00 PDT, well before 00:00 PST (08:00 UTC).
        assert!(served[100] >= midnight_pdt, "{key:?}");
        assert!(
            served[100] < "2026-03-09T07:05:00Z".parse().unwrap(),
            "{key:?}"
        );
    }
    // The preferred project's first request of the new day goes out at midnight exactly.
    let first = run.calls.values().next().unwrap();
    let next_day = first.iter().find(|c| c.at >= midnight_pdt).unwrap();
    assert_eq!(next_day.at, midnight_pdt);
    assert_eq!(next_day.outcome, CallOutcome::Served);
    assert_eq!(run.report.upstream_429, 0);
    assert_eq!(run.report.completed, 300);
}

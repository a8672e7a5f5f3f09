//! The same seed gives the same numbers; another seed gives other numbers.

#![allow(clippy::unwrap_used, clippy::panic)] // a failed expectation is a failed test

use std::path::PathBuf;

use imagegate_sim::{engine::run, scenario::Scenario, strategy::StrategyName};

fn scenario() -> Scenario {
    let file = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/scenarios/shared-pool.toml"
    ));
    Scenario::load(&file).unwrap()
}

#[test]
fn the_same_seed_gives_the_same_numbers_and_the_same_calls() {
    let s = scenario();
    let built: Vec<StrategyName> = StrategyName::ALL
        .into_iter()
        .filter(|n| n.is_built())
        .collect();
    for name in built {
        let (a, b) = (run(&s, name).unwrap(), run(&s, name).unwrap());
        assert_eq!(a.report, b.report, "{name}");
        assert_eq!(a.calls, b.calls, "{name}");
        assert_eq!(a.jobs, b.jobs, "{name}");
    }
}

#[test]
fn another_seed_draws_other_latencies() {
    let s = scenario();
    let mut other = s.clone();
    other.seed += 1;
    let a = run(&s, StrategyName::Oracle).unwrap();
    let b = run(&other, StrategyName::Oracle).unwrap();
    assert_ne!(a.report.makespan_s, b.report.makespan_s);
}

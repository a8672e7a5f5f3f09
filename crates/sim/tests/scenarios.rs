//! Every shipped scenario: it loads, every strategy accounts for every job, and the oracle never
//! gets a 429.

#![allow(clippy::unwrap_used, clippy::panic)] // a failed expectation is a failed test

use std::path::PathBuf;

use imagegate_sim::{Scenario, StrategyName, simulate};

fn shipped() -> Vec<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/scenarios"
    ));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_six_shipped_scenarios_each_load() {
    let files = shipped();
    assert!(files.len() >= 6, "{files:?}");
    for file in files {
        Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn every_strategy_accounts_for_every_job_and_the_oracle_never_gets_a_429() {
    let built: Vec<StrategyName> = StrategyName::ALL
        .into_iter()
        .filter(|s| s.is_built())
        .collect();
    for file in shipped() {
        let scenario = Scenario::load(&file).unwrap();
        let report = simulate(&scenario, &built).unwrap();
        println!("{}", report.table());
        for row in &report.results {
            assert_eq!(row.lost, 0, "{}: {row:?}", file.display());
            assert_eq!(
                row.completed + row.failed,
                scenario.workload.jobs,
                "{row:?}"
            );
        }
        let oracle = &report.results[0];
        assert_eq!(oracle.strategy, "oracle");
        assert_eq!(oracle.upstream_429, 0, "{}: {oracle:?}", file.display());
        assert_eq!(oracle.goodput, 1.0);
    }
}

//! The emulator takes a simulator scenario file as is (docs/emulate.md): both front ends read
//! the `[upstream]` table of every shipped scenario into the same upstream, pool for pool.
#![allow(clippy::unwrap_used, clippy::panic)] // failures are failed tests

use std::path::{Path, PathBuf};

use imagegate_emulator::EmulatorConfig;
use imagegate_sim::scenario::Scenario;

fn shipped_scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 6,
        "found {} scenarios in {}",
        files.len(),
        dir.display()
    );
    files
}

#[test]
fn both_front_ends_read_every_shipped_scenario_to_the_same_upstream() {
    let mut batch_pools = 0;
    for path in shipped_scenarios() {
        let name = path.display();
        let scenario = Scenario::load(&path).unwrap_or_else(|e| panic!("simulator: {e}"));
        let emulated = EmulatorConfig::load(&path).unwrap_or_else(|e| panic!("emulator: {e}"));
        let truth = &scenario.upstream;
        assert_eq!(emulated.seed, scenario.seed, "{name}");
        assert_eq!(emulated.latency, truth.latency, "{name}");
        assert_eq!(emulated.reject_latency, truth.reject_latency, "{name}");
        assert_eq!(emulated.overload_rate, truth.overload_rate, "{name}");
        assert_eq!(emulated.pools.len(), truth.pools.len(), "{name}");
        for (e, s) in emulated.pools.iter().zip(&truth.pools) {
            assert_eq!(e.kind, s.kind, "{name}");
            assert_eq!(e.project, s.project, "{name}");
            assert_eq!(e.pool.models, s.pool.models, "{name}");
            assert_eq!(e.pool.limits, s.pool.limits, "{name}");
            assert_eq!(e.pool.window, s.pool.window, "{name}");
            assert_eq!(e.pool.day_zone, s.pool.day_zone, "{name}");
            assert_eq!(
                e.batch.map(|b| (b.turnaround, b.enqueued_tokens)),
                s.batch.map(|b| (b.turnaround, b.enqueued_tokens)),
                "{name}"
            );
            batch_pools += usize::from(e.batch.is_some());
            assert!(e.faults.is_none(), "{name}: a scenario has no faults");
        }
        assert!(emulated.keys.is_empty(), "{name}: a scenario has no keys");
    }
    assert!(batch_pools > 0, "no shipped scenario has a Batch API pool");
}

#[test]
fn a_bad_pool_value_reads_the_same_in_both() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/scenarios/three-projects-openrouter.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    for (good, bad) in [
        ("latency = \"8s..30s\"", "latency = \"30s..8s\""),
        ("provider = \"openrouter\"", "provider = \"open-router\""),
        ("rpm = 10", "rpm = -1"),
    ] {
        assert!(text.contains(good), "{good}");
        let bad_text = text.replacen(good, bad, 1);
        let file = Path::new("s.toml");
        let s = Scenario::parse(file, &bad_text).unwrap_err();
        let e = EmulatorConfig::parse(file, &bad_text).unwrap_err();
        assert_eq!(s.to_string(), e.to_string(), "{bad}");
        assert_eq!((s.key, s.expected), (e.key, e.expected), "{bad}");
    }
}

//! # imagegate-sim
//!
//! The quota simulator: a scenario in TOML describes a workload, the *true* upstream quota pools
//! and what the client is configured with; each strategy runs the same jobs against simulated
//! upstreams ([`imagegate_mock::sim`]) that fail with the real services' wire errors, classified
//! by the real provider crates' `parse_error`. Time is tokio's paused clock, so a scenario of
//! several simulated days runs in seconds, and every random draw derives from the scenario's
//! seed, so the same seed gives the same numbers.
//!
//! ```
//! use std::path::Path;
//!
//! use imagegate_sim::{Scenario, StrategyName, simulate};
//!
//! let scenario = Scenario::parse(Path::new("example.toml"), r#"
//!     name = "one project"
//!     start = "2026-03-07T18:00:00-08:00"
//!     seed = 7
//!     [workload]
//!     jobs = 20
//!     deadline = "1h"
//!     [upstream]
//!     latency = "8s..30s"
//!     [[upstream.pool]]
//!     provider = "gemini"
//!     project = "proj-a"
//!     models = ["gemini-2.5-flash-image"]
//!     rpm = 10
//!     [client]
//!     concurrency = 4
//!     [[client.target]]
//!     provider = "gemini"
//!     project = "proj-a"
//!     model = "gemini-2.5-flash-image"
//! "#)?;
//! let report = simulate(&scenario, &[StrategyName::Oracle, StrategyName::FixedInterval])?;
//! assert_eq!(report.results[0].upstream_429, 0);
//! assert_eq!(report.results[0].goodput, 1.0);
//! assert_eq!(report.results[0].lost + report.results[1].lost, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod engine;
pub mod providers;
pub mod report;
pub mod scenario;
pub mod strategy;
pub mod world;

pub use engine::{JobOutcome, JobRecord, Run, run};
pub use report::{SimReport, StrategyReport};
pub use scenario::{Scenario, ScenarioError};
pub use strategy::{Strategy, StrategyName};

/// Runs `strategies` over `scenario`, each on its own paused-time runtime in its own thread,
/// plus the oracle when it is not among them (goodput is relative to it). Rows come back in the
/// order asked for.
///
/// # Errors
/// A message naming the first strategy that could not run (e.g. not built).
pub fn simulate(scenario: &Scenario, strategies: &[StrategyName]) -> Result<SimReport, String> {
    let mut names: Vec<StrategyName> = strategies.to_vec();
    if !names.contains(&StrategyName::Oracle) {
        names.push(StrategyName::Oracle);
    }
    let runs: Vec<Result<Run, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .iter()
            .map(|&name| scope.spawn(move || run(scenario, name)))
            .collect();
        handles
            .into_iter()
            .zip(&names)
            .map(|(h, name)| {
                h.join()
                    .unwrap_or_else(|_| Err(format!("the {name} run panicked")))
            })
            .collect()
    });
    let mut rows = Vec::new();
    for (name, run) in names.iter().zip(runs) {
        let run = run.map_err(|e| format!("strategy {name}: {e}"))?;
        rows.push(run.report);
    }
    // Rates are measured over a common span of at least the oracle's makespan: a strategy that
    // gives up early ends early, and must not look faster for it.
    let oracle = rows
        .iter()
        .find(|r| r.strategy == StrategyName::Oracle.as_str())
        .map(|r| (r.completed as f64, r.makespan_s));
    for row in &mut rows {
        row.goodput = match oracle {
            Some((done, span)) if done > 0.0 && span > 0.0 => {
                let own = row.completed as f64 / row.makespan_s.max(span);
                engine::round(own / (done / span), 4)
            }
            _ => 0.0,
        };
    }
    rows.truncate(strategies.len().max(1).min(rows.len()));
    if strategies.is_empty() {
        rows.clear();
    }
    Ok(SimReport {
        scenario: scenario.name.clone(),
        jobs: scenario.workload.jobs,
        results: rows,
    })
}

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod batching;
pub mod bound;
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
    let bound = bound::bound(scenario);
    for row in &mut rows {
        row.of_bound = if bound == 0 {
            0.0
        } else {
            engine::round(row.completed as f64 / bound as f64, 4)
        };
    }
    rows.truncate(strategies.len().max(1).min(rows.len()));
    if strategies.is_empty() {
        rows.clear();
    }
    Ok(SimReport {
        scenario: scenario.name.clone(),
        jobs: scenario.workload.jobs,
        bound,
        results: rows,
    })
}

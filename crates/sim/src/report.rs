//! The report: one row per strategy, as a table for people and JSON for scripts.

use serde::{Deserialize, Serialize};

/// One strategy's numbers over one scenario. The JSON field names are an interface.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyReport {
    /// The strategy's name.
    pub strategy: String,
    /// Jobs that got every image before their deadline.
    pub completed: u64,
    /// Jobs given up or past their deadline.
    pub failed: u64,
    /// Jobs neither completed nor reported failed (must be 0).
    pub lost: u64,
    /// Requests that reached an upstream.
    pub upstream_calls: u64,
    /// Of which answered 429.
    pub upstream_429: u64,
    /// Of which answered 503.
    pub upstream_503: u64,
    /// From the start to the last job's end, in simulated seconds.
    pub makespan_s: f64,
    /// Completed jobs per simulated second, divided by the oracle's (1.0: the physical limit).
    /// Seconds are counted over at least the oracle's makespan, so a strategy that gives up
    /// early does not look faster for it.
    pub goodput: f64,
    /// What every served image cost, by the default price table.
    pub cost_usd: f64,
    /// Paid for images never delivered (a job that failed or ran out of time after some of
    /// its images were served and billed).
    pub wasted_usd: f64,
}

/// A whole simulation's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// The scenario's name.
    pub scenario: String,
    /// How many jobs it has.
    pub jobs: u64,
    /// One row per strategy, in the order asked for.
    pub results: Vec<StrategyReport>,
}

impl SimReport {
    /// A plain-text table, one row per strategy.
    pub fn table(&self) -> String {
        let header = [
            "strategy",
            "completed",
            "failed",
            "lost",
            "calls",
            "429",
            "503",
            "makespan_s",
            "goodput",
            "cost_usd",
            "wasted_usd",
        ];
        let rows: Vec<[String; 11]> = self
            .results
            .iter()
            .map(|r| {
                [
                    r.strategy.clone(),
                    r.completed.to_string(),
                    r.failed.to_string(),
                    r.lost.to_string(),
                    r.upstream_calls.to_string(),
                    r.upstream_429.to_string(),
                    r.upstream_503.to_string(),
                    format!("{:.1}", r.makespan_s),
                    format!("{:.3}", r.goodput),
                    format!("{:.2}", r.cost_usd),
                    format!("{:.2}", r.wasted_usd),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i == 0 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let mut out = format!("scenario: {} ({} jobs)\n", self.scenario, self.jobs);
        out.push_str(&line(&header.map(str::to_owned)));
        out.push('\n');
        for row in &rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out
    }
}

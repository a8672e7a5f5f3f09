//! The report: one row per strategy, as a table for people and JSON for scripts.

use imagegate_core::Priority;
use serde::{Deserialize, Serialize};

use crate::engine::{JobOutcome, JobRecord, round};
use crate::scenario::Scenario;

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
    /// Completed jobs divided by the scenario's `bound` (the most any strategy could complete):
    /// 1.0 is the optimum, where goodput compares with a greedy sender only.
    #[serde(default)]
    pub of_bound: f64,
    /// What every served image cost, by the default price table.
    pub cost_usd: f64,
    /// Paid for images never delivered (a job that failed or ran out of time after some of
    /// its images were served and billed).
    pub wasted_usd: f64,
    /// Images a batch API returned (billed at its price, the price table's batch factor times
    /// the interactive one; an expired batch job returns and bills nothing); absent from the
    /// JSON when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub batch_images: u64,
    /// Per workload class: completed share and job latency.
    #[serde(default)]
    pub classes: Vec<ClassReport>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One class's numbers under one strategy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    /// The class's name (`all` for a workload without classes).
    pub class: String,
    /// Its priority.
    pub priority: String,
    /// Its jobs.
    pub jobs: u64,
    /// Of which completed.
    pub completed: u64,
    /// `completed / jobs`.
    pub completed_share: f64,
    /// Job latency (arrival to completion) of its completed jobs, in seconds: the median, the
    /// 95th and the 99th percentile (nearest rank); `None` when none completed. A completed job
    /// ended before its deadline, so these are at most the deadline by construction: read them
    /// with `completed_share`.
    pub p50_s: Option<f64>,
    /// 95th percentile.
    pub p95_s: Option<f64>,
    /// 99th percentile.
    pub p99_s: Option<f64>,
}

/// The nearest-rank `p` percentile of sorted `values`.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// Per-class rows for the jobs of one run.
pub(crate) fn classes(scenario: &Scenario, jobs: &[JobRecord]) -> Vec<ClassReport> {
    let dealt = scenario.workload.deal();
    scenario
        .workload
        .classes
        .iter()
        .enumerate()
        .map(|(k, class)| {
            let total = dealt.iter().filter(|&&d| d == k).count() as u64;
            let mut latencies: Vec<f64> = jobs
                .iter()
                .filter(|j| j.class == k && matches!(j.outcome, JobOutcome::Completed(_)))
                .map(|j| (j.end.as_millisecond() - j.arrival.as_millisecond()) as f64 / 1_000.0)
                .collect();
            latencies.sort_by(f64::total_cmp);
            let completed = latencies.len() as u64;
            let p = |q| percentile(&latencies, q).map(|v| round(v, 3));
            ClassReport {
                class: class.name.clone(),
                priority: match class.priority {
                    Priority::Background => "background",
                    _ => "interactive",
                }
                .to_owned(),
                jobs: total,
                completed,
                completed_share: if total == 0 {
                    0.0
                } else {
                    round(completed as f64 / total as f64, 4)
                },
                p50_s: p(50.0),
                p95_s: p(95.0),
                p99_s: p(99.0),
            }
        })
        .collect()
}

/// A whole simulation's report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// The scenario's name.
    pub scenario: String,
    /// How many jobs it has.
    pub jobs: u64,
    /// The most jobs any strategy could complete (see [`crate::bound`]).
    #[serde(default)]
    pub bound: u64,
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
            "of_bound",
            "cost_usd",
            "wasted_usd",
        ];
        // The batch column only when a strategy used a batch API: reports of scenarios
        // without one read as they always have.
        let batch = self.results.iter().any(|r| r.batch_images > 0);
        let mut header: Vec<&str> = header.to_vec();
        if batch {
            header.push("batch_images");
        }
        let rows: Vec<Vec<String>> = self
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
                    format!("{:.3}", r.of_bound),
                    format!("{:.2}", r.cost_usd),
                    format!("{:.2}", r.wasted_usd),
                ]
                .into_iter()
                .chain(batch.then(|| r.batch_images.to_string()))
                .collect()
            })
            .collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |cells: &[String]| {
            cells
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(i, (c, &w))| {
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
        let mut out = format!(
            "scenario: {} ({} jobs, bound {})\n",
            self.scenario, self.jobs, self.bound
        );
        let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
        out.push_str(&line(&header));
        out.push('\n');
        for row in &rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        out.push_str(&self.class_table());
        out
    }

    /// Per class and strategy: completed share and job latency percentiles.
    fn class_table(&self) -> String {
        let fmt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
        let mut out = String::from("\nper class (latency of completed jobs, seconds):\n");
        let mut rows = vec![[
            "strategy".to_owned(),
            "class".to_owned(),
            "priority".to_owned(),
            "jobs".to_owned(),
            "completed".to_owned(),
            "share".to_owned(),
            "p50_s".to_owned(),
            "p95_s".to_owned(),
            "p99_s".to_owned(),
        ]];
        for r in &self.results {
            for c in &r.classes {
                rows.push([
                    r.strategy.clone(),
                    c.class.clone(),
                    c.priority.clone(),
                    c.jobs.to_string(),
                    c.completed.to_string(),
                    format!("{:.3}", c.completed_share),
                    fmt(c.p50_s),
                    fmt(c.p95_s),
                    fmt(c.p99_s),
                ]);
            }
        }
        let mut widths = [0usize; 9];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        for row in &rows {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (c, w))| {
                    if i < 3 {
                        format!("{c:<w$}")
                    } else {
                        format!("{c:>w$}")
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        out
    }
}

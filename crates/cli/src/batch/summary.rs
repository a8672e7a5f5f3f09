//! The end-of-run summary: per target images, 429s and cost; every failed job with its kind
//! and advice; skipped input lines. Text on stdout, or one JSON object with `--json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::input::Malformed;

/// What one target (provider/model, or a route's target name) did this run.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct TargetStats {
    pub images: u64,
    /// Upstream 429 answers (rate limited or quota exhausted).
    pub rate_limited: u64,
    pub cost_usd: f64,
}

/// A job that did not produce all its images.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct FailedJob {
    pub job: String,
    pub line: usize,
    /// An error kind (`rate_limited`, `billing_required`, ...), or `not_run` (--max-cost),
    /// `interrupted` (Ctrl-C) or `unreadable_reference`.
    pub kind: String,
    pub message: String,
    pub advice: String,
}

/// One Batch API job of the run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BatchJobSummary {
    /// Its display name (the journal's key for it).
    pub display_name: String,
    /// The server's name (`batches/...`), once created.
    pub name: Option<String>,
    /// `creating`, `pending`, `running`, `succeeded`, `failed`, `cancelled`, `expired`,
    /// `not_created`, `lost`.
    pub state: String,
    /// Images it holds for this run.
    pub images: u64,
}

/// The whole run.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Summary {
    pub out_dir: PathBuf,
    pub journal: PathBuf,
    pub jobs: usize,
    /// Images the input asks for, in all.
    pub images_planned: u64,
    /// Images on disk from earlier runs (journal), not generated again.
    pub images_already_done: u64,
    /// Images generated and written by this run.
    pub images_written: u64,
    /// Images found on disk after a crash between the rename and its journal record: adopted,
    /// not generated again.
    pub images_recovered: u64,
    /// Calls sent again because an earlier run died while they were in flight.
    pub resent_after_interruption: u64,
    /// Spend this run (the provider's reported cost, else the price table's estimate; batch
    /// images at the batch price).
    pub cost_usd: f64,
    /// How the images were sent: `interactive`, `batch` or `auto`.
    pub via: String,
    /// Images of this run that came from the Batch API (counted in `images_written` too).
    pub images_via_batch: u64,
    /// What those cost (price table x the batch factor), part of `cost_usd`.
    pub batch_cost_usd: f64,
    /// The Batch API jobs this run created or re-attached to.
    pub batch_jobs: Vec<BatchJobSummary>,
    pub targets: BTreeMap<String, TargetStats>,
    pub failed: Vec<FailedJob>,
    pub malformed_lines: Vec<Malformed>,
    /// Ctrl-C or SIGTERM stopped the run.
    pub interrupted: bool,
    /// The output directory stopped taking images (a full disk, a read-only file system):
    /// no new call was started after it. The first such error.
    pub write_failure: Option<String>,
    /// Paid images the output could not take, kept in the recovery place; the next run
    /// moves them into the output without paying again.
    pub rescued: Vec<PathBuf>,
    /// The command that resumes the batch, when anything is left.
    pub resume: Option<String>,
}

impl Summary {
    /// True when every job has all its images.
    pub(crate) fn complete(&self) -> bool {
        self.failed.is_empty() && !self.interrupted && self.write_failure.is_none()
    }

    /// The human summary.
    pub(crate) fn text(&self) -> String {
        let mut out = String::new();
        let mut push = |line: String| {
            out.push_str(&line);
            out.push('\n');
        };
        push(format!(
            "batch: {} job(s), {} image(s): {} written now, {} already done{}; spent ${:.3}",
            self.jobs,
            self.images_planned,
            self.images_written,
            self.images_already_done,
            if self.images_recovered > 0 {
                format!(", {} recovered from disk", self.images_recovered)
            } else {
                String::new()
            },
            self.cost_usd
        ));
        if self.images_via_batch > 0 || !self.batch_jobs.is_empty() {
            push(format!(
                "  via the Batch API: {} image(s), ${:.3}, {} batch job(s)",
                self.images_via_batch,
                self.batch_cost_usd,
                self.batch_jobs.len()
            ));
            for job in &self.batch_jobs {
                push(format!(
                    "    batch job {}{}: {}, {} image(s)",
                    job.display_name,
                    job.name
                        .as_deref()
                        .map_or_else(String::new, |n| format!(" ({n})")),
                    job.state,
                    job.images
                ));
            }
        }
        if self.resent_after_interruption > 0 {
            push(format!(
                "  {} call(s) sent again: they were in flight when an earlier run stopped",
                self.resent_after_interruption
            ));
        }
        for (target, stats) in &self.targets {
            push(format!(
                "  {target}: {} image(s), {} 429(s), ${:.3}",
                stats.images, stats.rate_limited, stats.cost_usd
            ));
        }
        for line in &self.malformed_lines {
            push(format!("  skipped line {}: {}", line.line, line.reason));
        }
        for job in &self.failed {
            push(format!(
                "  failed job {} (line {}): {}: {}",
                job.job, job.line, job.kind, job.message
            ));
            if !job.advice.is_empty() {
                push(format!("    advice: {}", job.advice));
            }
        }
        if let Some(failure) = &self.write_failure {
            push(format!(
                "  stopped starting calls: the output cannot take images ({failure})"
            ));
        }
        for path in &self.rescued {
            push(format!(
                "  paid image kept at {} (the next run moves it into place)",
                path.display()
            ));
        }
        if let Some(resume) = &self.resume {
            push(format!("to resume, run the same command again: {resume}"));
        }
        out
    }
}

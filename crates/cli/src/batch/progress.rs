//! Progress while a batch runs: an indicatif bar on a terminal (done / failed / remaining,
//! rate, ETA, spend, the current throttling reason), plain log lines on stderr otherwise, so
//! logs and tests see one line per event.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

/// Counters shown with every update.
#[derive(Debug, Default)]
struct Counts {
    done: u64,
    failed_jobs: u64,
    spent_usd: f64,
    throttled: Option<String>,
    /// Batch API jobs by display name: state, requests finished, requests.
    batches: BTreeMap<String, (String, u64, u64)>,
}

impl Counts {
    /// `batch: 2 job(s) running 40/100, 1 pending 0/50`, or nothing without batch jobs.
    fn batches(&self) -> Option<String> {
        if self.batches.is_empty() {
            return None;
        }
        let mut by_state: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
        for (state, finished, total) in self.batches.values() {
            let entry = by_state.entry(state.as_str()).or_default();
            entry.0 += 1;
            entry.1 += finished;
            entry.2 += total;
        }
        let parts: Vec<String> = by_state
            .iter()
            .map(|(state, (jobs, finished, total))| format!("{jobs} {state} {finished}/{total}"))
            .collect();
        Some(format!("batch jobs: {}", parts.join(", ")))
    }
}

/// The progress display of one run.
#[derive(Debug)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    counts: Mutex<Counts>,
}

impl Progress {
    /// A bar when stderr is a terminal and `quiet` is false; plain lines otherwise.
    /// `total` counts the images this run has to make.
    pub(crate) fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style =
                ProgressStyle::with_template("{bar:30} {pos}/{len} done  {rate}  ETA {eta}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    // Images a minute: the unit quotas are counted in.
                    .with_key(
                        "rate",
                        |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                            let _ = write!(out, "{:.1}/min", state.per_sec() * 60.0);
                        },
                    );
            bar.set_style(style);
            bar
        });
        Progress {
            bar,
            total,
            counts: Mutex::new(Counts::default()),
        }
    }

    /// Prints a line without tearing the bar.
    pub(crate) fn line(&self, text: &str) {
        let text = imagegate_core::secret::scrub(text);
        match &self.bar {
            Some(bar) => bar.suspend(|| eprintln!("imagegate: {text}")),
            None => eprintln!("imagegate: {text}"),
        }
    }

    fn update(&self, change: impl FnOnce(&mut Counts)) -> Option<String> {
        let mut counts = self.counts.lock().ok()?;
        change(&mut counts);
        let batches = counts
            .batches()
            .map_or_else(String::new, |b| format!(", {b}"));
        let status = format!(
            "done {}/{}, failed {}, remaining {}, spent ${:.3}{batches}",
            counts.done,
            self.total,
            counts.failed_jobs,
            self.total.saturating_sub(counts.done),
            counts.spent_usd
        );
        if let Some(bar) = &self.bar {
            bar.set_position(counts.done);
            let throttled = counts
                .throttled
                .as_deref()
                .map_or_else(String::new, |t| format!("  {t}"));
            bar.set_message(format!(
                "failed {}  remaining {}  ${:.3}{}{throttled}",
                counts.failed_jobs,
                self.total.saturating_sub(counts.done),
                counts.spent_usd,
                batches
                    .strip_prefix(',')
                    .map_or_else(String::new, |b| format!(" {b}"))
            ));
        }
        Some(status)
    }

    /// One image is on disk.
    pub(crate) fn written(&self, path: &Path, target: &str, cost_usd: f64) {
        let status = self.update(|c| {
            c.done += 1;
            c.spent_usd += cost_usd;
            c.throttled = None;
        });
        if self.bar.is_none()
            && let Some(status) = status
        {
            self.line(&format!(
                "wrote {} via {target} (${cost_usd:.3}) [{status}]",
                path.display()
            ));
        }
    }

    /// One job stopped without all its images.
    pub(crate) fn failed(&self, job: &str, line: usize, kind: &str, message: &str) {
        let status = self.update(|c| c.failed_jobs += 1);
        let status = status.map_or_else(String::new, |s| format!(" [{s}]"));
        self.line(&format!(
            "job {job} (line {line}) failed: {kind}: {message}{status}"
        ));
    }

    /// Why nothing is being sent right now ("waiting 41 s: proj-a RPM"), or `None` when
    /// calls flow again.
    pub(crate) fn throttled(&self, why: Option<String>) {
        if self.bar.is_none()
            && let Some(why) = &why
        {
            self.line(why);
        }
        self.update(|c| c.throttled = why);
    }

    /// A Batch API job is in `state` with `finished` of its `total` requests done (shown
    /// beside the interactive work; one plain line per change without a terminal).
    pub(crate) fn batch(&self, display_name: &str, state: &str, finished: u64, total: u64) {
        let status = self.update(|c| {
            c.batches
                .insert(display_name.to_owned(), (state.to_owned(), finished, total));
        });
        if self.bar.is_none()
            && let Some(status) = status
        {
            self.line(&format!(
                "batch job {display_name}: {state} {finished}/{total} [{status}]"
            ));
        }
    }

    /// Removes the bar before the summary is printed.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

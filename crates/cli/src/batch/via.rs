//! Which way the images go: `--via interactive|batch|auto` and `--deadline`.
//!
//! `auto` asks the router's policy (`imagegate_router::via::plan`, the one the simulator
//! measures) how many of the images to send interactively and how many through the Batch API,
//! then gives whole jobs to each side in input order (a job's images all go one way, so its
//! `-1`, `-2`, ... files come from one place).

use std::time::Duration;

use imagegate_core::quota::PoolStatus;
use imagegate_router::via::{BatchAhead, PoolAhead, ViaInput, Why, plan};
use jiff::Timestamp;

use super::input::Job;
use super::journal::JobHistory;
use super::runner::written_count;
use crate::config::{BatchConfig, Config, ProviderConfig};
use crate::failure::Failure;
use crate::routes::split_target;

/// `--via`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Via {
    /// Every image through the router, now, at the full price.
    Interactive,
    /// Every image through the Gemini Batch API: half price, results within 24 h.
    Batch,
    /// The Batch API for what the deadline allows, interactively what would miss it.
    Auto,
}

impl Via {
    pub(crate) fn word(self) -> &'static str {
        match self {
            Via::Interactive => "interactive",
            Via::Batch => "batch",
            Via::Auto => "auto",
        }
    }
}

/// The provider whose Batch API a run may use: the first target of the route (or the one
/// provider) that is a Gemini provider with `batch` not turned off.
#[derive(Debug, Clone)]
pub(crate) struct BatchTarget {
    /// Its configured name.
    pub provider: String,
    pub config: ProviderConfig,
    /// The model its target names (the provider's default model otherwise).
    pub model: String,
}

/// The batch-capable target of the route `route`, or of the provider `provider` (`--provider`,
/// or the one the run picked, `picked`).
pub(crate) fn batch_target(
    config: &Config,
    route: Option<&str>,
    picked: &str,
    model: Option<&str>,
) -> Option<BatchTarget> {
    let entries: Vec<(String, Option<String>)> = match route.and_then(|r| config.routes.get(r)) {
        Some(route) => route
            .targets
            .iter()
            .map(|entry| {
                let (name, model) = split_target(entry);
                (name.to_owned(), model.map(str::to_owned))
            })
            .collect(),
        None => vec![(picked.to_owned(), None)],
    };
    entries.into_iter().find_map(|(name, target_model)| {
        let provider_config = config.providers.get(&name).cloned().unwrap_or_default();
        if !provider_config.batch_enabled(&name) {
            return None;
        }
        let default = provider_config
            .model
            .clone()
            .or_else(|| {
                provider_config
                    .kind_for(&name)
                    .map(|kind| kind.default_model().to_owned())
            })
            .unwrap_or_default();
        Some(BatchTarget {
            provider: name,
            config: provider_config,
            model: model.map(str::to_owned).or(target_model).unwrap_or(default),
        })
    })
}

/// Why the run is interactive when `--via` was not given.
pub(crate) fn default_reason(
    deadline: Option<Duration>,
    target: Option<&BatchTarget>,
    batch: &BatchConfig,
) -> String {
    match (target, deadline) {
        (None, _) => "the default: no Gemini target with its Batch API on".to_owned(),
        (Some(_), None) => "the default without --deadline".to_owned(),
        (Some(_), Some(_)) => format!(
            "the default: --deadline is under batch.min_deadline ({})",
            imagegate_core::human_duration(batch.min_deadline())
        ),
    }
}

/// The way the run goes: `--via` when given (checked against the route), else `auto` when
/// the route can use the Batch API and `--deadline` is at least `batch.min_deadline`, else
/// `interactive` (as before the Batch API existed).
///
/// # Errors
/// [`Failure::Usage`] for `--via batch` without a batch-capable target, `--via auto` without
/// `--deadline`.
pub(crate) fn resolve(
    given: Option<Via>,
    deadline: Option<Duration>,
    target: Option<&BatchTarget>,
    batch: &BatchConfig,
    label: &str,
) -> Result<Via, Failure> {
    match given {
        Some(Via::Batch) if target.is_none() => Err(Failure::usage(format!(
            "--via batch needs a Gemini target whose Batch API is not turned off, and {label} \
             has none (only Gemini has a Batch API; `batch = false` in its [providers.NAME] \
             turns it off); use --via interactive or another route"
        ))),
        Some(Via::Auto) if deadline.is_none() => Err(Failure::usage(
            "--via auto needs --deadline DURATION (when the images are due, e.g. 30h): the \
             Batch API is used only when the deadline allows it"
                .to_owned(),
        )),
        Some(via) => Ok(via),
        None => Ok(match (target, deadline) {
            (Some(_), Some(deadline)) if deadline >= batch.min_deadline() => Via::Auto,
            _ => Via::Interactive,
        }),
    }
}

/// A job and what the journal says of it.
pub(crate) type Entry = (Job, JobHistory);

/// How `auto` split the work, for the dry run and the summary.
#[derive(Debug, Clone)]
pub(crate) struct Split {
    /// Images planned to go interactively (the rest go to the Batch API).
    pub interactive_images: u64,
    /// Why (the policy's words), or the flag that forced it.
    pub reason: String,
}

/// The policy's input from what the router knows of the pools now.
pub(crate) fn policy_input(
    now: Timestamp,
    deadline: Duration,
    images: u64,
    statuses: &[PoolStatus],
    concurrency: u64,
    batch: Option<&BatchConfig>,
) -> ViaInput {
    let due = now
        .checked_add(jiff::SignedDuration::try_from(deadline).unwrap_or(jiff::SignedDuration::MAX))
        .unwrap_or(Timestamp::MAX);
    let mut input = ViaInput::new(now, due, images)
        // What the dry run assumes of a call too (docs/batch.md): the high end of 8-20 s.
        .with_latency(Duration::from_secs(20))
        .with_concurrency(concurrency);
    for status in statuses {
        if let Some(pool) = PoolAhead::from_status(status) {
            input = input.with_pool(pool);
        }
    }
    if let Some(batch) = batch {
        input = input.with_batch(
            BatchAhead::default()
                .with_turnaround(batch.turnaround())
                .with_min_deadline(batch.min_deadline()),
        );
    }
    input
}

/// Splits `jobs` for `via`: (interactive, batch) and how. Under `auto`, the policy's count of
/// interactive images is filled with whole jobs in input order; the rest go to the Batch API.
pub(crate) fn split(
    via: Via,
    jobs: Vec<Entry>,
    input: Option<&ViaInput>,
) -> (Vec<Entry>, Vec<Entry>, Split) {
    let remaining = |(job, history): &(Job, JobHistory)| {
        u64::from(job.n).saturating_sub(written_count(history))
    };
    let total: u64 = jobs.iter().map(remaining).sum();
    let (interactive_count, reason) = match (via, input) {
        (Via::Interactive, _) => (total, "asked for".to_owned()),
        (Via::Batch, _) => (0, "asked for".to_owned()),
        (Via::Auto, None) => (total, Why::NoBatch.as_str().to_owned()),
        (Via::Auto, Some(input)) => {
            let decided = plan(input);
            let mut reason = decided.why.as_str().to_owned();
            if decided.interactive_late > 0 {
                reason.push_str(&format!(
                    "; {} interactive image(s) may miss the deadline",
                    decided.interactive_late
                ));
            }
            (decided.interactive, reason)
        }
    };
    let mut interactive = Vec::new();
    let mut batch = Vec::new();
    let mut taken = 0;
    for entry in jobs {
        let images = remaining(&entry);
        if taken < interactive_count {
            taken += images;
            interactive.push(entry);
        } else {
            batch.push(entry);
        }
    }
    let batch_images: u64 = batch.iter().map(remaining).sum();
    let split = Split {
        interactive_images: total - batch_images,
        reason,
    };
    (interactive, batch, split)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn job(key: &str, n: u32) -> (Job, JobHistory) {
        (
            Job {
                key: key.to_owned(),
                line: 1,
                prompt: format!("prompt {key}"),
                n,
                size: None,
                aspect_ratio: None,
                model: None,
                seed: None,
                references: Vec::new(),
                stem: key.to_owned(),
            },
            JobHistory::default(),
        )
    }

    fn target() -> BatchTarget {
        BatchTarget {
            provider: "gemini".to_owned(),
            config: ProviderConfig::default(),
            model: "gemini-2.5-flash-image".to_owned(),
        }
    }

    #[test]
    fn auto_is_the_default_only_with_a_batch_target_and_a_long_enough_deadline() {
        let batch = BatchConfig::default();
        let day = Duration::from_secs(24 * 3600);
        let t = target();
        assert_eq!(
            resolve(None, Some(day + day / 4), Some(&t), &batch, "x").unwrap(),
            Via::Auto
        );
        assert_eq!(
            resolve(None, Some(day / 2), Some(&t), &batch, "x").unwrap(),
            Via::Interactive
        );
        assert_eq!(
            resolve(None, None, Some(&t), &batch, "x").unwrap(),
            Via::Interactive
        );
        assert_eq!(
            resolve(None, Some(day * 2), None, &batch, "x").unwrap(),
            Via::Interactive
        );
        assert!(resolve(Some(Via::Batch), None, None, &batch, "route:x").is_err());
        assert!(resolve(Some(Via::Auto), None, Some(&t), &batch, "x").is_err());
        assert_eq!(
            resolve(Some(Via::Batch), None, Some(&t), &batch, "x").unwrap(),
            Via::Batch
        );
    }

    #[test]
    fn auto_splits_whole_jobs_in_order_by_the_policy() {
        let now: Timestamp = "2026-03-04T16:00:00Z".parse().unwrap();
        let jobs = vec![job("a", 2), job("b", 1), job("c", 3)];
        // A deadline the batch API can meet: everything there.
        let far = policy_input(
            now,
            Duration::from_secs(30 * 3600),
            6,
            &[],
            4,
            Some(&BatchConfig::default()),
        );
        let (interactive, batch, how) = split(Via::Auto, jobs.clone(), Some(&far));
        assert!(interactive.is_empty());
        assert_eq!(batch.len(), 3);
        assert_eq!(how.interactive_images, 0);
        // Too close for it, and nothing parks the pools: everything interactive.
        let near = policy_input(
            now,
            Duration::from_secs(2 * 3600),
            6,
            &[],
            4,
            Some(&BatchConfig::default()),
        );
        let (interactive, batch, how) = split(Via::Auto, jobs.clone(), Some(&near));
        assert_eq!(interactive.len(), 3);
        assert!(batch.is_empty());
        assert!(how.reason.contains("too close"), "{}", how.reason);
        let (interactive, batch, _) = split(Via::Batch, jobs, None);
        assert!(interactive.is_empty());
        assert_eq!(batch.len(), 3);
    }
}

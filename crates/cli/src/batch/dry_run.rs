//! `imagegate batch --dry-run`: the images still to make, what they cost interactively, through
//! the Batch API and under the run's plan (and so the saving), and how long they take; nothing
//! is sent or written.

use std::time::Duration;

use imagegate_core::{GenerateRequest, ImageProvider};
use serde::Serialize;

use super::estimate::{PlannedTarget, Simulated, TimeEstimate, simulated, time_for};
use super::input::Malformed;
use super::runner::{Backend, written_count};
use super::via::{Entry, Split, Via};
use crate::config::Config;
use crate::failure::Failure;

/// The flags the dry run reads.
#[derive(Debug)]
pub(crate) struct DryRunArgs {
    /// `--model`.
    pub model: Option<String>,
    /// `--concurrency`.
    pub concurrency: u32,
    /// `--json`.
    pub json: bool,
}

/// What `--dry-run --json` prints.
#[derive(Debug, Serialize)]
struct DryRun<'a> {
    dry_run: bool,
    jobs: usize,
    images: u64,
    images_already_done: u64,
    /// The cost of the plan below (interactive images at the full price, batch ones at the
    /// batch price).
    estimated_cost_usd: f64,
    /// `interactive`, `batch` or `auto`, and why the images go the way they do.
    via: &'a str,
    via_reason: &'a str,
    images_interactive: u64,
    images_batch: u64,
    /// Every image interactively, and every image through the Batch API.
    cost_interactive_usd: f64,
    cost_batch_usd: f64,
    /// What the plan saves against all-interactive.
    saving_usd: f64,
    unpriced_models: Vec<String>,
    /// The simulator's makespan when it could run, else the simple bound's (null: unbounded).
    estimated_time_s: Option<f64>,
    /// How `estimated_time_s` was computed.
    time_method: String,
    simulation: Option<Simulated>,
    /// The simple capacity bound (images / per-minute capacity of the pools).
    bound: TimeEstimate,
    malformed_lines: &'a [Malformed],
}

/// Prints the dry run's report (text, or one JSON object with `--json`).
///
/// # Errors
/// [`Failure::Io`] when the JSON cannot be rendered.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dry_run(
    config: &Config,
    args: &DryRunArgs,
    backend: &Backend,
    targets: &[PlannedTarget],
    (interactive, to_batch): (&[Entry], &[Entry]),
    (via, how): (Via, &Split),
    already: u64,
    malformed: &[Malformed],
) -> Result<(), Failure> {
    let provider: &dyn ImageProvider = &backend.router;
    let prices = config.price_table();
    let mut images = 0;
    let mut cost = 0.0;
    let (mut cost_interactive, mut cost_batch) = (0.0, 0.0);
    let (mut images_interactive, mut images_batch) = (0, 0);
    let mut unpriced = std::collections::BTreeSet::new();
    let pending: Vec<(&Entry, bool)> = interactive
        .iter()
        .map(|entry| (entry, false))
        .chain(to_batch.iter().map(|entry| (entry, true)))
        .collect();
    for ((job, history), via_batch) in &pending {
        let remaining = u64::from(job.n) - written_count(history);
        images += remaining;
        if *via_batch {
            images_batch += remaining;
        } else {
            images_interactive += remaining;
        }
        let model = job
            .model
            .clone()
            .or_else(|| args.model.clone())
            .unwrap_or_else(|| provider.default_model().to_owned());
        let mut call = GenerateRequest::new(job.prompt.clone()).with_count(1);
        if let Some(size) = job.size {
            call = call.with_size(size);
        }
        match (
            prices.estimate(&call, &model, false),
            prices.estimate(&call, &model, true),
        ) {
            #[allow(clippy::cast_precision_loss)]
            (Some(full), Some(half)) => {
                let remaining = remaining as f64;
                cost_interactive += full * remaining;
                cost_batch += half * remaining;
                cost += if *via_batch { half } else { full } * remaining;
            }
            _ => {
                unpriced.insert(model);
            }
        }
    }
    // The time estimate is for the interactive part: batch jobs take the Batch API's
    // turnaround (up to 24 h), whatever the pools allow.
    let (simulated_images, pending_jobs) = (images_interactive, pending.len());
    let images_for_time = simulated_images;
    let pools: Vec<_> = targets.iter().map(|t| t.pool.clone()).collect();
    let bound = time_for(images_for_time, &pools);
    let concurrency = usize::try_from(args.concurrency).unwrap_or(1);
    let simulation = match simulated(images_for_time, targets, concurrency) {
        Ok(simulation) => Some(simulation),
        Err(why) => {
            tracing::info!(%why, "dry run: no simulation; using the simple bound");
            None
        }
    };
    let (estimated_time_s, time_method) = match &simulation {
        _ if images_interactive == 0 && images_batch > 0 => {
            let turnaround = config.batch.turnaround();
            (
                Some(turnaround.as_secs_f64()),
                "the Batch API's turnaround at most (batch.turnaround), usually much less"
                    .to_owned(),
            )
        }
        Some(sim) => (Some(sim.seconds), sim.method.clone()),
        None => (bound.seconds, bound.method.clone()),
    };
    let report = DryRun {
        dry_run: true,
        jobs: pending_jobs,
        images,
        images_already_done: already,
        estimated_cost_usd: cost,
        via: via.word(),
        via_reason: &how.reason,
        images_interactive,
        images_batch,
        cost_interactive_usd: cost_interactive,
        cost_batch_usd: cost_batch,
        saving_usd: cost_interactive - cost,
        unpriced_models: unpriced.into_iter().collect(),
        estimated_time_s,
        time_method,
        simulation,
        bound,
        malformed_lines: malformed,
    };
    if args.json {
        let text = serde_json::to_string(&report)
            .map_err(|e| Failure::io(format!("cannot render JSON: {e}")))?;
        println!("{text}");
        return Ok(());
    }
    println!(
        "dry run: {} job(s) to run, {} image(s) to make ({} already done)",
        report.jobs, report.images, report.images_already_done
    );
    println!(
        "estimated cost: ${:.3} (price table, per call): {} image(s) interactive, {} via the \
         Batch API (--via {}: {})",
        report.estimated_cost_usd,
        report.images_interactive,
        report.images_batch,
        report.via,
        report.via_reason
    );
    let saving_share = if report.cost_interactive_usd > 0.0 {
        report.saving_usd / report.cost_interactive_usd * 100.0
    } else {
        0.0
    };
    println!(
        "  all interactive: ${:.3}; all via the Batch API: ${:.3}; this plan saves ${:.3} \
         ({saving_share:.0}%)",
        report.cost_interactive_usd, report.cost_batch_usd, report.saving_usd
    );
    if report.images_batch > 0 && report.images_interactive > 0 {
        println!(
            "  the Batch API's images arrive within its turnaround (target 24 h, usually much \
             less); the time below is for the interactive ones"
        );
    }
    if !report.unpriced_models.is_empty() {
        println!(
            "  no price for: {} (counted as free)",
            report.unpriced_models.join(", ")
        );
    }
    match report.estimated_time_s {
        Some(seconds) => println!(
            "estimated time: {} ({})",
            humantime::format_duration(Duration::from_secs_f64(seconds.ceil())),
            report.time_method
        ),
        None => println!("estimated time: {}", report.time_method),
    }
    if let Some(sim) = &report.simulation {
        println!(
            "  simulated: {} upstream call(s), {} 429(s), {} image(s) not made",
            sim.upstream_calls, sim.upstream_429, sim.failed
        );
        if let Some(seconds) = report.bound.seconds {
            println!(
                "  lower bound from the limits alone: {}",
                humantime::format_duration(Duration::from_secs_f64(seconds.ceil()))
            );
        }
    }
    Ok(())
}

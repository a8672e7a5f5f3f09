//! `imagegate batch INPUT --out DIR`: many prompts to image files, resumable (docs/batch.md).
//!
//! This file wires the flags to the building blocks `generate` uses (the router over the shared
//! quota state, a provider being a one-target route; the price table); the work itself is in
//! `crate::batch`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use imagegate_core::{ImageProvider, Priority};
use imagegate_router::{Budget, MaxWait};

use crate::batch::dry_run::{DryRunArgs, dry_run};
use crate::batch::estimate::PlannedTarget;
use crate::batch::gemini_api::GeminiBatch;
use crate::batch::input::{Job, Malformed, References, detect, parse};
use crate::batch::journal::BatchHistory;
use crate::batch::journal::{FILE_NAME, JobHistory, Journal, Replay};
use crate::batch::lock::OutputLock;
use crate::batch::remote::{RemoteSettings, RemoteWork};
use crate::batch::runner::{Backend, Settings, run as run_jobs, written_count};
use crate::batch::summary::Summary;
use crate::batch::via::{
    BatchTarget, Via, batch_target, default_reason, policy_input, resolve, split,
};
use crate::config::{Config, ProviderConfig};
use crate::failure::Failure;
use crate::routes::{max_wait, routed, split_target};
use crate::state::pool_for;

/// Arguments of `imagegate batch`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The jobs: a text file (one prompt per line; blank and `#` lines skipped) or JSONL (one
    /// object per line: prompt, id, n, size, aspect_ratio, model, seed, references, output).
    #[arg(value_name = "INPUT")]
    input: PathBuf,

    /// The output directory (created if needed); it also holds the journal.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Jobs in flight at once.
    #[arg(long, default_value_t = 4, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=256))]
    concurrency: u32,

    /// A configured route (default: `default_route` when no --provider is given).
    #[arg(long, value_name = "NAME", conflicts_with = "provider")]
    route: Option<String>,

    /// The provider, by its configured name (as `generate --provider`).
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,

    /// The model for jobs that do not name one (default: the provider's).
    #[arg(long, value_name = "MODEL")]
    model: Option<String>,

    /// Stop starting calls when the spend (price-table estimate per call, the provider's
    /// reported cost once known) would pass this many US dollars.
    #[arg(long, value_name = "USD", value_parser = parse_usd)]
    max_cost: Option<f64>,

    /// Queue priority through a route: interactive or background.
    #[arg(long, default_value = "background", value_parser = parse_priority)]
    priority: Priority,

    /// Count images, estimate cost and time; send nothing, write nothing.
    #[arg(long)]
    dry_run: bool,

    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    json: bool,

    /// The longest wait for capacity per image. Without it, per-minute windows are waited
    /// for however long they take, but a daily quota or a billing block fails the image at
    /// once (saying when capacity returns); with it, any wait up to DURATION is taken.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    max_wait: Option<Duration>,

    /// Let JSONL jobs use reference images outside the input file's directory (`../`,
    /// absolute paths). Off by default, so an input from elsewhere cannot upload your files.
    #[arg(long)]
    allow_outside_references: bool,

    /// After Ctrl-C or SIGTERM, how long the calls in flight may take to finish.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    grace: Duration,

    /// How the images are sent: `interactive` (now, full price), `batch` (the Gemini Batch
    /// API: half price, results within 24 h) or `auto` (the Batch API when --deadline allows
    /// it, interactively what would miss it). Default: auto when the route has a Gemini
    /// target and --deadline is at least `batch.min_deadline` (24h), else interactive.
    #[arg(long, value_enum, value_name = "WAY")]
    via: Option<Via>,

    /// When the images are due, from now (e.g. 30h): lets `auto` use the Batch API.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    deadline: Option<Duration>,
}

fn parse_usd(text: &str) -> Result<f64, String> {
    match text.trim().trim_start_matches('$').parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd >= 0.0 => Ok(usd),
        _ => Err(format!(
            "`{text}` is not an amount of US dollars (e.g. 2.50)"
        )),
    }
}

fn parse_priority(text: &str) -> Result<Priority, String> {
    text.parse()
        .map_err(|e: imagegate_core::Error| e.message().to_owned())
}

/// Runs the command.
///
/// # Errors
/// [`Failure::Usage`] (exit 2) for unreadable input, no valid line, bad configuration;
/// [`Failure::Io`] (exit 1) when any job did not produce its images.
pub(crate) async fn run(config: &Config, args: Args) -> Result<(), Failure> {
    let text = std::fs::read(&args.input)
        .map_err(|e| Failure::usage(format!("cannot read INPUT {}: {e}", args.input.display())))?;
    let base = args
        .input
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let references = if args.allow_outside_references {
        References::Anywhere
    } else {
        References::Inside
    };
    let parsed = parse(&text, detect(&args.input, &text), &base, references);
    for line in &parsed.malformed {
        eprintln!(
            "imagegate: {}:{}: skipped: {}",
            args.input.display(),
            line.line,
            line.reason
        );
    }
    if parsed.jobs.is_empty() {
        return Err(Failure::usage(format!(
            "{} has no valid job{}",
            args.input.display(),
            if parsed.malformed.is_empty() {
                ""
            } else {
                " (every line was skipped)"
            }
        )));
    }

    let route = config.route_for(args.route.as_deref(), args.provider.as_deref());
    let routed = routed(
        config,
        route.as_deref(),
        args.provider.as_deref(),
        args.model.as_deref(),
        Budget::new(args.max_cost, None),
    )?;
    let pools = match &route {
        Some(route) => route_pools(config, route)?,
        None => {
            let name = &routed.label;
            let provider_config = config
                .providers
                .get(name)
                .cloned()
                .unwrap_or_else(ProviderConfig::default);
            let model = args
                .model
                .clone()
                .unwrap_or_else(|| routed.router.default_model().to_owned());
            pool_for(name, &provider_config, &model)?
                .into_iter()
                .map(|pool| PlannedTarget {
                    pool,
                    model: model.clone(),
                })
                .collect()
        }
    };
    let target = batch_target(
        config,
        route.as_deref(),
        &routed.label,
        args.model.as_deref(),
    );
    let via = resolve(
        args.via,
        args.deadline,
        target.as_ref(),
        &config.batch,
        &routed.label,
    )?;
    let backend = Backend {
        router: routed.router,
        route: routed.route,
    };

    if args.out.exists() && !args.out.is_dir() {
        return Err(Failure::usage(format!(
            "--out {} must be a directory (it holds the images and the journal), but it is a \
             file; name a directory",
            args.out.display()
        )));
    }
    // Held from before the journal is read until the run ends: a second run on this
    // directory stops here, before it can pay for anything.
    let early_lock = if args.dry_run || !args.out.is_dir() {
        None
    } else {
        Some(OutputLock::acquire(&args.out)?)
    };
    let journal_path = args.out.join(FILE_NAME);
    let replay = Replay::read(&journal_path).map_err(Failure::usage)?;
    for note in replay.notes(&journal_path) {
        eprintln!("imagegate: {note}");
    }
    let jobs: Vec<(Job, JobHistory)> = parsed
        .jobs
        .iter()
        .map(|job| {
            let history = replay.jobs.get(&job.key).cloned().unwrap_or_default();
            (job.clone(), history)
        })
        .collect();
    let images_planned: u64 = jobs.iter().map(|(job, _)| u64::from(job.n)).sum();
    let already: u64 = jobs
        .iter()
        .map(|(job, history)| written_count(history).min(u64::from(job.n)))
        .sum();
    let pending: Vec<(Job, JobHistory)> = jobs
        .into_iter()
        .filter(|(job, history)| written_count(history) < u64::from(job.n))
        .collect();

    // Jobs with images in a batch job of an earlier run that is not over go back to it,
    // whatever `--via` says: sending them again would pay twice.
    let live: Vec<BatchHistory> = replay.live_batches().cloned().collect();
    let (attached, free): (Vec<_>, Vec<_>) = pending.into_iter().partition(|(job, _)| {
        live.iter()
            .any(|batch| batch.images.iter().any(|key| key.job == job.key))
    });
    let free_images: u64 = free
        .iter()
        .map(|(job, history)| u64::from(job.n).saturating_sub(written_count(history)))
        .sum();
    let policy = if via == Via::Auto {
        let statuses = match backend.router.pool_statuses().await {
            Ok(statuses) => statuses,
            Err(e) => {
                tracing::info!(error = %e.message(), "auto: no pool status; planning without it");
                Vec::new()
            }
        };
        Some(policy_input(
            jiff::Timestamp::now(),
            args.deadline.unwrap_or_default(),
            free_images,
            &statuses,
            u64::from(args.concurrency),
            target.as_ref().map(|_| &config.batch),
        ))
    } else {
        None
    };
    let (interactive, mut to_batch, mut how) = split(via, free, policy.as_ref());
    if args.via.is_none() && via == Via::Interactive {
        how.reason = default_reason(args.deadline, target.as_ref(), &config.batch);
    }
    to_batch.extend(attached);

    if args.dry_run {
        dry_run(
            config,
            &DryRunArgs {
                model: args.model.clone(),
                concurrency: args.concurrency,
                json: args.json,
            },
            &backend,
            &pools,
            (&interactive, &to_batch),
            (via, &how),
            already,
            &parsed.malformed,
        )?;
        return skipped_lines_fail(&args.input, &parsed.malformed);
    }

    std::fs::create_dir_all(&args.out)
        .map_err(|e| Failure::usage(format!("cannot create --out {}: {e}", args.out.display())))?;
    let _lock = match early_lock {
        Some(lock) => lock,
        None => OutputLock::acquire(&args.out)?,
    };
    let journal = Journal::open(&args.out).map_err(Failure::usage)?;
    let summary = Summary {
        out_dir: args.out.clone(),
        journal: journal.path().to_path_buf(),
        jobs: parsed.jobs.len(),
        images_planned,
        images_already_done: already,
        malformed_lines: parsed.malformed.clone(),
        ..Summary::default()
    };
    let settings = Settings {
        out_dir: args.out.clone(),
        concurrency: usize::try_from(args.concurrency).unwrap_or(1),
        max_cost_usd: args.max_cost,
        priority: args.priority,
        grace: args.grace,
        model: args.model.clone(),
        max_wait: max_wait(args.max_wait, MaxWait::Windows),
        rescue_dir: crate::recovery::dir(config),
        spill: None,
    };
    let run_id = run_id();
    let remote = if to_batch.is_empty() {
        None
    } else {
        let (provider, provider_config, model) = batch_provider(
            config,
            &args,
            target.as_ref(),
            &live,
            backend.router.default_model(),
        )?;
        Some(RemoteWork {
            settings: remote_settings(config, &provider, &provider_config, model, &run_id)?,
            jobs: to_batch,
            live,
        })
    };
    // Under `auto`, jobs the interactive pools refuse for their daily quota spill to the
    // Batch API as the run goes (the policy's rule 3).
    let spill = match (&target, via) {
        (Some(target), Via::Auto) => Some(remote_settings(
            config,
            &target.provider,
            &target.config,
            target.model.clone(),
            &format!("{run_id}-s"),
        )?),
        _ => None,
    };
    if via != Via::Interactive || remote.is_some() {
        // Every image the Batch API side holds: the plan's, and those of jobs re-attached to
        // batch jobs of an earlier run.
        let via_batch: u64 = remote.as_ref().map_or(0, |r| {
            r.jobs
                .iter()
                .map(|(job, history)| u64::from(job.n).saturating_sub(written_count(history)))
                .sum()
        });
        eprintln!(
            "imagegate: --via {}: {via_batch} image(s) via the Batch API, {} interactive ({})",
            via.word(),
            how.interactive_images,
            how.reason
        );
    }
    let summary = Summary {
        via: via.word().to_owned(),
        ..summary
    };
    let settings = Settings { spill, ..settings };
    let mut summary = run_jobs(backend, journal, settings, interactive, remote, summary).await?;
    if !summary.complete() {
        summary.resume = Some(resume_command());
    }
    if args.json {
        let text = serde_json::to_string(&summary)
            .map_err(|e| Failure::io(format!("cannot render JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", summary.text());
    }
    if summary.interrupted {
        eprintln!(
            "imagegate: interrupted; everything done is recorded in {}. To resume, run the \
             same command again: {}",
            summary.journal.display(),
            resume_command()
        );
    }
    if !summary.complete() {
        return Err(Failure::io(format!(
            "{} job(s) of {} did not produce all their images (the others are kept)",
            summary.failed.len(),
            summary.jobs
        )));
    }
    skipped_lines_fail(&args.input, &parsed.malformed)
}

/// The provider the Batch API side of the run uses: the run's batch target (or, for jobs
/// re-attached to a batch job of an earlier run when this run has no batch target, the
/// provider that job went to), its configuration and model.
fn batch_provider(
    config: &Config,
    args: &Args,
    target: Option<&BatchTarget>,
    live: &[BatchHistory],
    default_model: &str,
) -> Result<(String, ProviderConfig, String), Failure> {
    Ok(match target {
        Some(target) => (
            target.provider.clone(),
            target.config.clone(),
            target.model.clone(),
        ),
        None => {
            let Some(first) = live.first() else {
                return Err(Failure::usage(
                    "no Gemini target with its Batch API on for the Batch API jobs".to_owned(),
                ));
            };
            (
                first.provider.clone(),
                config
                    .providers
                    .get(&first.provider)
                    .cloned()
                    .unwrap_or_default(),
                args.model
                    .clone()
                    .unwrap_or_else(|| default_model.to_owned()),
            )
        }
    })
}

/// How the Batch API side runs through `provider`, naming its jobs `RUN_ID-N`.
fn remote_settings(
    config: &Config,
    provider: &str,
    provider_config: &ProviderConfig,
    model: String,
    run_id: &str,
) -> Result<RemoteSettings, Failure> {
    let api = GeminiBatch::from_config(provider, provider_config, &config.batch).map_err(|e| {
        Failure::usage(format!(
            "provider `{provider}` (Batch API): {}",
            e.message()
        ))
    })?;
    let batch = &config.batch;
    Ok(RemoteSettings {
        api: std::sync::Arc::new(api),
        provider: provider.to_owned(),
        model,
        poll_interval: batch.poll_interval(),
        max_poll_interval: batch.max_poll_interval(),
        job_size: batch.job_size(),
        prices: config.price_table(),
        run_id: run_id.to_owned(),
    })
}

/// A prefix for this run's batch job display names that no other run shares: the start time
/// in milliseconds and the process id, in base 36.
fn run_id() -> String {
    fn base36(mut n: u128) -> String {
        let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
        let mut out = Vec::new();
        loop {
            out.push(digits[(n % 36) as usize]);
            n /= 36;
            if n == 0 {
                break;
            }
        }
        out.reverse();
        String::from_utf8_lossy(&out).into_owned()
    }
    let millis = u128::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or_default();
    format!(
        "imagegate-{}-{}",
        base36(millis),
        base36(u128::from(std::process::id()))
    )
}

/// Exit 1 when input lines were skipped, so a script sees that a prompt was dropped.
fn skipped_lines_fail(input: &Path, malformed: &[Malformed]) -> Result<(), Failure> {
    if malformed.is_empty() {
        Ok(())
    } else {
        Err(Failure::io(format!(
            "{} line(s) of {} were skipped (see above); fix them and run the same command \
             again: finished images are kept",
            malformed.len(),
            input.display()
        )))
    }
}

/// A route's targets and their pools, resolved from the configuration alone.
fn route_pools(config: &Config, route: &str) -> Result<Vec<PlannedTarget>, Failure> {
    let mut pools = Vec::new();
    let Some(route_config) = config.routes.get(route) else {
        return Ok(pools);
    };
    for entry in &route_config.targets {
        let (name, model) = split_target(entry);
        let model = model.map(str::to_owned);
        let provider_config = config
            .providers
            .get(name)
            .cloned()
            .unwrap_or_else(ProviderConfig::default);
        let model = model
            .or_else(|| provider_config.model.clone())
            .or_else(|| {
                provider_config
                    .kind_for(name)
                    .map(|kind| kind.default_model().to_owned())
            })
            .unwrap_or_default();
        pools.extend(
            pool_for(name, &provider_config, &model)?.map(|pool| PlannedTarget { pool, model }),
        );
    }
    Ok(pools)
}

/// The command line that resumes this run: the same one.
fn resume_command() -> String {
    std::env::args()
        .map(|arg| {
            if arg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:=@".contains(c))
            {
                arg
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

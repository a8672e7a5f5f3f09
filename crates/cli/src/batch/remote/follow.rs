//! Following a created batch job: polling it to its end, then writing its results exactly as
//! interactive images are written.

use std::collections::BTreeSet;

use imagegate_core::{Error, GenerateRequest};

use super::{Ctx, Finished, io_failed, sleep_or_stop, transient};
use crate::batch::api::{RemoteJob, RemoteResult, RemoteState};
use crate::batch::journal::{ImageKey, Record};
use crate::batch::runner::{failure, failure_from_error, write_image};

/// Polls the created job `job_name` to its end and writes its results.
pub(super) async fn follow(
    ctx: &Ctx,
    display: String,
    model: String,
    keys: Vec<ImageKey>,
    job_name: &str,
    reattached: bool,
) -> Finished {
    ctx.summarise(&display, Some(job_name), "pending", keys.len());
    let job = match poll(ctx, &display, job_name, keys.len()).await {
        Polled::Done(job) => job,
        Polled::Stopped => {
            return Finished {
                stopped: keys,
                model,
                ..Finished::default()
            };
        }
        Polled::Refused(error) => {
            return ctx.fail_all(&keys, |job| {
                failure(
                    job,
                    "batch_unreachable",
                    format!(
                        "cannot poll batch job {display} ({job_name}): {}",
                        error.message()
                    ),
                    &format!(
                        "{}; then run the same command again: the job is re-attached, nothing \
                         is sent again",
                        error.advice()
                    ),
                )
            });
        }
        Polled::Lost(error) => {
            // The server no longer has it (deleted): nothing of it can arrive.
            let _ = ctx.journal(Record::BatchEnded {
                batch: display.clone(),
                state: "lost".to_owned(),
            });
            ctx.shared.progress.line(&format!(
                "batch job {display} ({job_name}) is gone: {}",
                error.message()
            ));
            ctx.summarise(&display, Some(job_name), "lost", keys.len());
            return Finished {
                unfinished: keys,
                model,
                ..Finished::default()
            };
        }
    };
    ctx.summarise(&display, Some(job_name), job.state.word(), keys.len());
    if job.state != RemoteState::Succeeded {
        if let Err(e) = ctx.journal(Record::BatchEnded {
            batch: display.clone(),
            state: job.state.word().to_owned(),
        }) {
            return io_failed(ctx, &keys, e);
        }
        ctx.shared.progress.line(&format!(
            "batch job {display} ({job_name}) {}: its {} image(s) without a result are sent \
             again in a new job",
            job.state.word(),
            keys.len()
        ));
        return Finished {
            unfinished: keys,
            model,
            ..Finished::default()
        };
    }
    let results = loop {
        // Fetching only reads (the results stay at the server): Ctrl-C abandons it at once.
        let mut stop = ctx.shared.stop.clone();
        let fetched = tokio::select! {
            fetched = ctx.settings.api.results(&job) => fetched,
            _ = stop.wait_for(|n| *n > 0) => {
                return Finished {
                    stopped: keys,
                    model,
                    ..Finished::default()
                };
            }
        };
        match fetched {
            Ok(results) => break results,
            Err(error) => {
                if ctx.stopping() || !transient(&error) {
                    if ctx.stopping() {
                        return Finished {
                            stopped: keys,
                            model,
                            ..Finished::default()
                        };
                    }
                    return ctx.fail_all(&keys, |job| {
                        failure(
                            job,
                            "batch_results",
                            format!(
                                "cannot fetch the results of batch job {display}: {}",
                                error.message()
                            ),
                            "run the same command again: the results are fetched again (free)",
                        )
                    });
                }
                ctx.shared.progress.line(&format!(
                    "fetching the results of {display} failed ({}); trying again",
                    error.message()
                ));
                sleep_or_stop(ctx, ctx.settings.poll_interval).await;
            }
        }
    };
    let mut finished = write_results(ctx, &display, &model, &keys, results, reattached);
    if finished.stopped.is_empty()
        && let Err(e) = ctx.journal(Record::BatchEnded {
            batch: display.clone(),
            state: "succeeded".to_owned(),
        })
    {
        ctx.shared.progress.line(&e);
    }
    finished.model = model;
    finished
}

/// How polling a job ended.
enum Polled {
    Done(RemoteJob),
    Stopped,
    /// A refusal polling again cannot cure (a revoked key, say): the job stays live in the
    /// journal, so a rerun re-attaches once it is fixed.
    Refused(Error),
    Lost(Error),
}

/// Polls `name` until it is over, waiting `poll_interval` first and half as long again
/// after each poll, up to `max_poll_interval`.
async fn poll(ctx: &Ctx, display: &str, name: &str, images: usize) -> Polled {
    let mut wait = ctx.settings.poll_interval;
    let mut last: Option<(RemoteState, u64)> = None;
    loop {
        if ctx.stopping() {
            return Polled::Stopped;
        }
        // A poll only reads: Ctrl-C abandons one in flight at once.
        let mut stop = ctx.shared.stop.clone();
        let polled = tokio::select! {
            polled = ctx.settings.api.get(name) => polled,
            _ = stop.wait_for(|n| *n > 0) => return Polled::Stopped,
        };
        match polled {
            Ok(job) => {
                if last != Some((job.state, job.finished)) {
                    last = Some((job.state, job.finished));
                    ctx.shared.progress.batch(
                        display,
                        job.state.word(),
                        job.finished,
                        job.total.max(images as u64),
                    );
                    ctx.summarise(display, Some(name), job.state.word(), images);
                }
                if job.state.is_terminal() {
                    return Polled::Done(job);
                }
            }
            Err(error) if error.http_status() == Some(404) => return Polled::Lost(error),
            Err(error) if !transient(&error) => return Polled::Refused(error),
            Err(error) => {
                tracing::info!(error = %error.message(), "polling {name} failed; polling on");
            }
        }
        if sleep_or_stop(ctx, wait).await {
            return Polled::Stopped;
        }
        wait = wait.mul_f64(1.5).min(ctx.settings.max_poll_interval);
    }
}

/// Writes every result of a finished job that is one of `keys`, exactly as an interactive
/// image is written.
fn write_results(
    ctx: &Ctx,
    display: &str,
    model: &str,
    keys: &[ImageKey],
    results: Vec<RemoteResult>,
    reattached: bool,
) -> Finished {
    let wanted: BTreeSet<&ImageKey> = keys.iter().collect();
    let mut finished = Finished::default();
    let mut seen: BTreeSet<ImageKey> = BTreeSet::new();
    let target = format!("{} ({model}) via batch", ctx.settings.provider);
    for result in results {
        let Some(key) = ImageKey::from_wire(&result.key) else {
            tracing::info!(key = %result.key, "a result with a key that is not ours; ignored");
            continue;
        };
        if !wanted.contains(&key) || !seen.insert(key.clone()) {
            continue;
        }
        let Some(job) = ctx.jobs.get(&key.job) else {
            continue;
        };
        let response = match result.outcome {
            Ok(response) => response,
            Err(error) => {
                finished
                    .failed
                    .push((key.clone(), failure_from_error(job, &error)));
                continue;
            }
        };
        let Some(image) = response.images.first() else {
            finished.failed.push((
                key.clone(),
                failure(
                    job,
                    "no_image",
                    "the batch result holds no image and no error".to_owned(),
                    "try again, or change the prompt",
                ),
            ));
            continue;
        };
        let mut request = GenerateRequest::new(job.prompt.clone());
        if let Some(size) = job.size {
            request = request.with_size(size);
        }
        let cost = ctx.price(&request, model);
        // A job an earlier run re-attached to may have had this image renamed into place
        // just before that run died (no `written` record yet): adopted, not written twice.
        match write_image(
            &ctx.shared,
            job,
            key.image,
            image,
            &target,
            cost,
            reattached,
        ) {
            Ok(()) => {
                if let Ok(mut summary) = ctx.shared.summary.lock() {
                    summary.images_via_batch += 1;
                    summary.batch_cost_usd += cost;
                }
                finished.written.push(key);
            }
            Err(failed) => finished.failed.push((key, failed)),
        }
    }
    for key in keys {
        if !seen.contains(key)
            && let Some(job) = ctx.jobs.get(&key.job)
        {
            finished.failed.push((
                key.clone(),
                failure(
                    job,
                    "no_result",
                    format!("batch job {display} finished without a result for this image"),
                    "run the same command again to send it again",
                ),
            ));
        }
    }
    finished
}

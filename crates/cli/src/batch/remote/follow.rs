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
    // Each result is written as it is read; a fetch cut short is fetched again, and the
    // results already taken are skipped.
    let mut writer = Writer::new(ctx, &display, &model, &keys, reattached);
    loop {
        // Fetching only reads (the results stay at the server): Ctrl-C abandons it at once.
        let mut stop = ctx.shared.stop.clone();
        let fetched = {
            let mut take = |result| writer.take(result);
            tokio::select! {
                fetched = ctx.settings.api.results(&job, &mut take) => Some(fetched),
                _ = stop.wait_for(|n| *n > 0) => None,
            }
        };
        let Some(fetched) = fetched else {
            return writer.stopped(&keys);
        };
        match fetched {
            Ok(_) => break,
            Err(error) => {
                if ctx.stopping() {
                    return writer.stopped(&keys);
                }
                if !transient(&error) {
                    let mut finished = writer.finished;
                    let written: BTreeSet<&ImageKey> = finished.written.iter().collect();
                    let failed_keys: BTreeSet<ImageKey> =
                        finished.failed.iter().map(|(k, _)| k.clone()).collect();
                    let rest: Vec<ImageKey> = keys
                        .iter()
                        .filter(|k| !written.contains(k) && !failed_keys.contains(*k))
                        .cloned()
                        .collect();
                    let mut more = ctx.fail_all(&rest, |job| {
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
                    finished.failed.append(&mut more.failed);
                    finished.model = model;
                    return finished;
                }
                ctx.shared.progress.line(&format!(
                    "fetching the results of {display} failed ({}); trying again",
                    error.message()
                ));
                if sleep_or_stop(ctx, ctx.settings.poll_interval).await {
                    return writer.stopped(&keys);
                }
            }
        }
    }
    let mut finished = writer.finish(&keys);
    if let Err(e) = ctx.journal(Record::BatchEnded {
        batch: display.clone(),
        state: "succeeded".to_owned(),
    }) {
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

/// Writes the results of a finished job as they arrive, exactly as interactive images are
/// written, and keeps count of what became of each of its images.
struct Writer<'a> {
    ctx: &'a Ctx,
    display: String,
    model: String,
    target: String,
    wanted: BTreeSet<ImageKey>,
    /// Keys whose result was taken (written or failed): a second copy is skipped.
    seen: BTreeSet<ImageKey>,
    reattached: bool,
    finished: Finished,
}

impl<'a> Writer<'a> {
    fn new(ctx: &'a Ctx, display: &str, model: &str, keys: &[ImageKey], reattached: bool) -> Self {
        Writer {
            ctx,
            display: display.to_owned(),
            model: model.to_owned(),
            target: format!("{} ({model}, Batch API)", ctx.settings.provider),
            wanted: keys.iter().cloned().collect(),
            seen: BTreeSet::new(),
            reattached,
            finished: Finished::default(),
        }
    }

    /// One result: its image written (or its error kept), if it is one of ours not yet taken.
    fn take(&mut self, result: RemoteResult) {
        let ctx = self.ctx;
        let Some(key) = ImageKey::from_wire(&result.key) else {
            tracing::info!(key = %result.key, "a result with a key that is not ours; ignored");
            return;
        };
        if !self.wanted.contains(&key) || self.seen.contains(&key) {
            return;
        }
        let Some(job) = ctx.jobs.get(&key.job) else {
            return;
        };
        self.seen.insert(key.clone());
        let response = match result.outcome {
            Ok(response) => response,
            Err(error) => {
                self.finished
                    .failed
                    .push((key, failure_from_error(job, &error)));
                return;
            }
        };
        let Some(image) = response.images.first() else {
            self.finished.failed.push((
                key,
                failure(
                    job,
                    "no_image",
                    "the batch result holds no image and no error".to_owned(),
                    "try again, or change the prompt",
                ),
            ));
            return;
        };
        let mut request = GenerateRequest::new(job.prompt.clone());
        if let Some(size) = job.size {
            request = request.with_size(size);
        }
        let cost = ctx.price(&request, &self.model);
        // A job an earlier run re-attached to may have had this image renamed into place
        // just before that run died (no `written` record yet): adopted, not written twice.
        match write_image(
            &ctx.shared,
            job,
            key.image,
            image,
            &self.target,
            cost,
            self.reattached,
        ) {
            Ok(()) => {
                if let Ok(mut summary) = ctx.shared.summary.lock() {
                    summary.images_via_batch += 1;
                    summary.batch_cost_usd += cost;
                }
                self.finished.written.push(key);
            }
            Err(failed) => self.finished.failed.push((key, failed)),
        }
    }

    /// Ctrl-C came: what was taken stays; the other images wait for the rerun.
    fn stopped(self, keys: &[ImageKey]) -> Finished {
        let mut finished = self.finished;
        finished.stopped = keys
            .iter()
            .filter(|k| !self.seen.contains(*k))
            .cloned()
            .collect();
        finished.model = self.model;
        finished
    }

    /// Every result read: an image without one failed (`no_result`).
    fn finish(self, keys: &[ImageKey]) -> Finished {
        let mut finished = self.finished;
        for key in keys {
            if !self.seen.contains(key)
                && let Some(job) = self.ctx.jobs.get(&key.job)
            {
                finished.failed.push((
                    key.clone(),
                    failure(
                        job,
                        "no_result",
                        format!(
                            "batch job {} finished without a result for this image",
                            self.display
                        ),
                        "run the same command again to send it again",
                    ),
                ));
            }
        }
        finished
    }
}

//! Creating a batch job: its requests built as an interactive call's, `--max-cost` checked, the
//! plan journaled BEFORE the create, a create answered 429 or 5xx tried again under the same
//! display name (an answer proves no job was made), a create with no answer looked for by its
//! display name.

use std::collections::HashMap;

use imagegate_core::{Error, ErrorKind, GenerateRequest};

use super::{Ctx, Finished, io_failed, sleep_or_stop, transient};
use crate::batch::journal::{ImageKey, Record};
use crate::batch::runner::{failure, failure_from_error, request_for};
use crate::batch::summary::FailedJob;

/// How often a create answered 429 or 5xx is tried again (same display name: an answer
/// proves no job was made) before its images fail for this run.
const CREATE_ATTEMPTS: u32 = 5;

/// Builds the requests of `keys`: the same request an interactive call would send.
async fn requests(
    ctx: &Ctx,
    keys: Vec<ImageKey>,
) -> (Vec<(ImageKey, GenerateRequest)>, Vec<(ImageKey, FailedJob)>) {
    let mut built: HashMap<String, Result<GenerateRequest, FailedJob>> = HashMap::new();
    let mut ok = Vec::with_capacity(keys.len());
    let mut failed = Vec::new();
    for key in keys {
        let Some(job) = ctx.jobs.get(&key.job) else {
            continue;
        };
        if !built.contains_key(&key.job) {
            let request = request_for(&ctx.shared, job).await;
            built.insert(key.job.clone(), request);
        }
        match built.get(&key.job) {
            Some(Ok(base)) => {
                let mut call = base.clone().with_count(1);
                if let Some(seed) = job.seed {
                    call = call.with_seed(seed.wrapping_add(u64::from(key.image)));
                }
                ok.push((key, call));
            }
            Some(Err(why)) => failed.push((key, why.clone())),
            None => {}
        }
    }
    (ok, failed)
}

/// Whether an error from create proves no job was made: the server answered with an error
/// status. A success status whose body was cut off proves the opposite: the job was made.
fn answered(error: &Error) -> bool {
    error
        .http_status()
        .is_some_and(|status| !(200..300).contains(&status))
        || matches!(
            error.kind(),
            ErrorKind::Connect | ErrorKind::InvalidRequest | ErrorKind::ConfigInvalid
        )
}

/// A job the server made.
pub(super) struct Created {
    pub(super) display: String,
    pub(super) model: String,
    pub(super) keys: Vec<ImageKey>,
    pub(super) name: String,
    /// Images of the plan that could not be asked for.
    pub(super) failed: Vec<(ImageKey, FailedJob)>,
}

/// Plans, journals and creates a job for `keys`: its display name, model, images and server
/// name; or how its images ended when no job was made.
pub(super) async fn create(
    ctx: &Ctx,
    model: String,
    keys: Vec<ImageKey>,
) -> Result<Created, Finished> {
    let (requests, failed) = requests(ctx, keys).await;
    let mut finished = Finished {
        failed,
        model: model.clone(),
        ..Finished::default()
    };
    // `--max-cost`: what the router spent or holds, plus what batch jobs hold, plus this job.
    let mut requests = requests;
    if let Some(max) = ctx.shared.settings.max_cost_usd {
        let mut committed = match ctx.committed.lock() {
            Ok(committed) => committed,
            Err(_) => return Err(finished),
        };
        let mut fits = 0;
        let mut total = ctx.shared.backend.router.spent_usd() + *committed;
        for (_, request) in &requests {
            let price = ctx.price(request, &model);
            if total + price > max + 1e-9 {
                break;
            }
            total += price;
            fits += 1;
        }
        for (key, _) in requests.split_off(fits) {
            if let Some(job) = ctx.jobs.get(&key.job) {
                let failed = failure(
                    job,
                    "not_run",
                    format!(
                        "not run: its image would pass --max-cost ${max:.3} (${:.3} spent or \
                         committed to batch jobs and calls in flight)",
                        total
                    ),
                    "raise --max-cost and run the same command again; finished images are kept",
                );
                finished.failed.push((key, failed));
            }
        }
        *committed = total - ctx.shared.backend.router.spent_usd();
    } else if let Ok(mut committed) = ctx.committed.lock() {
        *committed += requests
            .iter()
            .map(|(_, request)| ctx.price(request, &model))
            .sum::<f64>();
    }
    if requests.is_empty() {
        return Err(finished);
    }
    let keys: Vec<ImageKey> = requests.iter().map(|(key, _)| key.clone()).collect();
    let display = ctx.display_name();
    // Durable BEFORE the create: a run killed during it finds the job by this name.
    if let Err(e) = ctx.journal(Record::BatchPlanned {
        batch: display.clone(),
        provider: ctx.settings.provider.clone(),
        model: model.clone(),
        images: keys.clone(),
    }) {
        let mut out = io_failed(ctx, &keys, e);
        out.failed.append(&mut finished.failed);
        return Err(out);
    }
    let wire: Vec<(String, GenerateRequest)> = requests
        .into_iter()
        .map(|(key, request)| (key.wire(), request))
        .collect();
    ctx.summarise(&display, None, "creating", keys.len());
    ctx.shared
        .progress
        .batch(&display, "creating", 0, keys.len() as u64);
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        match ctx.settings.api.create(&model, &display, &wire).await {
            Ok(job) => break Ok(job),
            Err(error)
                if answered(&error)
                    && transient(&error)
                    && attempt < CREATE_ATTEMPTS
                    && !ctx.stopping() =>
            {
                // A 429 or 5xx answer: no job was made, so the same display name is safe.
                let wait = error
                    .retry_after()
                    .unwrap_or(ctx.settings.poll_interval)
                    .min(ctx.settings.max_poll_interval);
                ctx.shared.progress.line(&format!(
                    "creating batch job {display} was refused ({}: {}); trying again in {}",
                    kind_word(&error),
                    error.message(),
                    imagegate_core::human_duration(wait)
                ));
                sleep_or_stop(ctx, wait).await;
            }
            Err(error) => break Err(error),
        }
    };
    let created = match outcome {
        Ok(job) => Ok(job),
        Err(error) if answered(&error) => Err(error),
        // No answer (a timeout, a cut connection): the server may have made the job.
        Err(error) => match ctx.settings.api.find(&display).await {
            Ok(Some(job)) => Ok(job),
            Ok(None) => Err(error),
            Err(_) => {
                // Cannot tell: the journal keeps the job live, so a rerun looks again
                // before sending anything.
                let mut out = ctx.fail_all(&keys, |job| {
                    failure(
                        job,
                        "batch_unreachable",
                        format!(
                            "batch job {display} may or may not have been created: {}",
                            error.message()
                        ),
                        "run the same command again: the job is looked for before anything \
                         is sent",
                    )
                });
                out.failed.append(&mut finished.failed);
                return Err(out);
            }
        },
    };
    match created {
        Ok(job) => {
            if let Err(e) = ctx.journal(Record::BatchCreated {
                batch: display.clone(),
                name: job.name.clone(),
            }) {
                let mut out = io_failed(ctx, &keys, e);
                out.failed.append(&mut finished.failed);
                return Err(out);
            }
            ctx.shared.progress.line(&format!(
                "batch job {display} created as {} ({} image(s), model {model})",
                job.name,
                keys.len()
            ));
            // Images that could not even be asked for (an unreadable reference) fail with
            // the job's outcome; the others wait for the job.
            Ok(Created {
                display,
                model,
                keys,
                name: job.name,
                failed: std::mem::take(&mut finished.failed),
            })
        }
        Err(error) => {
            let _ = ctx.journal(Record::BatchEnded {
                batch: display.clone(),
                state: "not_created".to_owned(),
            });
            ctx.summarise(&display, None, "not_created", keys.len());
            if let Ok(mut committed) = ctx.committed.lock() {
                *committed = (*committed
                    - wire
                        .iter()
                        .map(|(_, request)| ctx.price(request, &model))
                        .sum::<f64>())
                .max(0.0);
            }
            let mut out = ctx.fail_all(&keys, |job| failure_from_error(job, &error));
            out.failed.append(&mut finished.failed);
            Err(out)
        }
    }
}

pub(super) fn kind_word(error: &Error) -> String {
    serde_json::to_value(error.kind())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{:?}", error.kind()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_error_status_proves_that_create_made_no_job() {
        let refused = Error::new(ErrorKind::RateLimited, "quota").with_http_status(429);
        let failed = Error::new(ErrorKind::Unavailable, "backend").with_http_status(503);
        assert!(answered(&refused) && answered(&failed));
        // Cut off after `200 OK`: the job was made; a reset before any status: it may be.
        let cut =
            Error::new(ErrorKind::Unavailable, "the answer was cut off").with_http_status(200);
        let reset = Error::new(ErrorKind::Unavailable, "the request failed in transit");
        assert!(!answered(&cut));
        assert!(!answered(&reset));
    }
}

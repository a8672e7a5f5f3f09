//! [`Ctx`]: what one request has learned so far, and the error for "no target can serve it".

use std::time::Duration;

use imagegate_core::{Attempt, Error, ErrorKind};
use jiff::Timestamp;

use crate::budget::Refusal;
use crate::events::BudgetScope;
use crate::options::MaxWait;

/// What one request has learned so far.
pub(crate) struct Ctx<'a> {
    pub(crate) id: u64,
    pub(crate) route_name: &'a str,
    pub(crate) deadline: Option<Timestamp>,
    /// How long the request may wait for capacity (see [`MaxWait`]).
    pub(crate) max_wait: MaxWait,
    /// Route positions left for the rest of this request (retries exhausted, too large, ...).
    pub(crate) excluded: Vec<bool>,
    /// Unavailable/connect (and timeout) retries per route position.
    pub(crate) retries: Vec<u32>,
    /// 429s per route position.
    pub(crate) rate_limited: Vec<u32>,
    /// Budget refusals already reported, per route position.
    pub(crate) budget_noted: Vec<bool>,
    /// A retry of one target after a backoff: (route position, not before, retry number).
    pub(crate) sticky: Option<(usize, Timestamp, u32)>,
    /// The latest error an attempt of this request got.
    pub(crate) last_error: Option<Error>,
    /// The error that disabled a target the request could not use.
    pub(crate) disabled: Option<Error>,
    /// The budget refusal that made a target unusable.
    pub(crate) budget: Option<(String, Refusal)>,
    /// Why targets did not fit the request.
    pub(crate) misfits: Vec<String>,
    /// When the current wait began (the request's start, or the end of the last attempt).
    pub(crate) wait_from: Timestamp,
    /// When the request started (its rank in the waiting room without a deadline, and the
    /// start of a background request's aging).
    pub(crate) start: Timestamp,
    /// What a call to the quickest target still open is expected to take (zero when not
    /// known): capacity later than the deadline minus this comes too late.
    pub(crate) call_takes: Duration,
    pub(crate) attempts: Vec<Attempt>,
    /// The caller's signal to stop waiting ([`RequestOptions::stop`](crate::RequestOptions)).
    pub(crate) stop: Option<tokio_util::sync::CancellationToken>,
}

impl<'a> Ctx<'a> {
    /// A fresh request over a route of `n` targets.
    pub(crate) fn new(
        id: u64,
        route_name: &'a str,
        n: usize,
        deadline: Option<Timestamp>,
        max_wait: MaxWait,
        start: Timestamp,
    ) -> Self {
        Ctx {
            id,
            route_name,
            deadline,
            max_wait,
            excluded: vec![false; n],
            retries: vec![0; n],
            rate_limited: vec![0; n],
            budget_noted: vec![false; n],
            sticky: None,
            last_error: None,
            disabled: None,
            budget: None,
            misfits: Vec::new(),
            wait_from: start,
            start,
            call_takes: Duration::ZERO,
            attempts: Vec::new(),
            stop: None,
        }
    }

    /// `Err` when the caller has stopped waiting for this request: checked before every
    /// upstream call, so nothing is sent for a request its caller gave up on.
    pub(crate) fn check_stop(&self) -> Result<(), Error> {
        match &self.stop {
            Some(stop) if stop.is_cancelled() => Err(stopped()),
            _ => Ok(()),
        }
    }

    /// `fut`, or `Err` as soon as the caller stops waiting.
    pub(crate) async fn unless_stopped<T>(
        &self,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T, Error> {
        match &self.stop {
            None => Ok(fut.await),
            Some(stop) => tokio::select! {
                value = fut => Ok(value),
                () = stop.cancelled() => Err(stopped()),
            },
        }
    }

    pub(crate) fn misfit(&mut self, why: String) {
        if !self.misfits.contains(&why) {
            self.misfits.push(why);
        }
    }

    /// The error for "no target can ever serve this call".
    pub(crate) fn no_target(&mut self) -> Error {
        if let Some(e) = self.last_error.take() {
            return e;
        }
        if let Some(e) = self.disabled.take() {
            return e;
        }
        if let Some((target, refusal)) = self.budget.take() {
            let scope = match refusal.scope {
                BudgetScope::Run => "per-run",
                BudgetScope::Day => "per-day",
            };
            return Error::config(format!(
                "the {scope} budget of ${:.4} is reached (${:.4} spent): the next call \
                 (to {target}) would pass it, so nothing was sent; raise the budget or wait",
                refusal.limit, refusal.spent
            ))
            .with_provider("router");
        }
        if !self.misfits.is_empty() {
            return Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "no target of route `{}` can serve this request: {}",
                    self.route_name,
                    self.misfits.join("; ")
                ),
            )
            .with_provider("router");
        }
        Error::config(format!("route `{}` has no usable target", self.route_name))
            .with_provider("router")
    }
}

/// The error of a request its caller stopped waiting for before it was sent.
fn stopped() -> Error {
    Error::new(
        imagegate_core::ErrorKind::Unavailable,
        "stopped before it was sent: the caller stopped waiting (shutting down)",
    )
}

//! The quota gate `generate` passes through before every upstream call.
//!
//! It asks the shared quota state whether the provider's pool admits the call: go now, wait for
//! a per-minute window (and say so), or stop without calling when the pool is known to be
//! exhausted or unbilled. After the call it records what happened, so the next run (and
//! `imagegate quota`) knows. Routing across several targets is the router's job; this is the
//! single-provider path.

use std::time::Duration;

use imagegate_core::quota::{
    Admission, Exhausted, FileQuotaStore, PoolId, Reservation, TokenEstimator, Usage,
};
use imagegate_core::{
    Error, ErrorKind, GenerateRequest, GenerateResponse, QuotaFacts, human_duration,
};
use jiff::Timestamp;

use crate::config::{Config, ProviderConfig};
use crate::failure::Failure;
use crate::state::{open_store, pool_for};

/// One provider's pool in the shared quota state.
#[derive(Debug)]
pub(crate) struct QuotaGate {
    store: FileQuotaStore,
    pool: PoolId,
    estimator: TokenEstimator,
}

impl QuotaGate {
    /// The gate for `model` on the provider `name`, or `None` when there is no state directory.
    ///
    /// # Errors
    /// [`Failure::Usage`] for a damaged state file or a quota configuration that does not
    /// resolve.
    pub(crate) fn open(
        config: &Config,
        name: &str,
        provider: &ProviderConfig,
        model: &str,
    ) -> Result<Option<Self>, Failure> {
        let Some(pool) = pool_for(name, provider, model)? else {
            return Ok(None);
        };
        let Some(store) = open_store(config)? else {
            return Ok(None);
        };
        let id = pool.id.clone();
        store.configure_now(pool);
        Ok(Some(QuotaGate {
            store,
            pool: id,
            estimator: provider.quota_or_default().token_estimator(),
        }))
    }

    /// Waits until the pool admits `call`, then returns the reservation.
    ///
    /// # Errors
    /// [`Failure::Upstream`] (exit 1, with advice) when the pool is exhausted or needs billing:
    /// the upstream is not called, since it would only refuse again.
    pub(crate) async fn admit(
        &self,
        call: &GenerateRequest,
        model: &str,
        json: bool,
    ) -> Result<Option<Reservation>, Failure> {
        let cost = self.estimator.estimate(call, model);
        loop {
            let now = Timestamp::now();
            let admission = match self.store.admit_now(&self.pool, cost, now) {
                Ok(admission) => admission,
                Err(e) => {
                    // The state is an aid, not a gate keeper of last resort: go without it.
                    tracing::warn!(error = %e, "quota state unavailable; sending unthrottled");
                    return Ok(None);
                }
            };
            match admission {
                Admission::Go(reservation) => return Ok(Some(reservation)),
                Admission::WaitUntil { at, dimension } => {
                    let wait = Duration::try_from(at.duration_since(now)).unwrap_or_default();
                    let why =
                        dimension.map_or_else(|| "a requested delay".to_owned(), |d| d.to_string());
                    eprintln!(
                        "imagegate: waiting {}: {} {why}",
                        human_duration(wait),
                        self.pool
                    );
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                }
                Admission::ExhaustedUntil { at, reason } => {
                    return Err(Failure::Upstream {
                        error: self.exhausted(at, reason),
                        json,
                    });
                }
            }
        }
    }

    /// The error for a pool that cannot serve this request, with what the state file knows.
    fn exhausted(&self, at: Option<Timestamp>, reason: Exhausted) -> Error {
        let pool = &self.pool;
        let lift = format!(
            "recorded in {}; `imagegate quota --clear-blocks` lifts it",
            self.store.path().display()
        );
        let mut facts = QuotaFacts::default();
        facts.reset_at = at;
        facts.model = Some(pool.pool.clone());
        let error = match reason {
            Exhausted::Quota { dimension } => {
                facts.dimension = Some(dimension);
                let until = at.map_or_else(String::new, |t| format!(" until {t}"));
                Error::new(
                    ErrorKind::QuotaExhausted,
                    format!("pool {pool} has no {dimension} quota left{until} ({lift})"),
                )
            }
            Exhausted::BillingRequired { advice } => Error::new(
                ErrorKind::BillingRequired,
                format!("pool {pool} was refused for billing earlier ({lift}): {advice}"),
            ),
            Exhausted::TooLarge {
                dimension,
                cost,
                limit,
            } => Error::new(
                ErrorKind::InvalidRequest,
                format!("this request needs {cost} of {dimension} but pool {pool} allows {limit}"),
            ),
            other => Error::new(
                ErrorKind::QuotaExhausted,
                format!("pool {pool} cannot serve this request: {other:?} ({lift})"),
            ),
        };
        let error = error.with_provider(pool.provider.clone()).with_quota(facts);
        match at {
            Some(at) => {
                let delay = at.duration_since(Timestamp::now());
                error.with_retry_after(Duration::try_from(delay).unwrap_or_default())
            }
            None => error,
        }
    }

    /// Records the call's outcome: real usage on success, and the limits its rate-limit
    /// headers state (`GenerateResponse::rate_limits`); on an error, what it teaches, and the
    /// reservation given back (a refused request is not counted by the upstream).
    pub(crate) fn record(
        &self,
        reservation: Option<Reservation>,
        outcome: &Result<GenerateResponse, Error>,
    ) {
        let now = Timestamp::now();
        let result = match (reservation, outcome) {
            (Some(reservation), Ok(response)) => self
                .store
                .settle_now(
                    reservation,
                    Usage::reported(response.images.len(), response.usage.as_ref()),
                )
                .and_then(|()| {
                    response.rate_limits.iter().try_for_each(|snapshot| {
                        self.store.observe_success_now(&self.pool, snapshot, now)
                    })
                }),
            (reservation, Err(error)) => self
                .store
                .observe_error_now(&self.pool, error, now)
                .and_then(|()| match reservation {
                    Some(reservation) => self.store.release_now(reservation),
                    None => Ok(()),
                }),
            (None, Ok(_)) => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not record the call in the quota state");
        }
    }
}

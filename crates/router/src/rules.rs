//! The decision rules: what to do after an upstream error, as one pure function of the error's
//! kind, its retry hint, the policy and what this request has counted of the target so far.
//!
//! Nothing here reads a clock, a store or a random source: [`decide`] is a table, printed in
//! `docs/router.md` ("The decision table"), and the tests below check every row. The caller
//! (`send`) applies the action: it holds pools, disables targets, draws the jitter.

use std::time::Duration;

use imagegate_core::ErrorKind;

use crate::policy::Policy;

/// What this request has counted of one target, the error being decided on included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// `rate_limited` errors from the target in this request.
    pub(crate) rate_limited: u32,
    /// Retryable failures (`unavailable`, `connect`, and `timeout` when retried) from the
    /// target in this request.
    pub(crate) failures: u32,
}

/// How long to wait before retrying the same target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delay {
    /// The upstream's own delay (already capped to what is believable).
    Upstream(Duration),
    /// Full-jitter backoff, step `n` (from 0).
    Backoff(u32),
}

/// What to do about one error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// A per-minute refusal: the store holds the pool for the upstream's delay; decide again
    /// (another target now, or this one when its pool frees). `back_off`: the 429 gave no
    /// delay, so the target is avoided for a jittered backoff. `leave`: the target refused
    /// more often than the policy accepts, so this request stops asking it.
    Throttle {
        /// No upstream delay: back the target off with jitter.
        back_off: bool,
        /// Leave the target for the rest of this request.
        leave: bool,
    },
    /// A daily quota is used up: the pool is parked until its reset; decide again.
    Park,
    /// The target can never serve until a person acts (billing, key, region, model): disable
    /// it; decide again.
    Disable,
    /// Retry the same target after `delay`; `retry` numbers the retry from 1.
    Retry {
        /// How long to wait first.
        delay: Delay,
        /// The retry's number, from 1.
        retry: u32,
    },
    /// Retries used up: leave the target for the rest of this request; decide again.
    Leave,
    /// The request is over: return the error (the request itself is wrong, or a retry could
    /// pay twice).
    Fail,
}

/// The rule for an error of `kind` with the (believable) upstream delay `retry_after`.
pub(crate) fn decide(
    kind: ErrorKind,
    retry_after: Option<Duration>,
    policy: &Policy,
    counts: Counts,
) -> Action {
    match kind {
        ErrorKind::RateLimited => Action::Throttle {
            back_off: retry_after.is_none(),
            leave: counts.rate_limited > policy.rate_limit_retries,
        },
        ErrorKind::QuotaExhausted => Action::Park,
        ErrorKind::BillingRequired
        | ErrorKind::Unauthorized
        | ErrorKind::RegionUnsupported
        | ErrorKind::ModelNotFound => Action::Disable,
        ErrorKind::Unavailable | ErrorKind::Connect => retry(retry_after, policy, counts),
        ErrorKind::Timeout if policy.retry_timeouts => retry(retry_after, policy, counts),
        _ => Action::Fail,
    }
}

/// Bounded retries on the same target (the upstream's delay, else full-jitter backoff), then
/// the next target.
fn retry(retry_after: Option<Duration>, policy: &Policy, counts: Counts) -> Action {
    let retry = counts.failures;
    if retry == 0 || retry > policy.retries {
        return Action::Leave;
    }
    let delay = retry_after.map_or(Delay::Backoff(retry - 1), Delay::Upstream);
    Action::Retry { delay, retry }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S41: Option<Duration> = Some(Duration::from_secs(41));

    fn counts(rate_limited: u32, failures: u32) -> Counts {
        Counts {
            rate_limited,
            failures,
        }
    }

    /// The table in `docs/router.md`, row by row, with the default policy (2 retries, 8
    /// rate-limit retries, timeouts not retried).
    #[test]
    fn the_decision_table() {
        use Action::*;
        use ErrorKind::*;
        let policy = Policy::default();
        let rows: [(ErrorKind, Option<Duration>, Counts, Action); 20] = [
            (RateLimited, S41, counts(1, 0), Throttle { back_off: false, leave: false }),
            (RateLimited, None, counts(1, 0), Throttle { back_off: true, leave: false }),
            (RateLimited, S41, counts(8, 0), Throttle { back_off: false, leave: false }),
            (RateLimited, S41, counts(9, 0), Throttle { back_off: false, leave: true }),
            (QuotaExhausted, None, counts(0, 0), Park),
            (QuotaExhausted, S41, counts(0, 0), Park),
            (BillingRequired, None, counts(0, 0), Disable),
            (Unauthorized, None, counts(0, 0), Disable),
            (RegionUnsupported, None, counts(0, 0), Disable),
            (ModelNotFound, None, counts(0, 0), Disable),
            (Unavailable, None, counts(0, 1), Retry { delay: Delay::Backoff(0), retry: 1 }),
            (Unavailable, None, counts(0, 2), Retry { delay: Delay::Backoff(1), retry: 2 }),
            (Unavailable, S41, counts(0, 1), Retry { delay: Delay::Upstream(Duration::from_secs(41)), retry: 1 }),
            (Unavailable, None, counts(0, 3), Leave),
            (Connect, None, counts(0, 1), Retry { delay: Delay::Backoff(0), retry: 1 }),
            (Connect, None, counts(0, 3), Leave),
            (Timeout, None, counts(0, 1), Fail),
            (InvalidRequest, None, counts(0, 0), Fail),
            (ContentBlocked, None, counts(0, 0), Fail),
            (NoImage, None, counts(0, 0), Fail),
        ];
        for (kind, hint, seen, expected) in rows {
            assert_eq!(
                decide(kind, hint, &policy, seen),
                expected,
                "{kind} {hint:?} {seen:?}"
            );
        }
        for kind in [InvalidResponse, ConfigInvalid, Unexpected] {
            assert_eq!(decide(kind, None, &policy, counts(0, 0)), Fail, "{kind}");
        }
    }

    #[test]
    fn the_policy_moves_the_rows_it_names() {
        let policy = Policy::default()
            .with_retry_timeouts(true)
            .with_retries(0)
            .with_rate_limit_retries(0);
        assert_eq!(
            decide(ErrorKind::Timeout, None, &policy, counts(0, 1)),
            Action::Leave
        );
        let policy = Policy::default().with_retry_timeouts(true);
        assert_eq!(
            decide(ErrorKind::Timeout, None, &policy, counts(0, 1)),
            Action::Retry {
                delay: Delay::Backoff(0),
                retry: 1
            }
        );
        let policy = Policy::default().with_rate_limit_retries(0);
        assert_eq!(
            decide(ErrorKind::RateLimited, S41, &policy, counts(1, 0)),
            Action::Throttle {
                back_off: false,
                leave: true
            }
        );
    }
}

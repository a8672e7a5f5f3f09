//! Waiting for capacity, or failing at once when the wait is not allowed.
//!
//! Before every wait the request checks its deadline and its maximum wait ([`MaxWait`]): a
//! wait either may be taken, and is announced as an [`Event::Throttled`] naming the pool, or
//! the request fails at once with the earliest instant capacity returns (as an instant, in
//! local time and in Pacific time) and the advice. Never a silent wait.

use std::pin::Pin;
use std::time::Duration;

use imagegate_core::clock::{add, span};
use imagegate_core::hints::until;
use imagegate_core::quota::PACIFIC;
use imagegate_core::{
    Error, ErrorKind, Priority, QuotaFacts, human_duration, quota::Dimension, quota::PoolId,
};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::futures::Notified;

use crate::ctx::Ctx;
use crate::events::{Event, ThrottleReason};
use crate::inner::Inner;
use crate::options::MaxWait;

/// How much later a background request wakes than an interactive one waiting for the same
/// instant, so the interactive one takes the capacity first.
const BACKGROUND_LAG: Duration = Duration::from_millis(1);

/// The earliest instant something could be sent, and why.
pub(crate) struct Wake {
    pub(crate) at: Timestamp,
    pub(crate) reason: ThrottleReason,
    /// The instant is a daily reset.
    pub(crate) daily: bool,
    /// The pool that frees then, when one does.
    pub(crate) pool: Option<PoolId>,
    /// The dimension that frees then, when known.
    pub(crate) dimension: Option<Dimension>,
}

/// Keeps the earlier of `best` and `candidate`.
pub(crate) fn earlier(best: &mut Option<Wake>, candidate: Wake) {
    if best.as_ref().is_none_or(|b| candidate.at < b.at) {
        *best = Some(candidate);
    }
}

/// Sleeps on the router's clock until `at`, rounding the wait up to whole milliseconds.
///
/// `Clock::sleep_until` rounds down to milliseconds, so a wait for an instant less than a
/// millisecond away would return at once without the time moving; deciding again would find
/// the same wait and spin. Rounding up guarantees the clock has reached `at` on waking.
///
/// It always sleeps at least a millisecond: a store whose clock runs ahead of ours (a shared
/// store on another machine) can name an instant we already passed, and deciding again at once
/// would find it again.
pub(crate) async fn sleep_until(inner: &Inner, at: Timestamp) {
    let now = inner.clock.now();
    let nanos = (at.as_nanosecond() - now.as_nanosecond()).max(0);
    let millis = u64::try_from((nanos + 999_999) / 1_000_000).unwrap_or(u64::MAX);
    inner
        .clock
        .sleep(Duration::from_millis(millis.max(1)))
        .await;
}

/// What bounded the wait that was refused.
enum Bound {
    /// The deadline, and what a call is expected to take.
    Deadline(Timestamp, Duration),
    MaxWait(MaxWait),
}

/// Waits for the earliest capacity (or a freed concurrency slot), or fails at once when it
/// comes after the deadline, beyond the maximum wait, or never.
pub(crate) async fn wait(
    inner: &Inner,
    ctx: &mut Ctx<'_>,
    priority: Priority,
    wake: Option<Wake>,
    busy: bool,
    freed: Pin<&mut Notified<'_>>,
    now: Timestamp,
) -> imagegate_core::Result<()> {
    let took = ctx.call_takes;
    if wake.is_none() && !busy {
        return Err(ctx.no_target());
    }
    if let Some(deadline) = ctx.deadline
        && deadline <= now
    {
        // Still nothing at the deadline (every target busy, say): done waiting.
        return Err(match &wake {
            Some(w) => capacity_error(ctx, w, &Bound::Deadline(deadline, took), now),
            None => ctx.last_error.take().unwrap_or_else(|| {
                Error::new(
                    ErrorKind::Timeout,
                    format!("every target was busy until the request's deadline {deadline}"),
                )
                .with_provider("router")
            }),
        });
    }
    if let Some(w) = &wake
        && !busy
    {
        // The call must also end by the deadline: capacity that returns later than the
        // deadline minus what a call takes comes too late, and the request fails now, saying
        // when capacity returns, rather than wait to expire.
        if let Some(deadline) = ctx.deadline
            && add(w.at, took) > deadline
        {
            return Err(capacity_error(
                ctx,
                w,
                &Bound::Deadline(deadline, took),
                now,
            ));
        }
        // Measured from when this wait began, not from now: a request that woke for a window
        // and lost the slot (to another request, or another instance sharing the store) waits
        // on within what remains of its maximum wait, never a whole maximum wait again.
        if !ctx.max_wait.allows(span(ctx.wait_from, w.at), w.daily) {
            return Err(capacity_error(ctx, w, &Bound::MaxWait(ctx.max_wait), now));
        }
    }
    let mut at = wake.as_ref().map(|w| w.at);
    if priority == Priority::Background {
        at = at.map(|t| add(t, BACKGROUND_LAG));
    }
    if let Some(deadline) = ctx.deadline {
        at = Some(at.map_or(deadline, |t| t.min(deadline)));
    }
    let reason = match (busy, wake) {
        (true, _) | (false, None) => ThrottleReason::Concurrency,
        (false, Some(w)) => w.reason,
    };
    if let Some(at) = at {
        inner.events.emit(Event::Throttled {
            request: ctx.id,
            wait: span(now, at),
            until: at,
            reason,
        });
    }
    let sleep = async {
        match at {
            Some(at) => sleep_until(inner, at).await,
            None => std::future::pending::<()>().await,
        }
    };
    let waiting = async {
        if busy {
            tokio::select! {
                () = sleep => {}
                () = freed => {}
            }
        } else {
            sleep.await;
        }
    };
    ctx.unless_stopped(waiting).await
}

/// `2026-11-24T08:00:00Z (2026-11-24 09:00 CET here, 2026-11-24 00:00 PST)`: the instant for
/// scripts, local time for the reader, Pacific time because Gemini's day ends there.
pub(crate) fn when(at: Timestamp) -> String {
    let local = at
        .to_zoned(TimeZone::system())
        .strftime("%Y-%m-%d %H:%M %Z");
    let pacific = at.to_zoned(PACIFIC.clone()).strftime("%Y-%m-%d %H:%M %Z");
    format!("{at} ({local} here, {pacific})")
}

/// "No capacity in time": the kind says which (a window or a day), `retry_after` and the
/// message say when capacity returns and which pool frees first; the quota facts of the
/// request's last upstream error of the same kind are kept.
fn capacity_error(ctx: &mut Ctx<'_>, wake: &Wake, bound: &Bound, now: Timestamp) -> Error {
    let kind = if wake.daily {
        ErrorKind::QuotaExhausted
    } else {
        ErrorKind::RateLimited
    };
    let mut quota = match ctx.last_error.take() {
        Some(e) if e.kind() == kind => e.quota().clone(),
        _ => QuotaFacts::default(),
    };
    if wake.daily {
        quota.reset_at = Some(wake.at);
        quota.dimension = Some(wake.dimension.unwrap_or(Dimension::Rpd));
    } else if let Some(dimension) = wake.dimension {
        quota.dimension = Some(dimension);
    }
    let bound = match bound {
        Bound::Deadline(deadline, took) if !took.is_zero() => format!(
            "in time to finish before its deadline {deadline} (a call lately takes {})",
            human_duration(*took)
        ),
        Bound::Deadline(deadline, _) => format!("before its deadline {deadline}"),
        Bound::MaxWait(max) => format!("within {}", max.describe()),
    };
    let what = match (&wake.pool, wake.daily) {
        (Some(pool), true) => format!(
            "pool {pool} has no {} quota left until its reset; ",
            quota.dimension.unwrap_or(Dimension::Rpd)
        ),
        (Some(pool), false) => match wake.dimension {
            Some(d) => format!("pool {pool} has its {d} window full; "),
            None => format!("pool {pool} is held by an upstream delay or a backoff; "),
        },
        (None, _) => String::new(),
    };
    Error::new(
        kind,
        format!(
            "no target of route `{}` can send this request {bound}: {what}capacity returns at {} \
             (in {})",
            ctx.route_name,
            when(wake.at),
            human_duration(span(now, wake.at)),
        ),
    )
    .with_provider("router")
    .with_retry_after(until(now, wake.at))
    .with_quota(quota)
}

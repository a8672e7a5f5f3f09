//! What the quota model learns from the upstream besides errors: rate-limit headers
//! ([`RateLimitSnapshot`]), the record it keeps when a 429 suggests models share a pool
//! ([`SharedPoolSuspicion`]), and how far a 429's delay is believed ([`plausible_delay`]).

use std::time::Duration;

use http::HeaderMap;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Dimension, PoolId};
use crate::error::{Error, ErrorKind};
use crate::hints::epoch_reset;

/// The longest block a 429 on a per-minute quota (or one that names no quota) may impose.
///
/// A per-minute window frees within 60 seconds; an upstream asking for much longer on such a
/// quota (`Retry-After: 999999` with no quota named, `retryDelay: "86400s"` on a per-minute
/// quota id) is broken or lying, and believing it would stop every later run for a day. Five
/// minutes leaves room for an upstream's own back-off beyond one window.
pub const MAX_WINDOW_HOLD: Duration = Duration::from_secs(5 * 60);

/// Whether the upstream's quota id names a daily quota (`...PerDay...`, as Gemini's
/// `GenerateRequestsPerDayPerProjectPerModel`).
pub fn quota_id_says_per_day(quota_id: &str) -> bool {
    quota_id.to_ascii_lowercase().contains("perday")
}

/// Whether a 429 is about a daily quota: its kind, its dimension or its quota id says so.
pub fn is_daily_refusal(error: &Error) -> bool {
    let facts = error.quota();
    error.kind() == ErrorKind::QuotaExhausted
        || facts.dimension.is_some_and(Dimension::is_daily)
        || facts.quota_id.as_deref().is_some_and(quota_id_says_per_day)
}

/// The delay of `error` as far as it is believable: a refusal of a daily quota keeps its delay
/// (up to the clamp every hint already has); any other refusal (per-minute, or naming no quota)
/// is capped at [`MAX_WINDOW_HOLD`]. `None` when the error asks for no delay.
///
/// The quota model holds pools for this long and the router waits this long; a caller whose
/// maximum wait is shorter gets an immediate error saying when capacity returns instead.
pub fn plausible_delay(error: &Error) -> Option<Duration> {
    let delay = error.retry_after()?;
    if is_daily_refusal(error) {
        Some(delay)
    } else {
        Some(delay.min(MAX_WINDOW_HOLD))
    }
}

/// One limit as an upstream's `X-RateLimit-*` headers describe it.
///
/// OpenRouter sends `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
/// (epoch milliseconds); the headers do not say which dimension they describe, so the caller
/// (the provider, which knows its upstream) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitSnapshot {
    /// The dimension the headers describe.
    pub dimension: Dimension,
    /// The limit, if sent.
    pub limit: Option<u64>,
    /// What the upstream says is left, if sent.
    pub remaining: Option<u64>,
    /// When the limit resets, if sent.
    pub reset_at: Option<Timestamp>,
}

impl RateLimitSnapshot {
    /// Reads `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` (epoch
    /// seconds or milliseconds). `None` when none of them is present and readable.
    pub fn from_headers(headers: &HeaderMap, dimension: Dimension) -> Option<Self> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<u64>().ok());
        let snapshot = RateLimitSnapshot {
            dimension,
            limit: number("x-ratelimit-limit"),
            remaining: number("x-ratelimit-remaining"),
            reset_at: text("x-ratelimit-reset").and_then(epoch_reset),
        };
        (snapshot.limit.is_some() || snapshot.remaining.is_some() || snapshot.reset_at.is_some())
            .then_some(snapshot)
    }
}

/// Evidence that this pool shares its quota with other models: the upstream refused with a
/// 429 while this process's own count, over a window it watched from its start, was below the
/// limit.
///
/// It is a suspicion, not a proof (another process or tool using the same project looks the
/// same), so the model records and shows it; configuration decides (`shared_pools`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedPoolSuspicion {
    /// The dimension the 429 named.
    pub dimension: Dimension,
    /// What this process had counted in the window.
    pub used: u64,
    /// The limit it compared against (the 429's value, else the pool's).
    pub limit: u64,
    /// When it was last seen.
    pub last_seen: Timestamp,
    /// How many such 429s were seen.
    pub count: u64,
    /// The model the 429 named, when it named one (it can differ from the requested model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_model: Option<String>,
    /// The upstream's quota id, when named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_id: Option<String>,
    /// Other pools of the same project that had use in that window: the likely partners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partners: Vec<PoolId>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::QuotaFacts;

    fn refusal(kind: ErrorKind, delay: Duration, facts: QuotaFacts) -> Error {
        Error::new(kind, "").with_retry_after(delay).with_quota(facts)
    }

    #[test]
    fn an_implausible_delay_on_a_per_minute_quota_is_capped() {
        // `Retry-After: 999999` with no RetryInfo: the hint parser clamps it to 25 h and the
        // 429 names no quota at all.
        let bare = refusal(
            ErrorKind::RateLimited,
            crate::hints::retry_after_value("999999", Timestamp::UNIX_EPOCH).unwrap(),
            QuotaFacts::default(),
        );
        assert_eq!(plausible_delay(&bare), Some(MAX_WINDOW_HOLD));
        // `retryDelay: "86400s"` on a per-minute quota id.
        let mut facts = QuotaFacts::default();
        facts.dimension = Some(Dimension::Rpm);
        facts.quota_id = Some("GenerateRequestsPerMinutePerProjectPerModel".to_owned());
        let minute = refusal(
            ErrorKind::RateLimited,
            crate::hints::protobuf_duration("86400s").unwrap(),
            facts,
        );
        assert_eq!(plausible_delay(&minute), Some(MAX_WINDOW_HOLD));
        // An ordinary per-minute delay is kept as sent.
        let short = refusal(
            ErrorKind::RateLimited,
            Duration::from_secs(41),
            QuotaFacts::default(),
        );
        assert_eq!(plausible_delay(&short), Some(Duration::from_secs(41)));
    }

    #[test]
    fn a_long_delay_on_a_quota_that_says_per_day_is_believed() {
        let mut facts = QuotaFacts::default();
        facts.quota_id = Some("GenerateRequestsPerDayPerProjectPerModel-FreeTier".to_owned());
        let day = Duration::from_secs(86_400);
        let by_id = refusal(ErrorKind::RateLimited, day, facts);
        assert!(is_daily_refusal(&by_id));
        assert_eq!(plausible_delay(&by_id), Some(day));
        let by_kind = refusal(ErrorKind::QuotaExhausted, day, QuotaFacts::default());
        assert_eq!(plausible_delay(&by_kind), Some(day));
        assert_eq!(
            plausible_delay(&Error::new(ErrorKind::RateLimited, "")),
            None
        );
    }

    #[test]
    fn openrouter_headers_are_read_with_a_millisecond_reset() {
        let mut h = HeaderMap::new();
        h.insert("X-RateLimit-Limit", "50".parse().unwrap());
        h.insert("X-RateLimit-Remaining", "0".parse().unwrap());
        h.insert("X-RateLimit-Reset", "1779321600000".parse().unwrap());
        let s = RateLimitSnapshot::from_headers(&h, Dimension::Rpd).unwrap();
        assert_eq!(s.limit, Some(50));
        assert_eq!(s.remaining, Some(0));
        assert_eq!(s.reset_at, Some("2026-05-21T00:00:00Z".parse().unwrap()));
        assert_eq!(
            RateLimitSnapshot::from_headers(&HeaderMap::new(), Dimension::Rpm),
            None
        );
    }
}

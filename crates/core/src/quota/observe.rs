//! What the quota model learns from the upstream besides errors: rate-limit headers
//! ([`RateLimitSnapshot`]), and the record it keeps when a 429 suggests models share a pool
//! ([`SharedPoolSuspicion`]).

use http::HeaderMap;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{Dimension, PoolId};
use crate::hints::epoch_reset;

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

//! OpenAI's `x-ratelimit-*` headers, read on every answer (success or error) so the quota model
//! learns the account's real limits without waiting for a 429.
//!
//! The OpenAI rate-limit guide (platform.openai.com/docs/guides/rate-limits) documents
//! `x-ratelimit-limit-requests`, `x-ratelimit-limit-tokens`, `x-ratelimit-remaining-requests`,
//! `x-ratelimit-remaining-tokens`, `x-ratelimit-reset-requests` and `x-ratelimit-reset-tokens`,
//! the resets as Go-style durations until the window refills (`"1s"`, `"6m0s"`, `"20ms"`).
//! Image models are also limited in images per minute; servers that send an `-images` triple
//! are read the same way.

use std::time::Duration;

use http::HeaderMap;
use imagegate_core::hints::clamp_seconds;
use imagegate_core::quota::Dimension;
use imagegate_core::quota::RateLimitSnapshot;
use jiff::{SignedDuration, Timestamp};

/// The header suffixes and the dimension each describes.
const SUFFIXES: [(&str, Dimension); 3] = [
    ("requests", Dimension::Rpm),
    ("tokens", Dimension::Tpm),
    ("images", Dimension::Ipm),
];

/// Every limit the answer's `x-ratelimit-*` headers describe, with resets made instants from
/// `now`. Empty when there are none (relays and self-hosted servers often send none).
pub fn rate_limits(headers: &HeaderMap, now: Timestamp) -> Vec<RateLimitSnapshot> {
    let text = |name: String| {
        headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .map(str::to_owned)
    };
    SUFFIXES
        .iter()
        .filter_map(|(suffix, dimension)| {
            let snapshot = RateLimitSnapshot {
                dimension: *dimension,
                limit: text(format!("x-ratelimit-limit-{suffix}")).and_then(|v| v.parse().ok()),
                remaining: text(format!("x-ratelimit-remaining-{suffix}"))
                    .and_then(|v| v.parse().ok()),
                reset_at: text(format!("x-ratelimit-reset-{suffix}"))
                    .and_then(|v| go_duration(&v))
                    .and_then(|d| after(now, d)),
            };
            (snapshot.limit.is_some()
                || snapshot.remaining.is_some()
                || snapshot.reset_at.is_some())
            .then_some(snapshot)
        })
        .collect()
}

/// `now + delay`, when representable.
pub(crate) fn after(now: Timestamp, delay: Duration) -> Option<Timestamp> {
    SignedDuration::try_from(delay)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
}

/// A Go-style duration as OpenAI writes them: `"1s"`, `"6m0s"`, `"1.896s"`, `"20ms"`,
/// `"1h2m3s"`, also `"12"` (bare seconds). Clamped like every retry hint; `None` when it is not
/// a duration.
pub fn go_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return clamp_seconds(seconds);
    }
    let mut rest = text;
    let mut total = 0.0_f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return None;
        }
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let (scale, unit_len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with("us") || rest.starts_with("µs") {
            (0.000_001, rest.chars().take(2).map(char::len_utf8).sum())
        } else if rest.starts_with("ns") {
            (0.000_000_001, 2)
        } else if rest.starts_with('h') {
            (3_600.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else {
            return None;
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    clamp_seconds(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_as_openai_sends_them() {
        assert_eq!(go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(go_duration("1.896s"), Some(Duration::from_millis(1_896)));
        assert_eq!(go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(go_duration("1h2m3s"), Some(Duration::from_secs(3_723)));
        assert_eq!(go_duration("12"), Some(Duration::from_secs(12)));
        assert_eq!(go_duration("-5"), Some(Duration::ZERO));
        for bad in ["", "soon", "5x", "m", "1.2.3s", "s5"] {
            assert_eq!(go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_triple_becomes_a_snapshot() {
        let now: Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-limit-requests", "50".parse().unwrap());
        h.insert("x-ratelimit-remaining-requests", "49".parse().unwrap());
        h.insert("x-ratelimit-reset-requests", "1.2s".parse().unwrap());
        h.insert("x-ratelimit-limit-tokens", "100000".parse().unwrap());
        h.insert("x-ratelimit-remaining-tokens", "0".parse().unwrap());
        h.insert("x-ratelimit-reset-tokens", "6m0s".parse().unwrap());
        let all = rate_limits(&h, now);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].dimension, Dimension::Rpm);
        assert_eq!((all[0].limit, all[0].remaining), (Some(50), Some(49)));
        assert_eq!(
            all[0].reset_at,
            Some("2026-01-15T12:00:01.2Z".parse().unwrap())
        );
        assert_eq!(all[1].dimension, Dimension::Tpm);
        assert_eq!(
            all[1].reset_at,
            Some("2026-01-15T12:06:00Z".parse().unwrap())
        );
        assert!(rate_limits(&HeaderMap::new(), now).is_empty());
    }
}

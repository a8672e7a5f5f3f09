//! Retry hints: every way an upstream says "come back later", parsed into one clamped
//! [`Duration`].
//!
//! Upstreams express delays as protobuf durations (`"15.002899939s"` in Gemini's `RetryInfo`),
//! `Retry-After` headers (delta-seconds or an HTTP date), epoch-millisecond reset stamps
//! (OpenRouter's `X-RateLimit-Reset`) and prose ("Please retry in 40.6s."). Each parser returns
//! `None` when the input is not a hint, and never returns a negative or absurd value: delays are
//! clamped into `0..=MAX_RETRY_HINT`.

use std::time::Duration;

use http::HeaderMap;
use jiff::Timestamp;

/// The longest delay a hint may ask for. No quota window is longer than a calendar day, and a
/// day in a daylight-saving zone lasts at most 25 hours; anything beyond that is a broken
/// upstream, not a real instruction.
pub const MAX_RETRY_HINT: Duration = Duration::from_secs(25 * 3_600);

/// Clamps a delay in (possibly fractional, possibly negative) seconds into `0..=MAX_RETRY_HINT`.
/// `None` for NaN.
pub fn clamp_seconds(seconds: f64) -> Option<Duration> {
    if seconds.is_nan() {
        return None;
    }
    let max = MAX_RETRY_HINT.as_secs_f64();
    Some(Duration::from_secs_f64(seconds.clamp(0.0, max)))
}

/// A protobuf JSON duration such as `"10s"`, `"15.002899939s"` or `"0.5s"` (Gemini's
/// `google.rpc.RetryInfo.retryDelay`).
pub fn protobuf_duration(text: &str) -> Option<Duration> {
    let number = text.trim().strip_suffix('s')?;
    // "ms" is not a protobuf duration; reject rather than read "5m" as 5 seconds.
    if number.ends_with('m') {
        return None;
    }
    parse_seconds(number)
}

/// A `Retry-After` header value: delta-seconds (`"120"`, also fractional) or an HTTP date
/// (`"Wed, 21 Oct 2015 07:28:00 GMT"`), relative to `now`.
pub fn retry_after_value(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Some(d) = parse_seconds(value) {
        return Some(d);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let at = Timestamp::try_from(date).ok()?;
    Some(until(now, at))
}

/// The retry hint in a response's headers: `retry-after-ms` (milliseconds, some relays) first,
/// then `retry-after`.
pub fn retry_after_headers(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    if let Some(ms) = header_str(headers, "retry-after-ms").and_then(parse_number) {
        return clamp_seconds(ms / 1_000.0);
    }
    header_str(headers, "retry-after").and_then(|v| retry_after_value(v, now))
}

/// An epoch-millisecond reset stamp (OpenRouter's `X-RateLimit-Reset`) as an instant.
/// Stamps that look like seconds (before the year 2001 when read as milliseconds) are read as
/// seconds, since upstreams disagree on the unit.
pub fn epoch_reset(text: &str) -> Option<Timestamp> {
    let value = parse_number(text)?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let millis = if value < 1.0e12 {
        value * 1_000.0
    } else {
        value
    };
    Timestamp::from_millisecond(millis as i64).ok()
}

/// The delay from `now` until `at` as a retry hint: clamped into `0..=MAX_RETRY_HINT` (an
/// instant in the past gives zero). For an upstream's reset instant; general arithmetic
/// between instants uses [`crate::clock::span`], which is not clamped.
pub fn until(now: Timestamp, at: Timestamp) -> Duration {
    crate::clock::span(now, at).min(MAX_RETRY_HINT)
}

/// "Please retry in 40.609213465s." or "... retry in 796.434735ms" inside an error message.
pub fn retry_in_message(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    let start = lower.find("retry in ")? + "retry in ".len();
    let rest = &lower[start..];
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let number: f64 = rest[..number_len].trim_end_matches('.').parse().ok()?;
    let unit = rest[number_len..].trim_start();
    let seconds = if unit.starts_with("ms") {
        number / 1_000.0
    } else if unit.starts_with('s') {
        number
    } else if unit.starts_with("min") || unit.starts_with('m') {
        number * 60.0
    } else if unit.starts_with('h') {
        number * 3_600.0
    } else {
        return None;
    };
    clamp_seconds(seconds)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_number(text: &str) -> Option<f64> {
    let value: f64 = text.trim().parse().ok()?;
    value.is_finite().then_some(value)
}

fn parse_seconds(text: &str) -> Option<Duration> {
    clamp_seconds(parse_number(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn protobuf_durations_from_real_bodies() {
        // Both strings are verbatim from recorded 429s (RetryInfo.retryDelay; see the fixtures
        // gemini/generate-content/429-quotafailure-*).
        assert_eq!(protobuf_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(
            protobuf_duration("15.002899939s"),
            Some(Duration::from_nanos(15_002_899_939))
        );
        assert_eq!(protobuf_duration("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(protobuf_duration("-3s"), Some(Duration::ZERO));
        assert_eq!(protobuf_duration("99999999s"), Some(MAX_RETRY_HINT));
        assert_eq!(protobuf_duration("5ms"), None);
        assert_eq!(protobuf_duration("soon"), None);
        assert_eq!(protobuf_duration("10"), None);
        assert_eq!(protobuf_duration("NaNs"), None);
    }

    #[test]
    fn retry_after_seconds_and_http_dates() {
        let now = at("2015-10-21T07:27:00Z");
        assert_eq!(
            retry_after_value("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            retry_after_value(" 1.5 ", now),
            Some(Duration::from_millis(1_500))
        );
        assert_eq!(
            retry_after_value("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        // A date in the past means "now", never a negative wait.
        assert_eq!(
            retry_after_value("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after_value("-5", now), Some(Duration::ZERO));
        assert_eq!(retry_after_value("tomorrow-ish", now), None);
    }

    #[test]
    fn retry_after_headers_prefer_milliseconds() {
        let now = at("2026-01-01T00:00:00Z");
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "7".parse().unwrap());
        assert_eq!(
            retry_after_headers(&headers, now),
            Some(Duration::from_secs(7))
        );
        headers.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(
            retry_after_headers(&headers, now),
            Some(Duration::from_millis(250))
        );
        assert_eq!(retry_after_headers(&HeaderMap::new(), now), None);
    }

    #[test]
    fn epoch_reset_stamps() {
        // OpenRouter's X-RateLimit-Reset in epoch milliseconds (openrouter.ai/docs/api-reference/limits).
        let reset = epoch_reset("1741305600000").unwrap();
        assert_eq!(reset, at("2025-03-07T00:00:00Z"));
        assert_eq!(
            epoch_reset("1741305600").unwrap(),
            reset,
            "seconds are accepted too"
        );
        assert_eq!(epoch_reset("-1"), None);
        assert_eq!(epoch_reset("later"), None);
        let now = at("2025-03-06T23:59:00Z");
        assert_eq!(until(now, reset), Duration::from_secs(60));
        assert_eq!(until(reset, now), Duration::ZERO);
    }

    #[test]
    fn retry_in_messages() {
        // Verbatim tails of Gemini 429 messages.
        assert_eq!(
            retry_in_message("Quota exceeded ... Please retry in 40.609213465s."),
            Some(Duration::from_nanos(40_609_213_465))
        );
        assert_eq!(
            retry_in_message("Please retry in 796.434735ms."),
            Some(Duration::from_nanos(796_434_735))
        );
        assert_eq!(
            retry_in_message("please retry in 2 minutes"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(retry_in_message("no hint here"), None);
        assert_eq!(retry_in_message("retry in a moment"), None);
    }
}

//! The classification table: one Google error answer -> one [`Error`] with one [`ErrorKind`].
//!
//! Status first, then the body's structured details override it (Gemini reports a bad key as
//! 400 with `ErrorInfo.reason = API_KEY_INVALID`). The rows, in the order they are tried:
//!
//! | signal | kind |
//! |---|---|
//! | `ErrorInfo.reason` naming a key, credential or permission problem (`API_KEY_INVALID`, ...) | `unauthorized` |
//! | `ErrorInfo.reason` naming billing (`BILLING_DISABLED`, ...) | `billing_required` |
//! | `ErrorInfo.reason = MODEL_CAPACITY_EXHAUSTED` (provider capacity, not a quota) | `unavailable` |
//! | 429 / `RESOURCE_EXHAUSTED` with a quota limit of 0 (`quotaValue`, `quota_limit_value` or "limit: 0") | `billing_required` |
//! | 429 / `RESOURCE_EXHAUSTED` with a per-day quota | `quota_exhausted`, reset at the next midnight America/Los_Angeles |
//! | 429 / `RESOURCE_EXHAUSTED` otherwise (per-minute, unnamed, bare) | `rate_limited`, `retry_after` from `RetryInfo` / the message / headers |
//! | 400 `FAILED_PRECONDITION` about the user's location | `region_unsupported` |
//! | 400 saying billing is required ("only accessible to billed users") | `billing_required` |
//! | 400 otherwise | `invalid_request` |
//! | 401, 403 | `unauthorized` |
//! | 402 | `billing_required` |
//! | 404 | `model_not_found` |
//! | 408 | `timeout` |
//! | other 4xx | `invalid_request` |
//! | 5xx | `unavailable` |
//!
//! A body that is not a Google error (an HTML page from a proxy, empty, truncated JSON) is
//! classified by the status alone and says what it was; nothing here can panic.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use imagegate_core::hints;
use imagegate_core::quota::{PACIFIC, next_midnight};
use imagegate_core::{Error, ErrorKind, QuotaFacts};
use jiff::Timestamp;

use crate::quota::{Period, Violation, violations};
use crate::status::{Status, parse_status};

/// The most of a non-Google body quoted in an error message.
const SNIPPET_CHARS: usize = 160;

/// Classifies one error answer from a Google API (or a relay passing one on).
///
/// `now` is the instant the answer arrived: per-day resets and HTTP-date `Retry-After` headers
/// are computed from it. `provider` names the provider on the error (`gemini`, `openrouter`).
/// Never panics, whatever the body holds.
pub fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
    provider: &str,
) -> Error {
    let error = match parse_status(body) {
        Some(parsed) => classify_status(status, headers, &parsed, now),
        None => classify_opaque(status, headers, body, now),
    };
    error
        .with_provider(provider)
        .with_http_status(status.as_u16())
}

/// The kind an HTTP status alone implies.
pub fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Unauthorized,
        402 => ErrorKind::BillingRequired,
        404 => ErrorKind::ModelNotFound,
        408 => ErrorKind::Timeout,
        429 => ErrorKind::RateLimited,
        500..=599 => ErrorKind::Unavailable,
        400..=499 => ErrorKind::InvalidRequest,
        _ => ErrorKind::Unexpected,
    }
}

/// The HTTP status a canonical code name stands for (google.rpc.Code's documented mapping).
fn status_for_code_name(name: &str) -> Option<u16> {
    Some(match name {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" => 500,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => return None,
    })
}

fn is_error_status(code: u16) -> bool {
    (400..=599).contains(&code)
}

fn classify_status(
    http_status: StatusCode,
    headers: &HeaderMap,
    status: &Status,
    now: Timestamp,
) -> Error {
    // The HTTP status decides unless it is not an error status (a relay that answered 200 and
    // carried Google's error inside); then the body's own code, then its code name.
    let effective = Some(http_status.as_u16())
        .filter(|c| is_error_status(*c))
        .or(status.code.filter(|c| is_error_status(*c)))
        .or(status.status.as_deref().and_then(status_for_code_name))
        .unwrap_or(http_status.as_u16());
    let code_name = status.status.as_deref().unwrap_or("");
    let message = one_line(&status.message);
    let upstream_code = status
        .status
        .clone()
        .or_else(|| status.code.map(|c| c.to_string()));
    let reasons: Vec<&str> = status
        .error_infos()
        .filter_map(|i| i.reason.as_deref())
        .collect();

    let mut error = if let Some(kind) = reasons.iter().find_map(|r| kind_for_reason(r)) {
        let mut error = Error::new(kind, &message);
        if kind == ErrorKind::Unavailable
            && let Some(wait) = body_retry_hint(status).or_else(|| header_hint(headers, now))
        {
            error = error.with_retry_after(wait);
        }
        error
    } else if effective == 429 || code_name == "RESOURCE_EXHAUSTED" {
        classify_quota(status, headers, &message, now)
    } else if code_name == "FAILED_PRECONDITION" && mentions_location(&message) {
        Error::new(ErrorKind::RegionUnsupported, &message)
    } else if (effective == 400 || effective == 403) && mentions_billing(&message) {
        Error::new(ErrorKind::BillingRequired, &message)
    } else {
        let kind = kind_for_status(effective);
        let mut error = Error::new(kind, &message);
        if kind == ErrorKind::Unavailable
            && let Some(wait) = body_retry_hint(status).or_else(|| header_hint(headers, now))
        {
            error = error.with_retry_after(wait);
        }
        error
    };

    if let Some(code) = upstream_code {
        error = error.with_upstream_code(code);
    }
    if let Some(project) = consumer_project(status) {
        error = error.with_project(project);
    }
    error
}

/// The 429 rows: billing (limit 0), then per-day, then per-minute or unnamed.
fn classify_quota(status: &Status, headers: &HeaderMap, message: &str, now: Timestamp) -> Error {
    let all = violations(status);
    let facts = |v: &Violation| {
        let mut facts = QuotaFacts::default();
        facts.dimension = v.dimension();
        facts.quota_id = v.quota_id.clone();
        facts.quota_metric = v.metric.clone();
        facts.quota_value = v.value;
        facts.model = v.model.clone();
        facts
    };

    // A limit of 0 means no entitlement at all: no wait can help, so no retry_after either.
    if let Some(zero) = all.iter().find(|v| v.value == Some(0)) {
        return Error::new(ErrorKind::BillingRequired, message).with_quota(facts(zero));
    }

    // A daily quota is done until midnight Pacific. Its RetryInfo (often a few seconds) is
    // misleading, so the wait is the time until the reset.
    if let Some(daily) = all.iter().find(|v| v.period() == Period::Day) {
        let reset = next_midnight(now, &PACIFIC);
        let mut quota = facts(daily);
        quota.reset_at = Some(reset);
        return Error::new(ErrorKind::QuotaExhausted, message)
            .with_quota(quota)
            .with_retry_after(hints::until(now, reset));
    }

    let named = all
        .iter()
        .find(|v| v.period() == Period::Minute)
        .or(all.first());
    let mut error = Error::new(ErrorKind::RateLimited, message);
    if let Some(v) = named {
        error = error.with_quota(facts(v));
    }
    if let Some(wait) = body_retry_hint(status).or_else(|| header_hint(headers, now)) {
        error = error.with_retry_after(wait);
    }
    error
}

/// The longest wait the body asks for: `RetryInfo.retryDelay` ("40s"), the message ("Please
/// retry in 40.609213465s.") and `ErrorInfo.metadata.quotaResetDelay` ("373.801628ms"). The
/// structured delay is rounded down to whole seconds, so the longest is the safe one.
fn body_retry_hint(status: &Status) -> Option<Duration> {
    let structured = status.retry_delay().and_then(hints::protobuf_duration);
    let from_message = hints::retry_in_message(&status.message);
    let from_info = status.error_infos().find_map(|info| {
        info.metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("quotaResetDelay") || k == &"quota_reset_delay")
            .and_then(|(_, v)| hints::retry_in_message(&format!("retry in {v}")))
    });
    [structured, from_message, from_info]
        .into_iter()
        .flatten()
        .max()
}

fn header_hint(headers: &HeaderMap, now: Timestamp) -> Option<Duration> {
    hints::retry_after_headers(headers, now)
}

/// `ErrorInfo.reason` values that decide the kind whatever the status.
fn kind_for_reason(reason: &str) -> Option<ErrorKind> {
    let r = reason.to_ascii_uppercase();
    if r.contains("BILLING") {
        return Some(ErrorKind::BillingRequired);
    }
    if r == "MODEL_CAPACITY_EXHAUSTED" {
        return Some(ErrorKind::Unavailable);
    }
    if r.contains("LOCATION") {
        return Some(ErrorKind::RegionUnsupported);
    }
    let auth = [
        "API_KEY",
        "CREDENTIAL",
        "ACCESS_TOKEN",
        "UNAUTHENTICATED",
        "PERMISSION",
        "DENIED",
        "SUSPENDED",
        "SERVICE_DISABLED",
        "CONSUMER_INVALID",
    ];
    auth.iter()
        .any(|word| r.contains(word))
        .then_some(ErrorKind::Unauthorized)
}

/// FAILED_PRECONDITION carries nothing structured about the cause, so its message is the only
/// signal: "User location is not supported for the API use."
fn mentions_location(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("location") || m.contains("country") || m.contains("region")
}

/// "Imagen API is only accessible to billed users at this time." and similar: a 400 whose only
/// signal is the message.
fn mentions_billing(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("billed user") || m.contains("billing") || m.contains("paid tier")
}

/// `ErrorInfo.metadata.consumer = "projects/391029737820"`: the project whose quota it was.
fn consumer_project(status: &Status) -> Option<String> {
    status.error_infos().find_map(|i| {
        i.metadata
            .get("consumer")
            .map(|c| c.trim_start_matches("projects/").to_owned())
    })
}

/// An answer whose body is not a Google error: classified by the status, saying what came.
fn classify_opaque(status: StatusCode, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Error {
    let code = status.as_u16();
    let kind = kind_for_status(code);
    let content_type = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no content-type");
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    let what = if body.iter().all(u8::is_ascii_whitespace) {
        "an empty body".to_owned()
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
            format!("JSON that is not a Google error ({content_type})")
        } else {
            format!(
                "truncated or malformed JSON ({content_type}, {} bytes)",
                body.len()
            )
        }
    } else if trimmed.starts_with('<') {
        format!("an HTML page ({content_type}), probably from a proxy or gateway")
    } else {
        format!("a non-JSON body ({content_type})")
    };
    let snippet = one_line(&text.chars().take(SNIPPET_CHARS).collect::<String>());
    let mut message = format!("HTTP {code} with {what}");
    if !snippet.is_empty() {
        message.push_str(&format!(": {snippet}"));
    }
    if code == 404 {
        message.push_str(" (check the base URL and the model name)");
    }
    let mut error = Error::new(kind, message);
    if let Some(wait) = header_hint(headers, now) {
        error = error.with_retry_after(wait);
    }
    if kind == ErrorKind::Unexpected {
        // A non-error status with an unreadable body is not something to retry blindly.
        error = error.set_permanent();
    }
    error
}

/// Collapses a multi-line message into one line (Errors display as one line).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-15T12:00:00Z".parse().unwrap()
    }

    fn run(status: u16, body: &str) -> Error {
        classify(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            body.as_bytes(),
            now(),
            "gemini",
        )
    }

    #[test]
    fn never_panics_on_odd_bodies() {
        let bodies = [
            "",
            "   ",
            "<html><head><title>502 Bad Gateway</title></head></html>",
            "{\"error\": {\"code\": 429, \"message\": \"You exc",
            "[{\"error\":",
            "null",
            "{\"error\": null}",
            "{\"error\": {\"details\": [null, 1, \"x\", {\"@type\": 3}]}}",
            "\u{0}\u{1}\u{ff}",
        ];
        for status in [200, 400, 401, 403, 404, 408, 429, 500, 502, 503, 599, 302] {
            for body in bodies {
                let e = run(status, body);
                assert_eq!(e.http_status(), Some(status));
                assert_eq!(e.provider(), Some("gemini"));
                assert!(!e.to_string().contains('\n'));
            }
        }
    }

    #[test]
    fn opaque_bodies_say_what_they_were() {
        let e = run(502, "<html><body>Bad Gateway</body></html>");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("HTML page"), "{}", e.message());
        let e = run(429, "");
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(e.message().contains("empty body"), "{}", e.message());
        let e = run(429, "{\"error\": {\"code\": 429, \"mes");
        assert!(e.message().contains("truncated"), "{}", e.message());
    }

    #[test]
    fn retry_after_header_applies_to_opaque_429s() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "12".parse().unwrap());
        let e = classify(
            StatusCode::TOO_MANY_REQUESTS,
            &headers,
            b"",
            now(),
            "gemini",
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(12)));
    }

    #[test]
    fn reasons_override_status() {
        let e = run(
            400,
            r#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.upstream_code(), Some("INVALID_ARGUMENT"));
        let e = run(
            429,
            r#"{"error":{"code":429,"message":"No capacity","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"MODEL_CAPACITY_EXHAUSTED","metadata":{"quotaResetDelay":"373.801628ms"}}]}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.retry_after(), Some(Duration::from_nanos(373_801_628)));
    }

    #[test]
    fn body_code_decides_when_the_relay_said_200() {
        let e = run(
            200,
            r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        let e = run(
            200,
            r#"{"error":{"message":"x","status":"RESOURCE_EXHAUSTED"}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited);
    }

    #[test]
    fn per_day_resets_at_pacific_midnight_and_waits_until_then() {
        let e = run(
            429,
            r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProjectPerModel","quotaValue":"10000"}]},{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"5s"}]}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::QuotaExhausted);
        let reset: Timestamp = "2026-01-16T08:00:00Z".parse().unwrap();
        assert_eq!(e.quota().reset_at, Some(reset));
        assert_eq!(e.retry_after(), Some(Duration::from_secs(20 * 3600)));
        assert_eq!(e.quota().quota_value, Some(10_000));
    }

    #[test]
    fn message_and_retry_info_take_the_longer_wait() {
        let e = run(
            429,
            r#"{"error":{"code":429,"message":"Please retry in 40.609213465s.","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"40s"}]}}"#,
        );
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert_eq!(e.retry_after(), Some(Duration::from_nanos(40_609_213_465)));
    }
}

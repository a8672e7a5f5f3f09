//! The real wire answers a simulated upstream gives: status, headers and body exactly as Gemini
//! and OpenRouter send them (shapes as in the recorded fixtures under `fixtures/gemini` and `fixtures/openrouter`), so that the
//! provider crates' own `parse_error` classifies simulated and real errors on one code path.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use imagegate_core::quota::Dimension;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::pool::Violation;

/// Which upstream's wire shapes to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpstreamKind {
    /// Google's `google.rpc.Status` envelope with `QuotaFailure` and `RetryInfo`.
    Gemini,
    /// OpenRouter's `{"error": {code, message, metadata}}` with `X-RateLimit-*` headers.
    OpenRouter,
}

impl UpstreamKind {
    /// `gemini` or `openrouter`: the provider name the real crate reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            UpstreamKind::Gemini => "gemini",
            UpstreamKind::OpenRouter => "openrouter",
        }
    }

    /// The zone whose midnight resets the per-day quotas of the service this upstream imitates:
    /// Google counts a day in America/Los_Angeles, OpenRouter in UTC. This is the upstream's own
    /// truth, kept here because the simulated upstream knows no provider crate; what a *client*
    /// believes comes from its provider's registry descriptor, and the two may differ on purpose.
    pub fn day_zone(self) -> jiff::tz::TimeZone {
        match self {
            UpstreamKind::Gemini => imagegate_core::quota::PACIFIC.clone(),
            UpstreamKind::OpenRouter => jiff::tz::TimeZone::UTC,
        }
    }
}

/// One wire answer.
#[derive(Clone, Debug)]
pub struct WireAnswer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl WireAnswer {
    fn json(status: StatusCode, headers: HeaderMap, body: &Value) -> Self {
        let mut headers = headers;
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        WireAnswer {
            status,
            headers,
            body: body.to_string().into_bytes(),
        }
    }
}

/// The exact time from `now` to `at` (zero when past), to the nanosecond.
fn until(now: Timestamp, at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// A duration rounded up to whole milliseconds, so a client that waits exactly the hint never
/// arrives a fraction early.
fn ceil_millis(d: Duration) -> u128 {
    d.as_nanos().div_ceil(1_000_000)
}

/// `12.345` for 12 345 ms.
fn seconds_text(millis: u128) -> String {
    format!("{}.{:03}", millis / 1_000, millis % 1_000)
}

const GEMINI_QUOTA_MESSAGE: &str = "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: https://ai.dev/rate-limit.";

/// Gemini's quota metric and id for a dimension, naming the dimension and the window the way
/// the live API does (the recorded `fixtures/gemini/generate-content/429-quotafailure-*.json`).
fn gemini_quota(dimension: Dimension) -> (&'static str, &'static str) {
    match dimension {
        Dimension::Rpm => (
            "generativelanguage.googleapis.com/generate_requests_per_model",
            "GenerateRequestsPerMinutePerProjectPerModel",
        ),
        Dimension::Rpd => (
            "generativelanguage.googleapis.com/generate_requests_per_model_per_day",
            "GenerateRequestsPerDayPerProjectPerModel",
        ),
        Dimension::Tpm => (
            "generativelanguage.googleapis.com/generate_content_input_token_count",
            "GenerateContentInputTokensPerModelPerMinute",
        ),
        Dimension::Ipm => (
            "generativelanguage.googleapis.com/generate_content_output_images",
            "GenerateContentOutputImagesPerMinutePerProjectPerModel",
        ),
    }
}

/// Gemini's 429 for `violations` of `model`'s pool at `now`: a `QuotaFailure` naming every full
/// quota with its `quotaValue`, and the true time to capacity in `RetryInfo` (whole seconds, as
/// Google rounds) and in the message (to the millisecond).
pub fn gemini_quota_exceeded(model: &str, violations: &[Violation], now: Timestamp) -> WireAnswer {
    let entries: Vec<Value> = violations
        .iter()
        .map(|v| {
            let (metric, id) = gemini_quota(v.dimension);
            json!({
                "quotaMetric": metric,
                "quotaId": id,
                "quotaDimensions": {"location": "global", "model": model},
                "quotaValue": v.limit.to_string(),
            })
        })
        .collect();
    let wait = super::pool::available_at(violations).map(|at| until(now, at));
    let mut message = GEMINI_QUOTA_MESSAGE.to_owned();
    let mut details = vec![json!({
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": entries,
    })];
    if let Some(wait) = wait {
        let millis = ceil_millis(wait);
        message.push_str(&format!(" Please retry in {}s.", seconds_text(millis)));
        details.push(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{}s", millis / 1_000),
        }));
    }
    let body = json!({"error": {
        "code": 429,
        "message": message,
        "status": "RESOURCE_EXHAUSTED",
        "details": details,
    }});
    WireAnswer::json(StatusCode::TOO_MANY_REQUESTS, HeaderMap::new(), &body)
}

/// Gemini's "limit: 0" 429 for a project without billing asking for `model`: the recorded
/// free-tier shape (fixtures/gemini/generate-content/429-limit0-freetier-image.json), where the
/// violations carry no `quotaValue` and the zero limit is only in the message.
pub fn gemini_limit_zero(model: &str) -> WireAnswer {
    let tokens = "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count";
    let requests = "generativelanguage.googleapis.com/generate_content_free_tier_requests";
    let message = format!(
        "{GEMINI_QUOTA_MESSAGE} \n* Quota exceeded for metric: {tokens}, limit: 0, model: {model}\n* Quota exceeded for metric: {requests}, limit: 0, model: {model}\n* Quota exceeded for metric: {requests}, limit: 0, model: {model}\nPlease retry in 40.609213465s."
    );
    let violation = |metric: &str, id: &str| {
        json!({
            "quotaMetric": metric,
            "quotaId": id,
            "quotaDimensions": {"location": "global", "model": model},
        })
    };
    let body = json!({"error": {
        "code": 429,
        "message": message,
        "status": "RESOURCE_EXHAUSTED",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                violation(tokens, "GenerateContentInputTokensPerModelPerMinute-FreeTier"),
                violation(requests, "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"),
                violation(requests, "GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
            ]},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "40s"},
        ],
    }});
    WireAnswer::json(StatusCode::TOO_MANY_REQUESTS, HeaderMap::new(), &body)
}

/// Gemini's overload answer (recorded, fixtures/gemini/generate-content/503-overloaded.json).
pub fn gemini_overloaded() -> WireAnswer {
    let body = json!({"error": {
        "code": 503,
        "message": "The model is overloaded. Please try again later.",
        "status": "UNAVAILABLE",
    }});
    WireAnswer::json(StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new(), &body)
}

/// Gemini's answer for a model the project does not serve.
pub fn gemini_model_not_found(model: &str) -> WireAnswer {
    let body = json!({"error": {
        "code": 404,
        "message": format!("models/{model} is not found for API version v1beta, or is not supported for generateContent."),
        "status": "NOT_FOUND",
    }});
    WireAnswer::json(StatusCode::NOT_FOUND, HeaderMap::new(), &body)
}

/// OpenRouter's name for a limit on `dimension`: `limit_rpm`, `limit_rpd`, ...
fn openrouter_limit(dimension: Dimension) -> &'static str {
    match dimension {
        Dimension::Rpm => "limit_rpm",
        Dimension::Rpd => "limit_rpd",
        Dimension::Tpm => "limit_tpm",
        Dimension::Ipm => "limit_ipm",
    }
}

/// OpenRouter's 429 for `violations` of `model`'s pool at `now`: the error envelope naming the
/// limit after `Rate limit exceeded: ` (with a request id, as the live service appends), and
/// `X-RateLimit-Limit/Remaining/Reset` (reset in epoch milliseconds, the true instant capacity
/// returns) both as headers and mirrored in `metadata.headers` (as in `fixtures/openrouter/chat-completions/429-per-model-per-minute.json`).
pub fn openrouter_rate_limited(
    model: &str,
    violations: &[Violation],
    now: Timestamp,
    request_id: &str,
) -> WireAnswer {
    // The daily limit decides when capacity returns when it is full; else the latest minute.
    let named = violations
        .iter()
        .find(|v| v.dimension == Dimension::Rpd)
        .or_else(|| violations.iter().max_by_key(|v| v.available_at));
    let Some(named) = named else {
        return openrouter_overloaded();
    };
    let reset = super::pool::available_at(violations)
        .map(|at| {
            let millis = ceil_millis(until(now, at));
            now.as_millisecond() + i64::try_from(millis).unwrap_or(i64::MAX / 2)
        })
        .map(|ms| ms.to_string());
    let limit_name = openrouter_limit(named.dimension);
    let message = if named.dimension == Dimension::Rpd {
        format!("Rate limit exceeded: {limit_name}/{model}")
    } else {
        format!(
            "Rate limit exceeded: {limit_name}/{model}/{request_id}. High demand for {model} on OpenRouter - limited to {} per minute. Please retry shortly.",
            named.limit
        )
    };
    let mut headers = HeaderMap::new();
    let mut mirrored = serde_json::Map::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
        let display = name
            .split('-')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-")
            .replace("Ratelimit", "RateLimit");
        mirrored.insert(display, Value::String(value));
    };
    set("x-ratelimit-limit", named.limit.to_string());
    set("x-ratelimit-remaining", "0".to_owned());
    if let Some(reset) = reset {
        set("x-ratelimit-reset", reset);
    }
    let body = json!({"error": {
        "message": message,
        "code": 429,
        "metadata": {"headers": mirrored, "provider_name": null},
    }});
    WireAnswer::json(StatusCode::TOO_MANY_REQUESTS, headers, &body)
}

/// OpenRouter's answer when the account has no credits (its equivalent of a limit of 0):
/// recorded, fixtures/openrouter/chat-completions/402-insufficient-credits.json.
pub fn openrouter_no_credits() -> WireAnswer {
    let body = json!({"error": {
        "message": "This request requires more credits, or fewer max_tokens. You requested up to 8000 tokens, but can only afford 0. To increase, visit https://openrouter.ai/workspaces/default/keys",
        "code": 402,
    }});
    WireAnswer::json(StatusCode::PAYMENT_REQUIRED, HeaderMap::new(), &body)
}

/// OpenRouter's overload answer: 503 with `metadata.error_type = provider_overloaded`.
pub fn openrouter_overloaded() -> WireAnswer {
    let body = json!({"error": {
        "message": "Provider returned error: the model is overloaded",
        "code": 503,
        "metadata": {"error_type": "provider_overloaded"},
    }});
    WireAnswer::json(StatusCode::SERVICE_UNAVAILABLE, HeaderMap::new(), &body)
}

/// OpenRouter's answer for a model the account cannot reach.
pub fn openrouter_model_not_found(model: &str) -> WireAnswer {
    let body = json!({"error": {
        "message": format!("No endpoints found for {model}."),
        "code": 404,
    }});
    WireAnswer::json(StatusCode::NOT_FOUND, HeaderMap::new(), &body)
}

/// The quota-exceeded answer of `kind` for `model`.
pub fn quota_exceeded(
    kind: UpstreamKind,
    model: &str,
    violations: &[Violation],
    unentitled: bool,
    now: Timestamp,
    request_id: &str,
) -> WireAnswer {
    match (kind, unentitled) {
        (UpstreamKind::Gemini, true) => gemini_limit_zero(model),
        (UpstreamKind::Gemini, false) => gemini_quota_exceeded(model, violations, now),
        (UpstreamKind::OpenRouter, true) => openrouter_no_credits(),
        (UpstreamKind::OpenRouter, false) => {
            openrouter_rate_limited(model, violations, now, request_id)
        }
    }
}

/// The overload answer of `kind`.
pub fn overloaded(kind: UpstreamKind) -> WireAnswer {
    match kind {
        UpstreamKind::Gemini => gemini_overloaded(),
        UpstreamKind::OpenRouter => openrouter_overloaded(),
    }
}

/// The unknown-model answer of `kind`.
pub fn model_not_found(kind: UpstreamKind, model: &str) -> WireAnswer {
    match kind {
        UpstreamKind::Gemini => gemini_model_not_found(model),
        UpstreamKind::OpenRouter => openrouter_model_not_found(model),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn gemini_body_names_dimension_window_value_and_true_wait() {
        let now = at("2026-03-07T10:00:00Z");
        let v = [Violation {
            dimension: Dimension::Ipm,
            limit: 10,
            available_at: Some(at("2026-03-07T10:00:12.3451Z")),
        }];
        let answer = gemini_quota_exceeded("gemini-2.5-flash-image", &v, now);
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        let violation = &body["error"]["details"][0]["violations"][0];
        assert_eq!(
            violation["quotaId"],
            "GenerateContentOutputImagesPerMinutePerProjectPerModel"
        );
        assert_eq!(violation["quotaValue"], "10");
        assert_eq!(body["error"]["details"][1]["retryDelay"], "12s");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .ends_with("Please retry in 12.346s.")
        );
    }

    #[test]
    fn openrouter_headers_carry_the_reset_in_epoch_millis() {
        let now = at("2026-03-07T10:00:00Z");
        let v = [Violation {
            dimension: Dimension::Rpm,
            limit: 8,
            available_at: Some(at("2026-03-07T10:00:30Z")),
        }];
        let answer = openrouter_rate_limited("google/x", &v, now, "0123456789abcdef0123");
        let reset = answer.headers["x-ratelimit-reset"].to_str().unwrap();
        assert_eq!(reset, (now.as_millisecond() + 30_000).to_string());
        let body: Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(
            body["error"]["metadata"]["headers"]["X-RateLimit-Reset"],
            reset
        );
        assert_eq!(
            body["error"]["metadata"]["headers"]["X-RateLimit-Limit"],
            "8"
        );
    }
}

//! The real wire answers a simulated upstream gives: status, headers and body exactly as Gemini,
//! OpenRouter, OpenAI and Vertex AI send them (shapes as in the fixtures under `fixtures/gemini`,
//! `fixtures/openrouter`, `fixtures/openai` and `fixtures/vertex`), so that the provider crates'
//! own `parse_error` classifies simulated and real errors on one code path.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use imagegate_core::quota::Dimension;
use jiff::Timestamp;
use serde_json::{Value, json};

use super::pool::{InUse, Usage, Violation};

/// Which upstream's wire shapes to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpstreamKind {
    /// Google's `google.rpc.Status` envelope with `QuotaFailure` and `RetryInfo`.
    Gemini,
    /// OpenRouter's `{"error": {code, message, metadata}}` with `X-RateLimit-*` headers.
    OpenRouter,
    /// OpenAI's `{"error": {message, type, param, code}}` with `x-ratelimit-*-{requests,
    /// tokens,images}` headers.
    OpenAi,
    /// Vertex AI: Google's envelope, and Dynamic Shared Quota's bare `RESOURCE_EXHAUSTED` 429
    /// that names no quota and no wait.
    Vertex,
}

impl UpstreamKind {
    /// Every kind, in a fixed order.
    pub const ALL: [UpstreamKind; 4] = [
        UpstreamKind::Gemini,
        UpstreamKind::OpenRouter,
        UpstreamKind::OpenAi,
        UpstreamKind::Vertex,
    ];

    /// `gemini`, `openrouter`, `openai` or `vertex`: the provider name the real crate reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            UpstreamKind::Gemini => "gemini",
            UpstreamKind::OpenRouter => "openrouter",
            UpstreamKind::OpenAi => "openai",
            UpstreamKind::Vertex => "vertex",
        }
    }

    /// The zone whose midnight resets the per-day quotas of the service this upstream imitates:
    /// Google (Gemini and Vertex AI) counts a day in America/Los_Angeles, OpenRouter and OpenAI
    /// in UTC. This is the upstream's own
    /// truth, kept here because the simulated upstream knows no provider crate; what a *client*
    /// believes comes from its provider's registry descriptor, and the two may differ on purpose.
    pub fn day_zone(self) -> jiff::tz::TimeZone {
        match self {
            UpstreamKind::Gemini | UpstreamKind::Vertex => imagegate_core::quota::PACIFIC.clone(),
            UpstreamKind::OpenRouter | UpstreamKind::OpenAi => jiff::tz::TimeZone::UTC,
        }
    }
}

/// What a refused request asked for and what its pool had counted when it arrived: OpenAI's
/// 429 states both ("Limit 5, Used 5, Requested 1").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counted {
    /// What the request would have cost.
    pub asked: Usage,
    /// What counted against the pool.
    pub in_use: InUse,
}

/// Who was refused, for the answers that name it: the project (OpenAI's organization,
/// Vertex's project), the request id (OpenRouter's message) and what was counted.
#[derive(Clone, Copy, Debug)]
pub struct Refused<'a> {
    /// The project or account.
    pub project: &'a str,
    /// The id the answer gives the request.
    pub request_id: &'a str,
    /// What it asked for and what its pool had counted.
    pub counted: Counted,
}

/// One per-minute limit of a pool at one instant, as rate-limit headers describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headroom {
    /// The dimension (RPM, TPM or IPM).
    pub dimension: Dimension,
    /// The limit's value.
    pub limit: u64,
    /// What is left of it in the current window.
    pub remaining: u64,
    /// When the oldest use counted against it stops counting; `None` when nothing counts.
    pub next_release: Option<Timestamp>,
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

/// The google.rpc envelope with no details (`{"error": {code, message, status}}`), as Gemini
/// and Vertex AI send it for overloads and unknown models.
fn google_error(code: StatusCode, status: &str, message: impl Into<String>) -> WireAnswer {
    let body =
        json!({"error": {"code": code.as_u16(), "message": message.into(), "status": status}});
    WireAnswer::json(code, HeaderMap::new(), &body)
}

/// Gemini's overload answer (recorded, fixtures/gemini/generate-content/503-overloaded.json).
pub fn gemini_overloaded() -> WireAnswer {
    google_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
    )
}

/// Gemini's answer for a model the project does not serve.
pub fn gemini_model_not_found(model: &str) -> WireAnswer {
    google_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!(
            "models/{model} is not found for API version v1beta, or is not supported for generateContent."
        ),
    )
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

/// OpenAI's answer for a request and its pool of no use (no entitlement): 429
/// `insufficient_quota`, never worth a retry (fixtures/openai/images-generations/429-insufficient-quota.json).
pub fn openai_insufficient_quota() -> WireAnswer {
    openai_error(
        StatusCode::TOO_MANY_REQUESTS,
        "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        Some("insufficient_quota"),
    )
}

/// OpenAI's `{"error": {message, type, param, code}}` with `status` (content type as OpenAI
/// sends it).
pub fn openai_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: Option<&str>,
) -> WireAnswer {
    let body = json!({"error": {
        "message": message,
        "type": kind,
        "param": null,
        "code": code,
    }});
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    WireAnswer {
        status,
        headers,
        body: body.to_string().into_bytes(),
    }
}

/// A wait as OpenAI's messages and `x-ratelimit-reset-*` headers write it, Go style and
/// rounded up to the millisecond: `"1.896s"`, `"12s"`, `"7m12s"`, `"20ms"`, `"0s"`.
pub fn go_duration_text(wait: Duration) -> String {
    let millis = ceil_millis(wait);
    if millis == 0 {
        return "0s".to_owned();
    }
    if millis < 1_000 {
        return format!("{millis}ms");
    }
    let (hours, rest) = (millis / 3_600_000, millis % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let seconds = seconds_text(rest);
    let seconds = seconds.trim_end_matches('0').trim_end_matches('.');
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// OpenAI's 429 for `violations` of `model`'s pool at `now` in the organization of `project`,
/// in the two documented forms (the OpenAI rate-limit guide,
/// platform.openai.com/docs/guides/rate-limits): images per minute as "Rate limit exceeded for
/// images per minute in organization org-... Limit: 5/1min. Current: 6/1min." and the other
/// limits as "Rate limit reached for MODEL in organization org-... on tokens per min (TPM):
/// Limit 100000, Used 99000, Requested 4160.", both followed by "Please try again in 1.896s."
/// with the true time to capacity. `error.type` is `tokens` for TPM and `requests` otherwise,
/// `error.code` `rate_limit_exceeded`.
pub fn openai_rate_limited(
    model: &str,
    project: &str,
    violations: &[Violation],
    counted: Counted,
    now: Timestamp,
) -> WireAnswer {
    let named = violations
        .iter()
        .find(|v| v.dimension == Dimension::Rpd)
        .or_else(|| violations.iter().max_by_key(|v| v.available_at));
    let Some(named) = named else {
        return openai_overloaded();
    };
    let retry = super::pool::available_at(violations)
        .map(|at| format!(" Please try again in {}.", go_duration_text(until(now, at))))
        .unwrap_or_default();
    let used = counted.in_use;
    let asked = counted.asked;
    let limit = named.limit;
    let message = match named.dimension {
        Dimension::Ipm => format!(
            "Rate limit exceeded for images per minute in organization org-{project}. Limit: {limit}/1min. Current: {}/1min.{retry} Please visit https://platform.openai.com/docs/guides/rate-limits to learn how to increase your rate limit.",
            used.images_this_minute + asked.images
        ),
        dimension => {
            let (what, used, requested) = match dimension {
                Dimension::Tpm => (
                    "tokens per min (TPM)",
                    used.tokens_this_minute,
                    asked.tokens,
                ),
                Dimension::Rpd => ("requests per day (RPD)", used.requests_today, 1),
                _ => ("requests per min (RPM)", used.requests_this_minute, 1),
            };
            format!(
                "Rate limit reached for {model} in organization org-{project} on {what}: Limit {limit}, Used {used}, Requested {requested}.{retry} Visit https://platform.openai.com/account/rate-limits to learn more."
            )
        }
    };
    let kind = if named.dimension == Dimension::Tpm {
        "tokens"
    } else {
        "requests"
    };
    openai_error(
        StatusCode::TOO_MANY_REQUESTS,
        &message,
        kind,
        Some("rate_limit_exceeded"),
    )
}

/// OpenAI's `x-ratelimit-limit-*`, `-remaining-*` and `-reset-*` headers for a pool's
/// per-minute limits at `now` (requests for RPM, tokens for TPM, images for IPM); each reset is
/// the time until the oldest counted use leaves the window, so a client told "0 remaining"
/// learns exactly when the next one fits. Added to `headers`.
pub fn openai_rate_limit_headers(headers: &mut HeaderMap, headroom: &[Headroom], now: Timestamp) {
    for h in headroom {
        let suffix = match h.dimension {
            Dimension::Tpm => "tokens",
            Dimension::Ipm => "images",
            _ => "requests",
        };
        let reset = h.next_release.map_or(Duration::ZERO, |at| until(now, at));
        for (prefix, value) in [
            ("limit", h.limit.to_string()),
            ("remaining", h.remaining.to_string()),
            ("reset", go_duration_text(reset)),
        ] {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(format!("x-ratelimit-{prefix}-{suffix}").as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
    }
}

/// OpenAI's overload answer (fixtures/openai/images-generations/503-overloaded.json).
pub fn openai_overloaded() -> WireAnswer {
    openai_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "The engine is currently overloaded, please try again later.",
        "server_error",
        None,
    )
}

/// OpenAI's answer for a model the key cannot use
/// (fixtures/openai/images-generations/404-model-not-found.json).
pub fn openai_model_not_found(model: &str) -> WireAnswer {
    openai_error(
        StatusCode::NOT_FOUND,
        &format!("The model `{model}` does not exist or you do not have access to it."),
        "invalid_request_error",
        Some("model_not_found"),
    )
}

/// Vertex AI's 429 when Dynamic Shared Quota has no room: `RESOURCE_EXHAUSTED` with no
/// `QuotaFailure` and no `RetryInfo` (fixtures/vertex/generate-content/429-resource-exhausted.json).
/// The true pool behind it stands for the region's shared capacity; the answer says nothing
/// of its limit or its wait, so a client cannot learn either.
pub fn vertex_resource_exhausted() -> WireAnswer {
    google_error(
        StatusCode::TOO_MANY_REQUESTS,
        "RESOURCE_EXHAUSTED",
        "Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.",
    )
}

/// Vertex AI's answer for a project without billing (its limit of 0):
/// fixtures/vertex/generate-content/403-billing-disabled.json.
pub fn vertex_billing_disabled(project: &str) -> WireAnswer {
    let body = json!({"error": {
        "code": 403,
        "message": format!("This API method requires billing to be enabled. Please enable billing on project {project} by visiting https://console.developers.google.com/billing/enable?project={project} then retry."),
        "status": "PERMISSION_DENIED",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "BILLING_DISABLED",
            "domain": "googleapis.com",
            "metadata": {"service": "aiplatform.googleapis.com", "consumer": format!("projects/{project}")},
        }],
    }});
    WireAnswer::json(StatusCode::FORBIDDEN, HeaderMap::new(), &body)
}

/// Vertex AI's overload answer (fixtures/vertex/generate-content/503-unavailable.json).
pub fn vertex_unavailable() -> WireAnswer {
    google_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "The service is currently unavailable.",
    )
}

/// Vertex AI's answer for a model the project cannot reach
/// (fixtures/vertex/generate-content/404-model-not-found.json).
pub fn vertex_model_not_found(model: &str) -> WireAnswer {
    google_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!(
            "Publisher Model `publishers/google/models/{model}` was not found or your project does not have access to it. Please ensure you are using a valid model version. For more information, see: https://cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions"
        ),
    )
}

/// The quota-exceeded answer of `kind` for `model` of `project`.
pub fn quota_exceeded(
    kind: UpstreamKind,
    model: &str,
    violations: &[Violation],
    unentitled: bool,
    now: Timestamp,
    refused: &Refused<'_>,
) -> WireAnswer {
    let Refused {
        project,
        request_id,
        counted,
    } = *refused;
    match (kind, unentitled) {
        (UpstreamKind::Gemini, true) => gemini_limit_zero(model),
        (UpstreamKind::Gemini, false) => gemini_quota_exceeded(model, violations, now),
        (UpstreamKind::OpenRouter, true) => openrouter_no_credits(),
        (UpstreamKind::OpenRouter, false) => {
            openrouter_rate_limited(model, violations, now, request_id)
        }
        (UpstreamKind::OpenAi, true) => openai_insufficient_quota(),
        (UpstreamKind::OpenAi, false) => {
            openai_rate_limited(model, project, violations, counted, now)
        }
        (UpstreamKind::Vertex, true) => vertex_billing_disabled(project),
        (UpstreamKind::Vertex, false) => vertex_resource_exhausted(),
    }
}

/// The overload answer of `kind`.
pub fn overloaded(kind: UpstreamKind) -> WireAnswer {
    match kind {
        UpstreamKind::Gemini => gemini_overloaded(),
        UpstreamKind::OpenRouter => openrouter_overloaded(),
        UpstreamKind::OpenAi => openai_overloaded(),
        UpstreamKind::Vertex => vertex_unavailable(),
    }
}

/// The unknown-model answer of `kind`.
pub fn model_not_found(kind: UpstreamKind, model: &str) -> WireAnswer {
    match kind {
        UpstreamKind::Gemini => gemini_model_not_found(model),
        UpstreamKind::OpenRouter => openrouter_model_not_found(model),
        UpstreamKind::OpenAi => openai_model_not_found(model),
        UpstreamKind::Vertex => vertex_model_not_found(model),
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

    #[test]
    fn openai_waits_are_written_go_style_and_rounded_up() {
        for (millis, text) in [
            (0, "0s"),
            (20, "20ms"),
            (1_896, "1.896s"),
            (12_000, "12s"),
            (60_000, "1m0s"),
            (432_000, "7m12s"),
            (43_180_500, "11h59m40.5s"),
        ] {
            assert_eq!(go_duration_text(Duration::from_millis(millis)), text);
        }
        assert_eq!(
            go_duration_text(Duration::from_nanos(1_895_000_001)),
            "1.896s"
        );
    }

    #[test]
    fn openai_headers_say_what_is_left_and_when_the_oldest_use_leaves() {
        let now = at("2026-03-07T10:00:00Z");
        let mut headers = HeaderMap::new();
        openai_rate_limit_headers(
            &mut headers,
            &[
                Headroom {
                    dimension: Dimension::Ipm,
                    limit: 5,
                    remaining: 0,
                    next_release: Some(at("2026-03-07T10:00:41.896Z")),
                },
                Headroom {
                    dimension: Dimension::Rpm,
                    limit: 50,
                    remaining: 50,
                    next_release: None,
                },
            ],
            now,
        );
        assert_eq!(headers["x-ratelimit-limit-images"], "5");
        assert_eq!(headers["x-ratelimit-remaining-images"], "0");
        assert_eq!(headers["x-ratelimit-reset-images"], "41.896s");
        assert_eq!(headers["x-ratelimit-remaining-requests"], "50");
        assert_eq!(headers["x-ratelimit-reset-requests"], "0s");
        assert!(headers.get("x-ratelimit-limit-tokens").is_none());
    }
}

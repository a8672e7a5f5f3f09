//! Classification of every OpenRouter failure into one [`Error`], once, without I/O.
//!
//! Order (docs/error-model.md): the HTTP status first (or, for an error inside a 200, the error's
//! own `code`); then the body's structured details refine it: a Google error relayed in
//! `metadata.raw`, `metadata.limit_source`, the rate-limit headers (real or mirrored in
//! `metadata.headers`) and the limit named after `Rate limit exceeded: `. Nothing searches text
//! for "429".

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use imagegate_core::quota::next_midnight;
use imagegate_core::{Error, ErrorKind, QuotaFacts, hints, quota::Dimension};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::envelope::Envelope;
use crate::upstream;

/// The provider name every error carries.
pub(crate) const PROVIDER: &str = "openrouter";

/// How far ahead a reset stamp may lie for a per-minute window. A stamp further out than this
/// belongs to a daily limit, whatever the message calls it.
const PER_MINUTE_RESET_HORIZON: Duration = Duration::from_secs(10 * 60);

/// The longest piece of an upstream's free text kept in a message.
const MAX_QUOTED: usize = 300;

/// Classifies a failed OpenRouter response (any non-2xx answer) into one [`Error`].
///
/// Pure: the same status, headers, body and `now` always give the same error. `now` is needed
/// for `Retry-After` dates and for daily resets the upstream does not stamp (OpenRouter's daily
/// limits reset at midnight UTC).
///
/// Reads the `{"error": {code, message, metadata}}` envelope with or without a top-level
/// `user_id` (and the bare inner object), the rate-limit headers as real headers and inside
/// `metadata.headers` (reset in epoch milliseconds), `Retry-After`, and `metadata.raw` as a JSON
/// string or an object; a Google error body found there is classified by the Gemini
/// classifier, so a Google location block behind OpenRouter is `region_unsupported`. Bodies that
/// are not JSON (an HTML page from a proxy, an empty body) are classified by status alone.
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Error {
    classify_body(status, headers, body, Some(now))
}

/// [`parse_error`] with `now` optional (unknown inside [`crate::parse_success`]).
pub(crate) fn classify_body(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: Option<Timestamp>,
) -> Error {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    match parsed.as_ref().and_then(Envelope::from_body) {
        Some(envelope) => classify_envelope(status, headers, &envelope, now),
        None => {
            let envelope = Envelope {
                message: not_json_message(status, body),
                ..Envelope::default()
            };
            classify_envelope(status, headers, &envelope, now)
        }
    }
}

/// Classifies one error envelope. `http` is the response's status: for an error inside a 200
/// (mid-stream or `choices[].error`) the envelope's own `code` says what happened.
pub(crate) fn classify_envelope(
    http: StatusCode,
    headers: &HeaderMap,
    envelope: &Envelope,
    now: Option<Timestamp>,
) -> Error {
    let status = effective_status(http, envelope);
    let hints = Hints::read(headers, envelope, now);
    let error = match upstream::classify(status, headers, envelope, now) {
        Some(relayed) => relayed,
        None => own(status, envelope, &hints, now),
    };
    let error = match (error.retry_after(), hints.retry_after) {
        (None, Some(wait)) => error.with_retry_after(wait),
        _ => error,
    };
    // The most specific code the envelope gives: the canonical error type, else the limit
    // that refused the request, else the numeric code.
    let code = envelope
        .error_type()
        .or_else(|| envelope.limit_source())
        .map(str::to_owned)
        .or_else(|| envelope.code.map(|c| c.to_string()));
    // A relayed Google error keeps Google's code (`RESOURCE_EXHAUSTED`), the more precise one.
    let error = match code {
        Some(code) if error.upstream_code().is_none() => error.with_upstream_code(code),
        _ => error,
    };
    error.with_provider(PROVIDER).with_http_status(status)
}

/// The status that describes the failure: the HTTP one, unless a 2xx carries the error in its
/// body; then the error's `code`, else its `error_type`, else 502 (a provider failed).
fn effective_status(http: StatusCode, envelope: &Envelope) -> u16 {
    if !http.is_success() {
        return http.as_u16();
    }
    envelope
        .code
        .filter(|code| *code >= 400)
        .or_else(|| envelope.error_type().and_then(status_for_error_type))
        .unwrap_or(502)
}

/// OpenRouter's canonical `metadata.error_type` values, as the status they stand for.
fn status_for_error_type(error_type: &str) -> Option<u16> {
    Some(match error_type {
        "rate_limit_exceeded" => 429,
        "payment_required" => 402,
        "authentication" => 401,
        "permission_denied" | "moderation" => 403,
        "not_found" => 404,
        "timeout" => 408,
        "invalid_request" => 400,
        "provider_overloaded" | "provider_unavailable" => 503,
        _ => return None,
    })
}

/// Classification of OpenRouter's own errors (no relayed upstream body decided it).
fn own(status: u16, envelope: &Envelope, hints: &Hints, now: Option<Timestamp>) -> Error {
    let message = describe(status, envelope);
    let kind = match status {
        429 => return rate_limit(message, envelope, hints, now),
        // A 402 with a retry hint is the in-flight budget: credits exist but are reserved by
        // requests still running, so waiting helps. Without one, credits are gone.
        402 if hints.retry_after.is_some()
            || envelope.limit_source() == Some("openrouter_in_flight_budget") =>
        {
            ErrorKind::RateLimited
        }
        402 => ErrorKind::BillingRequired,
        400 | 413 | 422 => ErrorKind::InvalidRequest,
        401 => ErrorKind::Unauthorized,
        403 if envelope.is_moderation() => ErrorKind::ContentBlocked,
        403 => ErrorKind::Unauthorized,
        404 => ErrorKind::ModelNotFound,
        408 | 504 | 524 => ErrorKind::Timeout,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Unexpected,
    };
    Error::new(kind, message)
}

/// A 429: a daily cap (quota_exhausted until the reset), a per-minute limit or an upstream's
/// shared pool (rate_limited).
fn rate_limit(
    message: String,
    envelope: &Envelope,
    hints: &Hints,
    now: Option<Timestamp>,
) -> Error {
    let source = envelope.limit_source().unwrap_or_default();
    if source.starts_with("upstream") {
        // The upstream provider's pool, shared by every OpenRouter user: not this account's
        // quota, so no quota facts that would teach the router a wrong limit.
        return Error::new(ErrorKind::RateLimited, message);
    }
    let limit = limit_name(&envelope.message);
    let reset_far = match (hints.reset_at, now) {
        (Some(at), Some(now)) => hints::until(now, at) > PER_MINUTE_RESET_HORIZON,
        _ => false,
    };
    let daily = source.ends_with("daily") || limit.as_ref().is_some_and(|l| l.daily) || reset_far;
    let per_minute = limit.as_ref().is_some_and(|l| l.per_minute);
    let mut facts = QuotaFacts::default();
    facts.quota_id = limit.as_ref().map(|l| l.id.clone());
    facts.model = limit.as_ref().and_then(|l| l.model.clone());
    facts.quota_value = hints.limit;
    facts.reset_at = hints.reset_at;
    let kind = if daily {
        facts.dimension = Some(Dimension::Rpd);
        // OpenRouter's daily limits reset at midnight UTC.
        facts.reset_at = facts
            .reset_at
            .or_else(|| now.map(|now| next_midnight(now, &TimeZone::UTC)));
        ErrorKind::QuotaExhausted
    } else {
        if per_minute {
            facts.dimension = Some(Dimension::Rpm);
        }
        ErrorKind::RateLimited
    };
    let mut error = Error::new(kind, message);
    if let (Some(at), Some(now), None) = (facts.reset_at, now, hints.retry_after) {
        error = error.with_retry_after(hints::until(now, at));
    }
    if facts.is_empty() {
        error
    } else {
        error.with_quota(facts)
    }
}

/// The limit named after `Rate limit exceeded: `.
#[derive(Debug, PartialEq)]
struct LimitName {
    /// The name without a trailing request id: `free-models-per-day`,
    /// `limit_rpm/qwen/qwen3-coder-480b-a35b-07-25`.
    id: String,
    /// The model a per-model limit names.
    model: Option<String>,
    daily: bool,
    per_minute: bool,
}

fn limit_name(message: &str) -> Option<LimitName> {
    const PREFIX: &str = "rate limit exceeded:";
    let lower = message.to_ascii_lowercase();
    let start = lower.find(PREFIX)? + PREFIX.len();
    let name = message[start..]
        .split_whitespace()
        .next()?
        .trim_end_matches(['.', ',', ';', ':']);
    if name.is_empty() {
        return None;
    }
    let mut segments: Vec<&str> = name.split('/').collect();
    if segments.len() > 2 && segments.last().is_some_and(|s| looks_like_id(s)) {
        segments.pop();
    }
    let id = segments.join("/");
    let head = segments
        .first()
        .copied()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let model = (segments.len() > 1).then(|| segments[1..].join("/"));
    let daily = ["per-day", "per_day", "rpd", "daily"]
        .iter()
        .any(|w| head.contains(w));
    let per_minute = ["per-min", "per_min", "rpm"]
        .iter()
        .any(|w| head.contains(w));
    Some(LimitName {
        id,
        model,
        daily,
        per_minute,
    })
}

/// A request or bucket id (a UUID or a long hex string), not part of the limit's name.
fn looks_like_id(segment: &str) -> bool {
    segment.len() >= 16 && segment.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// The retry hints of one response, from headers first, then the body's mirrors.
#[derive(Debug, Default)]
struct Hints {
    retry_after: Option<Duration>,
    limit: Option<u64>,
    reset_at: Option<Timestamp>,
}

impl Hints {
    fn read(headers: &HeaderMap, envelope: &Envelope, now: Option<Timestamp>) -> Hints {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| envelope.meta_header(name))
        };
        let retry_after = match now {
            Some(now) => hints::retry_after_headers(headers, now).or_else(|| {
                envelope
                    .meta_header("retry-after")
                    .and_then(|v| hints::retry_after_value(&v, now))
            }),
            // Without a clock only delta-seconds can be read.
            None => header("retry-after")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .and_then(hints::clamp_seconds),
        }
        .or_else(|| {
            envelope
                .availability_retry_after()
                .and_then(hints::clamp_seconds)
        });
        Hints {
            retry_after,
            limit: header("x-ratelimit-limit").and_then(|v| v.trim().parse().ok()),
            reset_at: header("x-ratelimit-reset").and_then(|v| hints::epoch_reset(&v)),
        }
    }
}

/// The message an error carries: OpenRouter's, the upstream provider's name, and the
/// upstream's own words when they are plain text.
fn describe(status: u16, envelope: &Envelope) -> String {
    let mut message = if envelope.message.trim().is_empty() {
        format!("HTTP {status} with no error message")
    } else {
        envelope.message.trim().to_owned()
    };
    if let Some(provider) = envelope.provider_name() {
        message.push_str(&format!(" (upstream provider {provider})"));
    }
    if let Some(raw) = envelope.raw() {
        let text = match raw {
            Value::String(text) => text.clone(),
            Value::Object(object) => object
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| raw.to_string()),
            other => other.to_string(),
        };
        let text = one_line(&text);
        if !text.is_empty() && !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
    }
    message
}

fn not_json_message(status: StatusCode, body: &[u8]) -> String {
    if body.is_empty() {
        return format!("HTTP {} with an empty body", status.as_u16());
    }
    let text = one_line(&String::from_utf8_lossy(body));
    format!(
        "HTTP {} with a body that is not an OpenRouter error ({} bytes): {text}",
        status.as_u16(),
        body.len()
    )
}

/// Collapses whitespace and cuts long text, on a character boundary.
pub(crate) fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match joined.char_indices().nth(MAX_QUOTED) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_names_from_real_message_forms() {
        let daily = limit_name(
            "Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day",
        )
        .unwrap();
        assert_eq!(daily.id, "free-models-per-day");
        assert!(daily.daily && !daily.per_minute);
        assert_eq!(daily.model, None);
        let minute = limit_name(
            "Rate limit exceeded: limit_rpm/google/gemini-2.5-flash-image/0123456789abcdef-0123. High demand",
        )
        .unwrap();
        assert_eq!(minute.id, "limit_rpm/google/gemini-2.5-flash-image");
        assert_eq!(
            minute.model.as_deref(),
            Some("google/gemini-2.5-flash-image")
        );
        assert!(minute.per_minute && !minute.daily);
        let rpd =
            limit_name("Rate limit exceeded: limit_rpd/meta-llama/llama-3.3-70b-instruct:free")
                .unwrap();
        assert!(rpd.daily);
        assert_eq!(
            rpd.model.as_deref(),
            Some("meta-llama/llama-3.3-70b-instruct:free")
        );
        assert_eq!(limit_name("Rate limit exceeded"), None);
        assert_eq!(limit_name("Rate limit exceeded: "), None);
    }

    #[test]
    fn one_line_cuts_on_char_boundaries() {
        let long = "é".repeat(MAX_QUOTED + 5);
        let cut = one_line(&long);
        assert!(cut.ends_with("..."));
        assert_eq!(cut.chars().count(), MAX_QUOTED + 3);
        assert_eq!(one_line(" a \n b "), "a b");
    }
}

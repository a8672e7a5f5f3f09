//! Classification of every OpenAI Images failure into one [`Error`], once, without I/O.
//!
//! Order (docs/error-model.md): the envelope's `type` and `code` when they name the cause
//! (`insufficient_quota`, `billing_hard_limit_reached`, `invalid_api_key`, `model_not_found`,
//! `content_policy_violation`, `moderation_blocked`, `unsupported_country_region_territory`),
//! else the HTTP status; a 429's message then gives the facts the quota model learns from: the
//! dimension (`images per minute (IPM)`, `tokens per min (TPM)`, `requests per day (RPD)`),
//! the limit (`Limit: 5/1min`, `Limit 100000`, `Limit 0`: no entitlement) and the delay
//! (`Please try again in 1.896s`), with the `x-ratelimit-*` headers filling what it leaves out.
//! Nothing searches text for "429".

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use imagegate_core::quota::next_midnight;
use imagegate_core::{Error, ErrorKind, QuotaFacts, hints, quota::Dimension};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::Value;

use crate::envelope::Envelope;
use crate::ratelimit::{after, go_duration};

/// The provider name every error carries.
pub(crate) const PROVIDER: &str = "openai";

/// The longest piece of an upstream's free text kept in a message.
const MAX_QUOTED: usize = 300;

/// Classifies a failed OpenAI Images response (any non-2xx answer) into one [`Error`].
///
/// Pure: the same status, headers, body and `now` always give the same error. `now` turns the
/// `x-ratelimit-reset-*` durations and `Retry-After` dates into instants.
///
/// Reads `{"error": {message, type, param, code}}` (also the bare inner object and
/// `{"error": "text"}` from self-hosted servers). Bodies that are not JSON (an HTML page from a
/// proxy, an empty body) are classified by status alone and say what they were.
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Error {
    classify(status, headers, body, Some(now))
}

/// [`parse_error`] with `now` optional.
pub(crate) fn classify(
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

/// Classifies one error envelope; for an error inside a 2xx the envelope's own type and code
/// decide the status it stands for.
pub(crate) fn classify_envelope(
    http: StatusCode,
    headers: &HeaderMap,
    envelope: &Envelope,
    now: Option<Timestamp>,
) -> Error {
    let status = if http.is_success() {
        status_for(envelope).unwrap_or(502)
    } else {
        http.as_u16()
    };
    let message = describe(status, envelope);
    let error = match kind_by_structure(envelope) {
        Some(kind) => Error::new(kind, message),
        None if status == 429 => rate_limit(message, headers, envelope, now),
        None => Error::new(kind_by_status(status, envelope), message),
    };
    let error = match (error.retry_after(), now) {
        (None, Some(now)) if error.is_temporary() => {
            match hints::retry_after_headers(headers, now) {
                Some(wait) => error.with_retry_after(wait),
                None => error,
            }
        }
        _ => error,
    };
    let error = match envelope.code.as_ref().or(envelope.kind.as_ref()) {
        Some(code) => error.with_upstream_code(code.clone()),
        None => error,
    };
    error.with_provider(PROVIDER).with_http_status(status)
}

/// The kinds the envelope names whatever the status.
fn kind_by_structure(envelope: &Envelope) -> Option<ErrorKind> {
    Some(
        if envelope.is("insufficient_quota")
            || envelope.is("billing_hard_limit_reached")
            || envelope.is("billing_not_active")
        {
            ErrorKind::BillingRequired
        } else if envelope.is("invalid_api_key") || envelope.is("invalid_organization") {
            ErrorKind::Unauthorized
        } else if envelope.is("unsupported_country_region_territory") {
            ErrorKind::RegionUnsupported
        } else if envelope.is("model_not_found") {
            ErrorKind::ModelNotFound
        } else if envelope.is("content_policy_violation") || envelope.is("moderation_blocked") {
            ErrorKind::ContentBlocked
        } else {
            return None;
        },
    )
}

/// The status an error inside a 2xx stands for.
fn status_for(envelope: &Envelope) -> Option<u16> {
    let named = |n: &str| envelope.is(n);
    if named("rate_limit_exceeded") || named("insufficient_quota") {
        Some(429)
    } else if named("invalid_api_key") {
        Some(401)
    } else if named("model_not_found") {
        Some(404)
    } else if named("server_error") {
        Some(500)
    } else if named("invalid_request_error") {
        Some(400)
    } else {
        envelope
            .code
            .as_deref()
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (400..600).contains(c))
    }
}

fn kind_by_status(status: u16, envelope: &Envelope) -> ErrorKind {
    match status {
        400 | 413 | 415 | 422 => ErrorKind::InvalidRequest,
        401 => ErrorKind::Unauthorized,
        // A permission the key lacks (an unverified organization for gpt-image-1, a project
        // without access): a person must change something.
        403 => ErrorKind::Unauthorized,
        // "Invalid URL (POST /v1/images/generation)": the base URL or path is wrong, not the
        // model.
        404 if envelope.message.starts_with("Invalid URL") => ErrorKind::InvalidRequest,
        404 => ErrorKind::ModelNotFound,
        408 | 504 | 524 => ErrorKind::Timeout,
        500..=599 => ErrorKind::Unavailable,
        _ => ErrorKind::Unexpected,
    }
}

/// The facts a 429's message states.
#[derive(Debug, Default, PartialEq)]
struct Stated {
    dimension: Option<Dimension>,
    /// Per day (requests or tokens): the window is a day.
    daily: bool,
    limit: Option<u64>,
    delay: Option<Duration>,
    model: Option<String>,
}

/// A 429 without a billing type: a per-minute limit (rate_limited), a per-day one
/// (quota_exhausted), or a limit of 0 (billing_required: the account has no entitlement).
fn rate_limit(
    message: String,
    headers: &HeaderMap,
    envelope: &Envelope,
    now: Option<Timestamp>,
) -> Error {
    let stated = stated(&envelope.message);
    let suffix = match stated.dimension {
        Some(Dimension::Tpm) => Some("tokens"),
        Some(Dimension::Ipm) => Some("images"),
        Some(Dimension::Rpm | Dimension::Rpd) => Some("requests"),
        None => None,
    };
    let header = |prefix: &str| {
        suffix.and_then(|s| {
            headers
                .get(format!("x-ratelimit-{prefix}-{s}").as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .map(str::to_owned)
        })
    };
    let mut facts = QuotaFacts::default();
    facts.dimension = stated.dimension;
    facts.model = stated.model.clone();
    facts.quota_value = stated
        .limit
        .or_else(|| header("limit").and_then(|v| v.parse().ok()));
    let reset_in = header("reset").and_then(|v| go_duration(&v));
    facts.reset_at = match (reset_in, now) {
        (Some(d), Some(now)) => after(now, d),
        _ => None,
    };
    if facts.quota_value == Some(0) {
        return Error::new(
            ErrorKind::BillingRequired,
            format!("{message} (a limit of 0: this account has no entitlement to it)"),
        )
        .with_quota(facts);
    }
    let wait = now
        .and_then(|now| hints::retry_after_headers(headers, now))
        .or(stated.delay)
        .or(reset_in);
    let kind = if stated.daily {
        if facts.reset_at.is_none() {
            facts.reset_at = match (wait, now) {
                (Some(d), Some(now)) => after(now, d),
                (None, Some(now)) => Some(next_midnight(now, &TimeZone::UTC)),
                _ => None,
            };
        }
        ErrorKind::QuotaExhausted
    } else {
        ErrorKind::RateLimited
    };
    let mut error = Error::new(kind, message);
    if let Some(wait) = wait {
        error = error.with_retry_after(wait);
    } else if let (Some(at), Some(now)) = (facts.reset_at, now) {
        error = error.with_retry_after(hints::until(now, at));
    }
    if facts.is_empty() {
        error
    } else {
        error.with_quota(facts)
    }
}

/// Reads dimension, limit, delay and model from a rate-limit message. The two documented
/// forms: "Rate limit reached for gpt-image-1 in organization org-... on tokens per min (TPM):
/// Limit 100000, Used 99000, Requested 4160. Please try again in 1.896s." and "Rate limit
/// exceeded for images per minute in organization org-.... Limit: 5/1min. Current: 6/1min."
fn stated(message: &str) -> Stated {
    let lower = message.to_ascii_lowercase();
    let mut stated = Stated::default();
    let per_minute = |what: &str| {
        [format!("{what} per min"), format!("{what}/min")]
            .iter()
            .any(|p| lower.contains(p.as_str()))
    };
    let per_day = |what: &str| lower.contains(&format!("{what} per day"));
    if per_minute("images") || lower.contains("(ipm)") {
        stated.dimension = Some(Dimension::Ipm);
    } else if per_minute("tokens") || lower.contains("(tpm)") {
        stated.dimension = Some(Dimension::Tpm);
    } else if per_day("requests") || lower.contains("(rpd)") {
        stated.dimension = Some(Dimension::Rpd);
        stated.daily = true;
    } else if per_day("tokens") || per_day("images") || lower.contains("(tpd)") {
        // A daily token or image limit: no dimension of ours counts it, but the day is over.
        stated.daily = true;
    } else if per_minute("requests") || lower.contains("(rpm)") {
        stated.dimension = Some(Dimension::Rpm);
    }
    stated.limit = number_after(&lower, "limit");
    stated.delay = lower
        .find("try again in ")
        .map(|i| &message[i + "try again in ".len()..])
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|token| go_duration(token.trim_end_matches(['.', ',', ';'])))
        .or_else(|| hints::retry_in_message(message))
        .or_else(|| {
            // Azure-style relays: "Please retry after 8 seconds."
            number_after(&lower, "retry after").and_then(|s| hints::clamp_seconds(s as f64))
        });
    if let Some(start) = lower.find(" for ").map(|i| i + " for ".len())
        && let Some(end) = lower[start..].find(" in organization").map(|e| start + e)
    {
        let name = message[start..end].trim();
        let generic = ["images", "requests", "tokens"]
            .iter()
            .any(|g| name.to_ascii_lowercase().starts_with(g));
        if !name.is_empty() && !name.contains(' ') && !generic {
            stated.model = Some(name.to_owned());
        }
    }
    stated
}

/// The whole number after `word` (skipping `:` and spaces; `,` thousands separators allowed):
/// `Limit: 5/1min` and `Limit 100,000` give 5 and 100000.
fn number_after(lower: &str, word: &str) -> Option<u64> {
    let mut search = 0;
    while let Some(found) = lower[search..].find(word) {
        let start = search + found + word.len();
        let rest = lower[start..].trim_start_matches([':', ' ']);
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(char::is_ascii_digit)
            .collect();
        if let Ok(n) = digits.parse() {
            return Some(n);
        }
        search = start;
    }
    None
}

/// The message an error carries: the upstream's, or what the body was.
fn describe(status: u16, envelope: &Envelope) -> String {
    let mut message = if envelope.message.trim().is_empty() {
        format!("HTTP {status} with no error message")
    } else {
        one_line(&envelope.message)
    };
    if let Some(param) = &envelope.param {
        message.push_str(&format!(" (parameter `{param}`)"));
    }
    message
}

fn not_json_message(status: StatusCode, body: &[u8]) -> String {
    if body.is_empty() {
        return format!("HTTP {} with an empty body", status.as_u16());
    }
    let text = one_line(&String::from_utf8_lossy(body));
    format!(
        "HTTP {} with a body that is not an OpenAI error ({} bytes): {text}",
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
    fn both_documented_message_forms() {
        let s = stated(
            "Rate limit reached for gpt-image-1 in organization org-REDACTED on tokens per min (TPM): Limit 100000, Used 99000, Requested 4160. Please try again in 1.896s. Visit https://platform.openai.com/account/rate-limits to learn more.",
        );
        assert_eq!(s.dimension, Some(Dimension::Tpm));
        assert_eq!(s.limit, Some(100_000));
        assert_eq!(s.delay, Some(Duration::from_millis(1_896)));
        assert_eq!(s.model.as_deref(), Some("gpt-image-1"));
        let s = stated(
            "Rate limit exceeded for images per minute in organization org-REDACTED. Limit: 5/1min. Current: 6/1min. Please visit https://platform.openai.com/docs/guides/rate-limits to learn how to increase your rate limit.",
        );
        assert_eq!(s.dimension, Some(Dimension::Ipm));
        assert_eq!(s.limit, Some(5));
        assert_eq!((s.delay, s.model), (None, None));
        let s = stated(
            "Rate limit reached for dall-e-3 in organization org-x on requests per day (RPD): Limit 0, Used 0, Requested 1.",
        );
        assert!(s.daily);
        assert_eq!((s.dimension, s.limit), (Some(Dimension::Rpd), Some(0)));
        let s = stated("Please retry after 8 seconds.");
        assert_eq!(s.delay, Some(Duration::from_secs(8)));
        assert_eq!(stated("Too many requests"), Stated::default());
        assert_eq!(number_after("limit 100,000 used", "limit"), Some(100_000));
        assert_eq!(number_after("no limits here", "limit"), None);
    }
}

//! Errors OpenRouter relays from the provider behind it, in `metadata.raw`.
//!
//! `raw` is a JSON string (Google's pretty-printed error body, or a plain sentence from a
//! rate-limited upstream) or an object (cline/cline#5449). A Google error body is handed to the
//! Gemini classifier, so a Google location block behind OpenRouter is `region_unsupported`
//! exactly as it would be direct; anything else is left to OpenRouter's own status.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use imagegate_core::{Error, ErrorKind, QuotaFacts, hints};
use jiff::Timestamp;
use serde_json::Value;

use crate::classify::{PROVIDER, one_line};
use crate::envelope::Envelope;

/// The relayed upstream error's classification, when the upstream body decides it.
///
/// `status` is OpenRouter's (effective) status, used when the Google body has no `code`.
pub(crate) fn classify(
    status: u16,
    headers: &HeaderMap,
    envelope: &Envelope,
    now: Option<Timestamp>,
) -> Option<Error> {
    let raw = envelope.raw()?;
    let google = imagegate_google_rpc::status_from_value(raw)?;
    // Any `{"error": {...}}` parses as a status; only a canonical code name (or typed details)
    // makes it Google's. An OpenAI-style upstream error is left to OpenRouter's status.
    let is_google =
        google.status.as_deref().is_some_and(is_code_name) || !google.details.is_empty();
    if !is_google {
        return None;
    }
    let google_status = google
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .filter(|c| c.is_client_error() || c.is_server_error())
        .or_else(|| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let bytes = match raw {
        Value::String(text) => text.as_bytes().to_vec(),
        other => serde_json::to_vec(other).unwrap_or_default(),
    };
    let classified = imagegate_google_rpc::classify(
        google_status,
        headers,
        &bytes,
        now.unwrap_or(Timestamp::UNIX_EPOCH),
        PROVIDER,
    );
    // Google's own short hint (`RetryInfo`, "Please retry in 5s"), for the shared-pool case
    // where Google's per-day reset is not this account's.
    let short_hint = google
        .retry_delay()
        .and_then(hints::protobuf_duration)
        .or_else(|| hints::retry_in_message(&google.message));
    Some(adapt(classified, envelope, now.is_some(), short_hint))
}

/// `RESOURCE_EXHAUSTED`, `FAILED_PRECONDITION`, ...: google.rpc.Code names.
fn is_code_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
}

/// Fits Google's verdict to OpenRouter.
///
/// Without BYOK, OpenRouter calls Google with its own keys: a Google quota error is the shared
/// pool of every OpenRouter user, not this account's quota. It is then `rate_limited` with no
/// quota facts (so the router does not learn a wrong limit for this account), whatever Google
/// said about days or billing. With BYOK it is the caller's own Google project, and Google's
/// verdict stands.
fn adapt(
    error: Error,
    envelope: &Envelope,
    have_clock: bool,
    short_hint: Option<Duration>,
) -> Error {
    let provider = envelope.provider_name().unwrap_or("Google");
    let message = format!(
        "{} (upstream provider {provider}): {}",
        one_line(&envelope.message),
        error.message()
    );
    let quota_kind = matches!(
        error.kind(),
        ErrorKind::RateLimited | ErrorKind::QuotaExhausted | ErrorKind::BillingRequired
    );
    let mut out = Error::new(error.kind(), message);
    if !error.is_temporary() && error.kind().is_temporary_by_default() {
        out = out.set_permanent();
    }
    if let Some(code) = error.upstream_code() {
        out = out.with_upstream_code(code);
    }
    if quota_kind && !envelope.is_byok() {
        out = out.with_kind(ErrorKind::RateLimited);
        // Google's reset of its daily quota is when OpenRouter's Google project recovers, not
        // when this account may try again: only Google's short hint is kept.
        let wait = if error.kind() == ErrorKind::RateLimited {
            error.retry_after()
        } else {
            short_hint
        };
        if let Some(wait) = wait {
            out = out.with_retry_after(wait);
        }
        return out;
    }
    let mut facts = error.quota().clone();
    let wait = if have_clock {
        error.retry_after()
    } else {
        // A reset, and a wait until it, computed from an unknown "now" would be nonsense.
        facts.reset_at = None;
        error
            .retry_after()
            .filter(|_| error.quota().reset_at.is_none())
    };
    if let Some(wait) = wait {
        out = out.with_retry_after(wait);
    }
    if facts != QuotaFacts::default() {
        out = out.with_quota(facts);
    }
    out
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use imagegate_core::{ErrorKind, quota::Dimension};

    use crate::classify::classify_body;

    /// Google's per-day 429 (fixture gemini/generate-content/429-quotafailure-rpd-quotavalue) relayed with BYOK, inside a 200 where no
    /// clock is known: the kind and quota survive, the reset and the wait do not.
    #[test]
    fn without_a_clock_no_reset_is_invented() {
        let google = r#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
              "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier", "quotaValue": "25"}]},
              {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "5s"}]}}"#;
        let body = serde_json::json!({"error": {"code": 429, "message": "Provider returned error",
            "metadata": {"raw": google, "provider_name": "Google AI Studio", "is_byok": true}}});
        let body = serde_json::to_vec(&body).unwrap();
        let error = classify_body(
            StatusCode::TOO_MANY_REQUESTS,
            &http::HeaderMap::new(),
            &body,
            None,
        );
        assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
        assert_eq!(error.quota().dimension, Some(Dimension::Rpd));
        assert_eq!(error.quota().quota_value, Some(25));
        assert_eq!(error.quota().reset_at, None);
        assert_eq!(error.retry_after(), None);
    }

    /// An OpenAI-style upstream error in `raw` is not Google's: OpenRouter's status decides.
    #[test]
    fn non_google_raw_objects_are_left_to_the_status() {
        let body = br#"{"error": {"code": 502, "message": "Upstream error",
            "metadata": {"raw": {"error": {"message": "bad", "type": "server_error", "code": "x"}}}}}"#;
        let error = classify_body(StatusCode::BAD_GATEWAY, &http::HeaderMap::new(), body, None);
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        assert_eq!(error.upstream_code(), Some("502"));
    }
}

//! Errors OpenRouter relays from the provider behind it, in `metadata.raw`.
//!
//! `raw` is a JSON string (Google's pretty-printed error body, or a plain sentence from a
//! rate-limited upstream) or an object (cline/cline#5449). A Google error body is handed to the
//! Gemini classifier, so a Google location block behind OpenRouter is `region_unsupported`
//! exactly as it would be direct; anything else is left to OpenRouter's own status.

use http::{HeaderMap, StatusCode};
use imagegate_core::{Error, ErrorKind, QuotaFacts};
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
    let body = match raw {
        Value::String(text) => serde_json::from_str::<Value>(text).ok()?,
        Value::Object(_) | Value::Array(_) => raw.clone(),
        _ => return None,
    };
    let google = google_error(&body)?;
    let google_status = google
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .or_else(|| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let classified = crate::google::classify(
        google_status,
        headers,
        &bytes,
        now.unwrap_or(Timestamp::UNIX_EPOCH),
        PROVIDER,
    );
    Some(adapt(classified, envelope, now.is_some()))
}

/// The `error` object of a Google error body (`{"error": {"status": "..."}}`, also wrapped in a
/// one-element array as Gemini's streaming endpoint sends it), or `None` for anyone else's.
fn google_error(body: &Value) -> Option<&serde_json::Map<String, Value>> {
    let body = match body {
        Value::Array(items) if items.len() == 1 => &items[0],
        other => other,
    };
    let error = body.get("error")?.as_object()?;
    error
        .get("status")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c == '_'))?;
    Some(error)
}

/// Fits Google's verdict to OpenRouter.
///
/// Without BYOK, OpenRouter calls Google with its own keys: a Google quota error is the shared
/// pool of every OpenRouter user, not this account's quota. It is then `rate_limited` with no
/// quota facts (so the router does not learn a wrong limit for this account), whatever Google
/// said about days or billing. With BYOK it is the caller's own Google project, and Google's
/// verdict stands.
fn adapt(error: Error, envelope: &Envelope, have_clock: bool) -> Error {
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
        if let Some(wait) = error.retry_after() {
            out = out.with_retry_after(wait);
        }
        return out;
    }
    if let Some(wait) = error.retry_after() {
        out = out.with_retry_after(wait);
    }
    let mut facts = error.quota().clone();
    if !have_clock {
        // A reset computed from an unknown "now" would be nonsense.
        facts.reset_at = None;
    }
    if facts != QuotaFacts::default() {
        out = out.with_quota(facts);
    }
    out
}

//! Classification of Vertex AI answers: Google's `google.rpc.Status` envelope, read by
//! `imagegate-google-rpc`, with one Vertex rule on top.
//!
//! Vertex serves Gemini and Imagen from Dynamic Shared Quota: capacity shared by every customer
//! of a region, not a per-project limit. Its 429 `RESOURCE_EXHAUSTED` ("Resource exhausted,
//! please try again later", usually without `RetryInfo`) is therefore always `rate_limited`
//! and carries no quota facts: a limit learned from it would be wrong, and holding the pool for
//! a day on a per-day quota id would be wrong too. Another location (or `global`) is the
//! remedy, so the router moves on. A `RetryInfo` delay, when present, is kept.

use http::{HeaderMap, StatusCode};
use imagegate_core::{Error, ErrorKind, GenerateResponse, QuotaFacts, hints};
use jiff::Timestamp;

/// The provider name every error and response carries.
pub(crate) const PROVIDER: &str = "vertex";

/// Classifies a failed Vertex AI answer into one [`Error`]. Pure; never panics.
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Error {
    let error = imagegate_google_rpc::classify(status, headers, body, now, PROVIDER);
    if status != StatusCode::TOO_MANY_REQUESTS {
        return error;
    }
    // The wait the answer states (RetryInfo, Retry-After, "retry in Ns"), never one derived
    // from a quota id: a per-day id does not mean the capacity returns at midnight.
    let retry_after = imagegate_google_rpc::parse_status(body)
        .as_ref()
        .and_then(|s| s.retry_delay().and_then(hints::protobuf_duration))
        .or_else(|| hints::retry_after_headers(headers, now))
        .or_else(|| hints::retry_in_message(&String::from_utf8_lossy(body)));
    let message = format!(
        "{} (Vertex AI's shared capacity in this location is busy: another location or \
         `global` may have room)",
        error.message()
    );
    let mut limited = Error::new(ErrorKind::RateLimited, message)
        .with_quota(QuotaFacts::default())
        .with_provider(PROVIDER)
        .with_http_status(429);
    if let Some(code) = error.upstream_code() {
        limited = limited.with_upstream_code(code.to_owned());
    }
    match retry_after {
        Some(wait) => limited.with_retry_after(wait),
        None => limited,
    }
}

/// Any answer for a request to `model`: a 2xx through the shared Gemini reader (a 200 carrying
/// Google's error envelope is classified as that error), everything else through
/// [`parse_error`].
///
/// # Errors
/// Every failure as one classified [`Error`].
pub fn parse_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
    now: Timestamp,
) -> Result<GenerateResponse, Error> {
    if status.is_success() {
        if imagegate_google_rpc::parse_status(body).is_some() {
            return Err(parse_error(status, headers, body, now));
        }
        imagegate_gemini_wire::parse_success(body, model, PROVIDER)
    } else {
        Err(parse_error(status, headers, body, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_day_quota_429_on_vertex_teaches_nothing() {
        let body = br#"{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "aiplatform.googleapis.com/generate_content_requests_per_day", "quotaId": "GenerateRequestsPerDayPerProjectPerModel", "quotaValue": "0"}]},
                        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]}}"#;
        let now: Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
        let e = parse_error(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body, now);
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        assert!(e.quota().is_empty(), "{:?}", e.quota());
        assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(7)));
        assert_eq!(e.upstream_code(), Some("RESOURCE_EXHAUSTED"));
        assert!(e.is_temporary());
    }
}

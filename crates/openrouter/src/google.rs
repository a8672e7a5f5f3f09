//! The bridge to the Gemini classifier for Google errors relayed by OpenRouter.
//!
//! Temporary minimal detection until `imagegate_google_rpc::classify` lands: the cases that
//! matter behind OpenRouter (location, quota, overload, key) read from `error.status` and the
//! HTTP code, never from text searches for numbers.

use http::{HeaderMap, StatusCode};
use imagegate_core::{Error, ErrorKind};
use jiff::Timestamp;
use serde_json::Value;

/// Classifies a Google error body.
pub(crate) fn classify(
    status: StatusCode,
    _headers: &HeaderMap,
    body: &[u8],
    _now: Timestamp,
    provider: &str,
) -> Error {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let error = value.get("error").cloned().unwrap_or(Value::Null);
    let code = error
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = match code {
        "FAILED_PRECONDITION" if message.to_ascii_lowercase().contains("location") => {
            ErrorKind::RegionUnsupported
        }
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimited,
        "UNAVAILABLE" | "INTERNAL" => ErrorKind::Unavailable,
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => ErrorKind::Unauthorized,
        "NOT_FOUND" => ErrorKind::ModelNotFound,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" => ErrorKind::InvalidRequest,
        _ => match status.as_u16() {
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Unexpected,
        },
    };
    Error::new(kind, message)
        .with_provider(provider)
        .with_upstream_code(code)
}

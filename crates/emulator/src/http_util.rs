//! Small helpers shared by both dialects: turning wire answers into responses, reading the
//! body within the size limit.

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use imagegate_mock::sim::wire::WireAnswer;
use serde_json::Value;

/// Google's content type, as its front end sends it.
pub(crate) const GOOGLE_JSON: &str = "application/json; charset=UTF-8";

/// OpenRouter's content type.
pub(crate) const PLAIN_JSON: &str = "application/json";

/// A response with `status`, `headers` and `body`, exactly.
pub(crate) fn raw(status: StatusCode, headers: HeaderMap, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A wire answer of the simulated upstream, byte for byte.
pub(crate) fn wire(answer: WireAnswer) -> Response {
    raw(answer.status, answer.headers, answer.body)
}

/// A Gemini wire answer in Google's layout: JSON bodies re-indented with two spaces and a
/// trailing newline, as its front end sends them (fixtures/gemini keep that form); anything
/// else byte for byte.
pub(crate) fn google_wire(answer: WireAnswer) -> Response {
    match serde_json::from_slice::<Value>(&answer.body) {
        Ok(value) => {
            let body = serde_json::to_string_pretty(&value)
                .map(|s| s + "\n")
                .unwrap_or_default();
            raw(answer.status, answer.headers, body)
        }
        Err(_) => wire(answer),
    }
}

/// `value` as JSON with `content_type`; Google's pretty form (2-space indent, trailing
/// newline) when `pretty`, OpenRouter's compact form otherwise.
pub(crate) fn json(
    status: StatusCode,
    content_type: &'static str,
    value: &Value,
    pretty: bool,
) -> Response {
    let body = if pretty {
        serde_json::to_string_pretty(value).map(|s| s + "\n")
    } else {
        serde_json::to_string(value)
    }
    .unwrap_or_default();
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    raw(status, headers, body)
}

/// What became of a request body.
pub(crate) enum BodyProblem {
    /// Over [`crate::MAX_BODY_BYTES`].
    TooLarge,
    /// Could not be read (the client went away mid-body, a broken chunked encoding).
    Unreadable(String),
}

/// The body, or why there is none.
pub(crate) fn body(result: Result<Bytes, BytesRejection>) -> Result<Bytes, BodyProblem> {
    result.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyProblem::TooLarge
        } else {
            BodyProblem::Unreadable(rejection.body_text())
        }
    })
}

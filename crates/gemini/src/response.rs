//! Reading what Gemini answers: images from a 200 (the shared `imagegate-gemini-wire` reader),
//! the right error from everything else (`imagegate-google-rpc`).
//!
//! A 200 is not always a success: a prompt refused by a safety filter, an image filtered after
//! generation, or an answer with only text all come back as 200 (ai.google.dev/api/generate-content; the fixtures gemini/generate-content/200-*). Those
//! become `content_blocked` or `no_image` with the upstream's reason, so the router does not
//! mistake them for quota problems.

use http::{HeaderMap, StatusCode};
use imagegate_core::{Error, GenerateResponse};
use jiff::Timestamp;

/// The provider name on every error and response.
pub const PROVIDER: &str = "gemini";

/// Classifies a non-success answer (delegates to `imagegate-google-rpc`, provider `gemini`).
pub fn parse_error(status: StatusCode, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Error {
    imagegate_google_rpc::classify(status, headers, body, now, PROVIDER)
}

/// Any answer: a 2xx goes to [`parse_success`], everything else to [`parse_error`]. The served
/// model is the one the answer reports (`modelVersion`), `unknown` when it reports none; use
/// [`parse_response_for`] to name the requested model instead.
///
/// # Errors
/// Every failure as one classified [`Error`].
pub fn parse_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<GenerateResponse, Error> {
    parse_response_for("unknown", status, headers, body, now)
}

/// [`parse_response`] for a request sent to `model`.
///
/// # Errors
/// Every failure as one classified [`Error`].
pub fn parse_response_for(
    model: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<GenerateResponse, Error> {
    if status.is_success() {
        // A relay may answer 200 with Google's error envelope inside.
        if imagegate_google_rpc::parse_status(body).is_some() {
            return Err(parse_error(status, headers, body, now));
        }
        parse_success(body, model)
    } else {
        Err(parse_error(status, headers, body, now))
    }
}

/// Reads a 200 body from `generateContent` or Imagen `:predict`
/// ([`imagegate_gemini_wire::parse_success`] with provider `gemini`).
///
/// # Errors
/// `invalid_response`, `content_blocked` or `no_image`, as the shared reader decides.
pub fn parse_success(body: &[u8], model: &str) -> Result<GenerateResponse, Error> {
    imagegate_gemini_wire::parse_success(body, model, PROVIDER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegate_core::ErrorKind;

    #[test]
    fn a_200_with_google_error_inside_is_classified() {
        let body = br#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#;
        let e = parse_response(
            StatusCode::OK,
            &HeaderMap::new(),
            body,
            Timestamp::UNIX_EPOCH,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert_eq!(e.provider(), Some("gemini"));
    }
}

//! What every fuzz target shares: turning the structured input into HTTP types, and the
//! invariants checked beyond "no panic".
//!
//! - a parsed error always has a kind (one of [`ErrorKind::ALL`], with a name and advice);
//! - a retry hint is within its documented bounds (`0..=MAX_RETRY_HINT`, core's `hints`);
//! - a key the process holds never appears in an error's `Display` or `Debug`, however the
//!   upstream echoes it.
//!
//! A broken invariant panics, which libFuzzer reports as a crash with the input that did it.

use std::sync::LazyLock;
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use imagegate_core::hints::MAX_RETRY_HINT;
use imagegate_core::{Error, ErrorKind, GenerateResponse, secret::ApiKey};
use jiff::Timestamp;

pub use imagegate_fuzz_input::{Exchange, GatewayRequest, KEY, TextFile, splice};

/// The key, registered as a held `ApiKey` the way a provider holds its key.
static HELD: LazyLock<ApiKey> = LazyLock::new(|| ApiKey::new(KEY));

/// Makes the process hold [`KEY`] (idempotent).
pub fn hold_key() {
    LazyLock::force(&HELD);
}

/// The instant parsers are told it is (a fixed one: the same input gives the same result).
pub fn now() -> Timestamp {
    Timestamp::from_second(1_768_478_400).unwrap_or(Timestamp::UNIX_EPOCH) // 2026-01-15T12:00:00Z
}

/// The headers that are valid HTTP; invalid names or values are left out, as the HTTP stack
/// would never hand them to a parser.
pub fn header_map(headers: &[(Vec<u8>, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            map.append(name, value);
        }
    }
    map
}

/// The exchange's status as an `http` status code.
pub fn status(exchange: &Exchange) -> StatusCode {
    StatusCode::from_u16(exchange.status_code()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Checks a retry hint's bounds.
pub fn check_hint(what: &str, hint: Option<Duration>) {
    if let Some(d) = hint {
        assert!(
            d <= MAX_RETRY_HINT,
            "{what}: hint {d:?} beyond MAX_RETRY_HINT"
        );
    }
}

/// Checks what a response parser made of an answer: a success has an image (and prints), an
/// error passes [`check_error`].
pub fn check_response(outcome: &Result<GenerateResponse, Error>) {
    match outcome {
        Ok(response) => {
            assert!(!response.images.is_empty(), "a success without an image");
            let _ = format!("{response:?}");
        }
        Err(error) => check_error(error),
    }
}

/// Checks an error from a parser: a kind, bounded hints, no key in its text.
pub fn check_error(error: &Error) {
    let kind = error.kind();
    assert!(ErrorKind::ALL.contains(&kind), "unknown kind {kind:?}");
    assert!(!kind.as_str().is_empty());
    check_hint("retry_after", error.retry_after());
    assert_no_key("Display", &error.to_string());
    assert_no_key("Debug", &format!("{error:?}"));
    let json = serde_json::to_string(&kind).unwrap_or_default();
    assert_eq!(json, format!("\"{}\"", kind.as_str()));
}

/// Panics when `text` holds the key.
pub fn assert_no_key(what: &str, text: &str) {
    assert!(
        !text.contains(KEY),
        "the held key appears in the {what}: {text}"
    );
}

/// Panics when `text` holds `secret`.
pub fn assert_absent(secret: &str, what: &str, text: &str) {
    assert!(
        !text.contains(secret),
        "the secret appears in the {what}: {text}"
    );
}

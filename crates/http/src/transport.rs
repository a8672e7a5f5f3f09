//! Transport failures as error kinds, the same for every provider.
//!
//! | what happened                                   | kind          |
//! |-------------------------------------------------|---------------|
//! | no complete answer within the timeout           | `timeout`     |
//! | the connection could not be made (DNS, refused) | `connect`     |
//! | the answer was cut off (reset mid-body, bad framing) | `unavailable` |
//! | anything else in transit                        | `unavailable` |
//! | the request could not even be built             | `unexpected`  |
//!
//! A reset mid-body is the upstream (or a proxy) failing, exactly like a 502: temporary, and
//! the router's backoff applies. [`HttpShell::send`](crate::HttpShell::send) adds the status
//! the answer began with: a success status cut off means the upstream served and counted the
//! call, so the router keeps its quota use and its price. The URL is never part of the message (a relay's URL may be
//! private, and URLs are where keys leak elsewhere).

use std::time::Duration;

use imagegate_core::{Error, ErrorKind, human_duration};

/// `error` as one [`Error`] of the kinds in the table above. `host` names the endpoint for a
/// connect failure; `timeout` is the limit that applied.
pub fn transport_error(error: reqwest::Error, host: &str, timeout: Duration) -> Error {
    let error = error.without_url();
    let (kind, what) = if error.is_timeout() {
        (
            ErrorKind::Timeout,
            format!("no complete answer within {}", human_duration(timeout)),
        )
    } else if error.is_connect() {
        (ErrorKind::Connect, format!("cannot connect to {host}"))
    } else if error.is_body() || error.is_decode() {
        (ErrorKind::Unavailable, "the answer was cut off".to_owned())
    } else if error.is_builder() {
        (
            ErrorKind::Unexpected,
            "the request could not be built".to_owned(),
        )
    } else {
        (
            ErrorKind::Unavailable,
            "the request failed in transit".to_owned(),
        )
    };
    let detail = chain(&error);
    Error::new(kind, format!("{what}: {detail}")).with_source(error)
}

/// The error and its causes on one line, each once.
fn chain(error: &reqwest::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = std::error::Error::source(error);
    while let Some(cause) = current {
        let text = cause.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        current = cause.source();
    }
    parts.join(": ")
}

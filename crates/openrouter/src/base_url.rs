//! The base URL: where OpenRouter (or a relay speaking its protocol) lives.
//!
//! Decision: the base URL is the scheme, host and optional path prefix *before* the API's own
//! `/api/v1` (`https://openrouter.ai`, `http://127.0.0.1:8080`, `https://relay.example/openrouter`).
//! Official SDKs and the OpenAI SDK take `https://openrouter.ai/api/v1` instead, and people copy
//! that into `OPENROUTER_BASE_URL`; so a trailing `/api/v1` is accepted and removed, and both
//! spellings reach the same endpoints. Fixtures and mock servers use the API's real paths
//! (`/api/v1/chat/completions`), which this keeps true.

use imagegate_core::Error;

/// OpenRouter's public root.
pub(crate) const DEFAULT_BASE_URL: &str = "https://openrouter.ai";

/// The API's own path under the base URL.
const API_PATH: &str = "/api/v1";

/// Validates a base URL and returns it normalised: no trailing `/`, no trailing `/api/v1`
/// (the shared check: [`imagegate_http::base_url::normalise`]).
///
/// # Errors
/// [`imagegate_core::ErrorKind::ConfigInvalid`] for text that is not an `http`/`https` URL, or
/// that carries credentials, a query or a fragment (keys belong in headers, never in URLs).
pub(crate) fn normalise(text: &str) -> Result<String, Error> {
    imagegate_http::base_url::normalise(text, "OpenRouter", API_PATH)
}

/// The URL of an API endpoint (`chat/completions`, `key`) under a normalised base.
pub(crate) fn endpoint(base: &str, name: &str) -> String {
    format!("{base}{API_PATH}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_reach_the_same_endpoints() {
        for text in [
            "https://openrouter.ai",
            "https://openrouter.ai/",
            "https://openrouter.ai/api/v1",
            " https://openrouter.ai/api/v1/ ",
        ] {
            let base = normalise(text).unwrap();
            assert_eq!(
                endpoint(&base, "chat/completions"),
                "https://openrouter.ai/api/v1/chat/completions",
                "{text}"
            );
        }
        let relay = normalise("http://127.0.0.1:9000/relay/api/v1").unwrap();
        assert_eq!(
            endpoint(&relay, "key"),
            "http://127.0.0.1:9000/relay/api/v1/key"
        );
    }

    #[test]
    fn bad_base_urls_are_config_errors() {
        for text in [
            "openrouter.ai",
            "ftp://openrouter.ai",
            "https://user:pw@openrouter.ai",
            "https://openrouter.ai/?key=abc",
            "",
        ] {
            let err = normalise(text).unwrap_err();
            assert_eq!(
                err.kind(),
                imagegate_core::ErrorKind::ConfigInvalid,
                "{text}"
            );
        }
    }
}

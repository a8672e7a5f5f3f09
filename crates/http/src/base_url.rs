//! Base URLs: where a provider's API (or a relay speaking its protocol) lives.
//!
//! A base URL is the scheme, host, port and an optional path prefix *before* the API's own
//! path (`https://openrouter.ai`, `http://127.0.0.1:8080/relay`). SDKs often take the URL with
//! the API's path included (`https://openrouter.ai/api/v1`), and people copy that; so a trailing
//! API path is accepted and removed, and both spellings reach the same endpoints. Credentials,
//! queries and fragments are refused: a key in a URL ends up in logs, proxies and `Referer`s.

use imagegate_core::Error;
use reqwest::Url;

/// Validates `text` as a base URL for `api` (a human name: "Gemini", "OpenRouter") and returns
/// it normalised: no trailing `/`, and no trailing `api_path` (`/v1beta`, `/api/v1`).
///
/// # Errors
/// [`imagegate_core::ErrorKind::ConfigInvalid`] for text that is not an `http`/`https` URL
/// with a host, or that carries credentials, a query or a fragment. The message never repeats
/// a URL that carries credentials.
pub fn normalise(text: &str, api: &str, api_path: &str) -> Result<String, Error> {
    let text = text.trim();
    let bad = |why: String| Error::config(format!("invalid {api} base URL: {why}"));
    let url = Url::parse(text).map_err(|e| {
        bad(format!(
            "{e}; expected the scheme, host and optional path prefix, e.g. https://host"
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "the scheme must be http or https, not `{}`",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("it has no host".to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "it must not carry credentials; the key goes in a header, read from its environment variable"
                .to_owned(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad(
            "it must not have a query or fragment; the key goes in a header".to_owned(),
        ));
    }
    let mut base = url.as_str().trim_end_matches('/').to_owned();
    let suffix = api_path.trim_end_matches('/');
    if !suffix.is_empty()
        && let Some(stripped) = base.strip_suffix(suffix)
    {
        base = stripped.trim_end_matches('/').to_owned();
    }
    Ok(base)
}

/// The host of a normalised base URL, for messages ("cannot connect to HOST").
pub fn host_of(base: &str) -> Option<String> {
    Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_reach_the_same_base_and_prefixes_stay() {
        for text in [
            "https://openrouter.ai",
            "https://openrouter.ai/",
            "https://openrouter.ai/api/v1",
            " https://openrouter.ai/api/v1/ ",
        ] {
            assert_eq!(
                normalise(text, "OpenRouter", "/api/v1").unwrap(),
                "https://openrouter.ai",
                "{text}"
            );
        }
        assert_eq!(
            normalise("http://127.0.0.1:9000/relay/v1beta", "Gemini", "/v1beta").unwrap(),
            "http://127.0.0.1:9000/relay"
        );
        assert_eq!(
            normalise("http://relay.local:8080/gemini/", "Gemini", "/v1beta").unwrap(),
            "http://relay.local:8080/gemini"
        );
        assert_eq!(
            host_of("http://relay.local:8080/gemini").as_deref(),
            Some("relay.local")
        );
    }

    #[test]
    fn bad_base_urls_are_config_errors_that_never_echo_credentials() {
        for text in [
            "not a url",
            "openrouter.ai",
            "ftp://openrouter.ai",
            "https://user:hunter2@openrouter.ai",
            "https://openrouter.ai/?key=abc",
            "https://openrouter.ai/#x",
            "",
        ] {
            let err = normalise(text, "OpenRouter", "/api/v1").unwrap_err();
            assert_eq!(
                err.kind(),
                imagegate_core::ErrorKind::ConfigInvalid,
                "{text}"
            );
            assert!(err.message().contains("OpenRouter base URL"), "{err}");
            assert!(!err.message().contains("hunter2"), "{err}");
        }
    }
}

//! API keys: read from a named environment variable, sent in a header marked sensitive.

use http::HeaderValue;
use imagegate_core::{Error, secret::ApiKey};

/// The key in the environment variable `var`, trimmed.
///
/// `help` says where to get a key (a URL), and ends the message when the variable is unset.
///
/// # Errors
/// [`imagegate_core::ErrorKind::ConfigInvalid`] naming the variable (never its value) when it
/// is unset, empty or not Unicode.
pub fn key_from_env(var: &str, help: &str) -> Result<ApiKey, Error> {
    key_from_lookup(var, help, |name| std::env::var(name).ok())
}

/// [`key_from_env`] reading variables through `lookup` (tests and embedders that keep their
/// configuration elsewhere must not mutate the process environment).
///
/// # Errors
/// As [`key_from_env`].
pub fn key_from_lookup(
    var: &str,
    help: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<ApiKey, Error> {
    match lookup(var) {
        Some(key) if !key.trim().is_empty() => Ok(ApiKey::new(key.trim())),
        _ => {
            let help = if help.is_empty() {
                String::new()
            } else {
                format!(" ({help})")
            };
            Err(Error::config(format!(
                "needs an API key: set the environment variable {var}{help}"
            )))
        }
    }
}

/// `value` (a key, or `Bearer <key>`) as a header value marked sensitive, so the HTTP stack
/// never logs it and HTTP/2 never indexes it.
///
/// # Errors
/// [`imagegate_core::ErrorKind::ConfigInvalid`] when the key holds characters a header cannot
/// carry (a pasted newline, say). The message does not repeat the key.
pub fn sensitive_header(value: &str) -> Result<HeaderValue, Error> {
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        Error::config("the API key holds characters not allowed in an HTTP header (a pasted newline or space?)")
    })?;
    header.set_sensitive(true);
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_names_the_variable_and_a_bad_one_is_not_echoed() {
        let err = key_from_lookup("MY_KEY", "https://example.invalid/keys", |_| None).unwrap_err();
        assert_eq!(err.kind(), imagegate_core::ErrorKind::ConfigInvalid);
        assert!(err.message().contains("MY_KEY"), "{err}");
        assert!(err.message().contains("example.invalid/keys"), "{err}");
        let blank = key_from_lookup("MY_KEY", "", |_| Some(" \n".to_owned())).unwrap_err();
        assert!(blank.message().contains("MY_KEY"), "{blank}");
        let key = key_from_lookup("MY_KEY", "", |_| Some(" abc \n".to_owned())).unwrap();
        assert_eq!(key.expose(), "abc");

        let header = sensitive_header("Bearer abc").unwrap();
        assert!(header.is_sensitive());
        let err = sensitive_header("abc\ndef-secret").unwrap_err();
        assert!(!err.message().contains("def-secret"), "{err}");
    }
}

//! Each request's maximum wait for capacity, from what the client said.
//!
//! `x-imagegate-max-wait` (seconds) wins; else the client's own timeout header, so the gateway
//! answers 429 while the client is still listening (`X-Server-Timeout` from google-genai,
//! `x-stainless-read-timeout` from the openai SDK); else `server.max_wait`.

use std::time::Duration;

use http::HeaderMap;

/// The header a client sets to choose its maximum wait, in seconds.
pub(crate) const MAX_WAIT_HEADER: &str = "x-imagegate-max-wait";

/// The share of a client's timeout left for the generation itself after waiting: the wait
/// is the timeout minus this, but never less than half the timeout.
const GENERATION_ALLOWANCE: Duration = Duration::from_secs(60);

/// The longest wait any header may ask for (a day: a daily reset is the longest wait there is).
const LONGEST: Duration = Duration::from_secs(86_400);

/// A header value that is not a number of seconds.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BadHeader(pub(crate) String);

fn seconds(headers: &HeaderMap, name: &str) -> Result<Option<Duration>, BadHeader> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => {
            Ok(Some(Duration::from_secs_f64(s.min(LONGEST.as_secs_f64()))))
        }
        _ => Err(BadHeader(format!(
            "{name}: expected a number of seconds (0 or more), got `{}`",
            text.chars().take(40).collect::<String>()
        ))),
    }
}

/// What the client's own timeout leaves for waiting.
fn from_timeout(timeout: Duration) -> Duration {
    timeout
        .saturating_sub(GENERATION_ALLOWANCE)
        .max(timeout / 2)
}

/// This request's maximum wait.
///
/// # Errors
/// [`BadHeader`] naming the header when `x-imagegate-max-wait` is not a number of seconds
/// (the SDK timeout headers are the SDKs' own: a bad one is ignored).
pub(crate) fn max_wait(headers: &HeaderMap, default: Duration) -> Result<Duration, BadHeader> {
    if let Some(wait) = seconds(headers, MAX_WAIT_HEADER)? {
        return Ok(wait);
    }
    for name in ["x-server-timeout", "x-stainless-read-timeout"] {
        if let Ok(Some(timeout)) = seconds(headers, name) {
            return Ok(from_timeout(timeout));
        }
    }
    Ok(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_explicit_header_then_the_sdk_timeouts_then_the_default() {
        let d = Duration::from_secs(30);
        assert_eq!(max_wait(&headers(&[]), d), Ok(d));
        assert_eq!(
            max_wait(
                &headers(&[
                    ("x-imagegate-max-wait", "0.25"),
                    ("x-server-timeout", "600")
                ]),
                d
            ),
            Ok(Duration::from_millis(250))
        );
        assert_eq!(
            max_wait(&headers(&[("x-server-timeout", "600")]), d),
            Ok(Duration::from_secs(540))
        );
        assert_eq!(
            max_wait(&headers(&[("x-stainless-read-timeout", "600.0")]), d),
            Ok(Duration::from_secs(540))
        );
        assert_eq!(
            max_wait(&headers(&[("x-stainless-read-timeout", "20")]), d),
            Ok(Duration::from_secs(10))
        );
        assert_eq!(
            max_wait(&headers(&[("x-server-timeout", "soon")]), d),
            Ok(d)
        );
        let e = max_wait(&headers(&[("x-imagegate-max-wait", "-1")]), d).unwrap_err();
        assert!(e.0.starts_with("x-imagegate-max-wait"), "{e:?}");
        assert_eq!(
            max_wait(&headers(&[("x-imagegate-max-wait", "1e12")]), d),
            Ok(LONGEST)
        );
    }
}

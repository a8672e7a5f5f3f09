//! [`HttpShell`]: one request, one answer, under the rules every provider shares.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, StatusCode};
use imagegate_core::{Error, ErrorKind, human_duration};

use crate::transport::transport_error;

/// The default time limit for one request. Image generation takes 30-45 s and more, and a
/// timed-out request may already be billed, so the limit is generous.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The default bound on a response body: 64 MiB. A 4K image arrives base64-encoded in JSON
/// (a few MiB to ~20 MiB for the largest PNGs), so this is several times what a real answer
/// needs, and small enough that a runaway upstream cannot exhaust memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

/// An upstream's answer: status, headers and the whole (bounded) body.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status (never a 3xx: redirects are refused, see [`HttpShell::send`]).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most [`HttpShell::max_response_bytes`] long.
    pub body: Bytes,
}

/// The HTTP client every provider sends through.
///
/// # Contract
/// - **No retries**: the client is built with `retry::never()`, so one call is at most one
///   request upstream (the router owns retries: it must see every 429).
/// - **No redirects**: a redirect is answered with an error, never followed. Following one to
///   another origin would carry the key header there (`reqwest`'s default policy strips only
///   `Authorization` and cookies, not `x-goog-api-key`); and a redirect from a base URL means
///   the base URL is wrong, which a person should fix.
/// - **A timeout** per request, from connecting until the body is read.
/// - **A bounded body**, read chunk by chunk: a larger answer is an error naming the bound,
///   and is never buffered whole.
/// - rustls, never OpenSSL (the workspace's `reqwest` features).
#[derive(Clone)]
pub struct HttpShell {
    client: Result<reqwest::Client, String>,
    timeout: Duration,
    max_response_bytes: u64,
}

impl Default for HttpShell {
    fn default() -> Self {
        HttpShell::new()
    }
}

impl HttpShell {
    /// A shell with its own client, [`DEFAULT_TIMEOUT`] and [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .retry(reqwest::retry::never())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.without_url().to_string());
        HttpShell {
            client,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// Uses `client` (shared connection pools, proxies, custom TLS). Build it with
    /// `.retry(reqwest::retry::never())` and `.redirect(reqwest::redirect::Policy::none())`:
    /// retries belong to the router, and a followed redirect can carry the key elsewhere.
    /// Redirect answers are refused either way.
    #[must_use]
    pub fn with_client(mut self, client: reqwest::Client) -> Self {
        self.client = Ok(client);
        self
    }

    /// The time limit for one request, from connecting until the body is read.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The largest response body accepted, in bytes.
    #[must_use]
    pub fn with_max_response_bytes(mut self, bytes: u64) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The configured per-request time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The configured bound on a response body, in bytes.
    pub fn max_response_bytes(&self) -> u64 {
        self.max_response_bytes
    }

    /// A request to `url` with the shell's timeout; add headers and a body, then
    /// [`send`](Self::send) it.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] when the HTTP client could not be built (no TLS roots).
    pub fn request(&self, method: Method, url: &str) -> Result<reqwest::RequestBuilder, Error> {
        let client = self
            .client
            .as_ref()
            .map_err(|why| Error::config(format!("the HTTP client could not be built: {why}")))?;
        Ok(client.request(method, url).timeout(self.timeout))
    }

    /// Sends `request` and reads the answer; `host` names the endpoint in messages.
    ///
    /// # Errors
    /// - a transport failure, as [`crate::transport_error`] maps it; one while reading the body
    ///   carries the status the answer began with;
    /// - a redirect (3xx): [`ErrorKind::Unexpected`] (as the error model classifies a status
    ///   no provider documents) naming the status and the origin it points to; it is not
    ///   followed, so the key never reaches that origin;
    /// - a body over [`max_response_bytes`](Self::max_response_bytes):
    ///   [`ErrorKind::InvalidResponse`] naming the bound (stopped reading at the bound, or at
    ///   once when `Content-Length` says so).
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        host: &str,
    ) -> Result<Answer, Error> {
        let mut response = request
            .send()
            .await
            .map_err(|e| transport_error(e, host, self.timeout))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(redirect_error(status, response.headers()));
        }
        let headers = response.headers().clone();
        let announced = response.content_length();
        if let Some(length) = announced
            && length > self.max_response_bytes
        {
            return Err(self.too_large(status, Some(length)));
        }
        // The whole body in one buffer of the announced size (within the bound, checked
        // above): a 4K image's answer is ~20 MB, and growing a buffer by doubling would hold
        // up to twice that, plus the copy at each step (docs/performance.md, "Memory").
        let mut body =
            BytesMut::with_capacity(announced.and_then(|n| usize::try_from(n).ok()).unwrap_or(0));
        // A body cut off keeps the status it began with: after a success status the upstream
        // served (counted, billed) the request and only the answer was lost, which the router
        // must know to keep the call counted.
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(e, host, self.timeout).with_http_status(status.as_u16()))?
        {
            let len = u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX);
            if len > self.max_response_bytes {
                return Err(self.too_large(status, None));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status,
            headers,
            body: body.freeze(),
        })
    }

    fn too_large(&self, status: StatusCode, announced: Option<u64>) -> Error {
        let announced = announced
            .map(|n| format!(" (it announced {n} bytes)"))
            .unwrap_or_default();
        Error::new(
            ErrorKind::InvalidResponse,
            format!(
                "the answer is larger than the bound of {} bytes ({}){announced}; imagegate \
                 stopped reading it. Raise the provider's `max_response_bytes` if the upstream \
                 really sends answers that large",
                self.max_response_bytes,
                bytes_human(self.max_response_bytes),
            ),
        )
        .with_http_status(status.as_u16())
    }
}

/// A refused redirect: the status and where it pointed (scheme, host and port only: a path or
/// query might hold anything).
fn redirect_error(status: StatusCode, headers: &HeaderMap) -> Error {
    let target = headers
        .get(http::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| reqwest::Url::parse(v).ok())
        .map(|u| format!(" to {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    Error::new(
        ErrorKind::Unexpected,
        format!(
            "the upstream answered {status} with a redirect{target}; imagegate does not follow \
             redirects (the key would travel with it): set the base URL to the address that \
             answers directly"
        ),
    )
    .with_http_status(status.as_u16())
}

/// `64 MiB`, `512 KiB`, `100 bytes`.
fn bytes_human(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

impl fmt::Debug for HttpShell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpShell")
            .field("timeout", &human_duration(self.timeout))
            .field("max_response_bytes", &self.max_response_bytes)
            .field("client_ok", &self.client.is_ok())
            .finish()
    }
}

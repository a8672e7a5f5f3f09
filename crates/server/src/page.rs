//! The status page: one HTML file (its CSS and script inline, no framework, nothing fetched
//! from elsewhere) embedded at build time and served at `/` and `/status`. The page itself
//! holds no data; it reads `/status.json` every few seconds, sending the client key the person
//! gave it as a header, so the key never appears in a URL the server sees or logs.

use axum::response::{IntoResponse, Response};
use http::header;

/// The status page's HTML: `imagegate serve` serves it at `/` and `/status`, and
/// `imagegate quota --serve` over the local quota state. It reads `status.json` next to it.
pub const STATUS_PAGE: &str = include_str!("page/status.html");

/// `GET /` and `GET /status`: the page, never cached (a new binary may bring a new page), and
/// allowed to talk only to this gateway.
pub async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:; form-action 'none'; \
                 frame-ancestors 'none'; base-uri 'none'",
            ),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        STATUS_PAGE,
    )
        .into_response()
}

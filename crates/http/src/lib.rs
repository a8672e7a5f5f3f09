//! # imagegate-http
//!
//! What every HTTP provider would otherwise write again, written once so it is the same
//! everywhere:
//!
//! - [`HttpShell`]: a `reqwest` client (rustls) that **never retries** (one `generate` call is
//!   at most one billable request; the router owns retries) and **never follows a redirect**
//!   (a redirect to another origin would carry the key there), with a per-request timeout and a
//!   bound on the response body, read incrementally;
//! - [`transport_error`]: a transport failure as an [`ErrorKind`](imagegate_core::ErrorKind),
//!   the same for every provider (a connection reset mid-body is `unavailable`);
//! - [`base_url`]: checks a configured base URL (no credentials, query or fragment; an optional
//!   path prefix kept, the API's own suffix not doubled);
//! - [`key_from_env`] and [`sensitive_header`]: the key read from a named variable, and sent in
//!   a header marked sensitive (never logged by the HTTP stack).
//!
//! Depends on `imagegate-core` only; every provider that speaks HTTP depends on it.
#![deny(missing_docs)]

pub mod base_url;
mod key;
mod shell;
mod transport;

pub use key::{key_from_env, key_from_lookup, sensitive_header};
pub use shell::{Answer, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, HttpShell};
pub use transport::transport_error;

//! # imagegate-google-rpc
//!
//! Google's error envelope (`google.rpc.Status` with its details) parsed and classified, for
//! every provider that speaks to Google or relays its errors: the Gemini provider calls
//! [`classify`] on every non-2xx answer, and the OpenRouter provider calls it on the Google
//! error it finds in `metadata.raw`. Classification lives here once so that both agree.
//!
//! ```
//! use http::{HeaderMap, StatusCode};
//! use imagegate_core::{Dimension, ErrorKind};
//!
//! // A real free-tier 429 (fixture gemini/generate-content/429-quotafailure-tpm-freetier), trimmed to the fields that matter.
//! let body = br#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
//!   "message": "You exceeded your current quota.",
//!   "details": [
//!     {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
//!       "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
//!       "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
//!       "quotaDimensions": {"model": "gemini-2.0-pro-exp", "location": "global"},
//!       "quotaValue": "25"}]},
//!     {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "5s"}]}}"#;
//! let now = "2026-01-15T12:00:00Z".parse()?;
//! let error = imagegate_google_rpc::classify(
//!     StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body, now, "gemini");
//!
//! assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
//! assert_eq!(error.quota().dimension, Some(Dimension::Rpd));
//! assert_eq!(error.quota().quota_value, Some(25));
//! // Daily quotas reset at midnight America/Los_Angeles (08:00 UTC in January).
//! assert_eq!(error.quota().reset_at, Some("2026-01-16T08:00:00Z".parse()?));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

mod classify;
mod quota;
mod status;

pub use classify::{classify, kind_for_status};
pub use status::{
    Detail, ErrorInfo, Help, HelpLink, QuotaFailure, QuotaViolation, RetryInfo, Status,
    parse_status, status_from_value,
};

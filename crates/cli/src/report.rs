//! The JSON shape of an error, shared by `generate --json` and `diagnose --json`.
//!
//! Scripts depend on these field names and on the kinds' snake_case spelling; change them only
//! with a note in the changelog.

use imagegate_core::{Error, ErrorKind, quota::Dimension};
use jiff::Timestamp;
use serde::Serialize;

/// One classified error, flat, every field present (null when unknown): exactly the fields
/// `diagnose --json` documents.
#[derive(Debug, Serialize)]
pub(crate) struct ErrorReport {
    pub kind: ErrorKind,
    pub temporary: bool,
    pub http_status: Option<u16>,
    pub dimension: Option<Dimension>,
    pub retry_after_ms: Option<u64>,
    pub quota_id: Option<String>,
    pub quota_metric: Option<String>,
    pub quota_value: Option<u64>,
    pub model: Option<String>,
    pub reset_at: Option<Timestamp>,
    pub message: String,
    pub advice: String,
}

impl From<&Error> for ErrorReport {
    fn from(error: &Error) -> Self {
        let quota = error.quota();
        ErrorReport {
            kind: error.kind(),
            temporary: error.is_temporary(),
            http_status: error.http_status(),
            dimension: quota.dimension,
            retry_after_ms: error
                .retry_after()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            quota_id: quota.quota_id.clone(),
            quota_metric: quota.quota_metric.clone(),
            quota_value: quota.quota_value,
            model: quota.model.clone(),
            reset_at: quota.reset_at,
            message: error.message().to_owned(),
            advice: error.advice(),
        }
    }
}

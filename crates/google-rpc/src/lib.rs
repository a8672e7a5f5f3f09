#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod classify;
mod quota;
mod status;

pub use classify::{classify, kind_for_status};
pub use status::{
    Detail, ErrorInfo, Help, HelpLink, QuotaFailure, QuotaViolation, RetryInfo, Status,
    names_service, parse_status, status_from_value,
};

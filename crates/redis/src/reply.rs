//! Reading the scripts' replies: arrays of strings, numbers as decimal microseconds or counts.

use imagegate_core::Error;
use imagegate_core::quota::Dimension;
use jiff::Timestamp;

/// A reply the scripts never give: a bug or a foreign script under our keys.
pub(crate) fn malformed(store: &str, reply: &[String]) -> Error {
    Error::new(
        imagegate_core::ErrorKind::Unexpected,
        format!("the quota store {store} answered something unexpected: {reply:?}"),
    )
}

/// A number, `None` for the empty string.
pub(crate) fn opt_u64(s: &str) -> Option<u64> {
    if s.is_empty() { None } else { s.parse().ok() }
}

/// An instant in microseconds, `None` for the empty string.
pub(crate) fn opt_ts(s: &str) -> Option<Timestamp> {
    if s.is_empty() {
        return None;
    }
    s.parse::<i64>()
        .ok()
        .and_then(|us| Timestamp::from_microsecond(us).ok())
}

/// A dimension's name, `None` for the empty string.
pub(crate) fn opt_dim(s: &str) -> Option<Dimension> {
    if s.is_empty() { None } else { s.parse().ok() }
}

/// An instant as the scripts take it.
pub(crate) fn us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

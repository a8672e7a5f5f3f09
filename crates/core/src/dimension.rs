//! [`Dimension`]: one of the four quota dimensions.
//!
//! A leaf module (it imports nothing of the crate) because both the error type (a 429 names the
//! dimension that ran out) and the quota model name it; keeping it here is what lets `error`
//! stand below `quota` with no import loop between them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One of the four independent quota dimensions; each can trigger a 429 alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    /// Requests per minute.
    Rpm,
    /// Requests per day (calendar day in the provider's zone).
    Rpd,
    /// Tokens per minute (input + output).
    Tpm,
    /// Images per minute.
    Ipm,
}

impl Dimension {
    /// All four, in the order people list them.
    pub const ALL: [Dimension; 4] = [
        Dimension::Rpm,
        Dimension::Rpd,
        Dimension::Tpm,
        Dimension::Ipm,
    ];

    /// `rpm`, `rpd`, `tpm`, `ipm`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dimension::Rpm => "rpm",
            Dimension::Rpd => "rpd",
            Dimension::Tpm => "tpm",
            Dimension::Ipm => "ipm",
        }
    }

    /// True for the per-day dimension, whose window is a calendar day.
    pub const fn is_daily(self) -> bool {
        matches!(self, Dimension::Rpd)
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}


//! Usage tiers: the key a provider's presets are looked up by.
//!
//! A project's tier (Google's free, tier 1-3) decides its limits. Core knows the tiers' names
//! only; each provider's descriptor brings its own preset figures
//! ([`crate::registry::PresetsFn`]). With no tier configured a pool starts with no preset
//! limits and learns each dimension from the upstream's first 429 (docs/quota-model.md).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A usage tier, per project or account: the key a provider's presets are looked up by.
/// Google has free and tiers 1-3; OpenAI-style APIs have tiers 1-5. A provider answers for a
/// tier it does not have as for its nearest one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// No billing attached.
    #[default]
    Free,
    /// Billing attached.
    Tier1,
    /// More than $250 cumulative spend and 30 days since the first payment.
    Tier2,
    /// More than $1,000 cumulative spend and 30 days since the first payment (Google).
    Tier3,
    /// A fourth paid tier (OpenAI-style APIs).
    Tier4,
    /// A fifth paid tier (OpenAI-style APIs).
    Tier5,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 6] = [
        Tier::Free,
        Tier::Tier1,
        Tier::Tier2,
        Tier::Tier3,
        Tier::Tier4,
        Tier::Tier5,
    ];

    /// `free`, `tier1`, `tier2`, `tier3`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Tier1 => "tier1",
            Tier::Tier2 => "tier2",
            Tier::Tier3 => "tier3",
            Tier::Tier4 => "tier4",
            Tier::Tier5 => "tier5",
        }
    }
}

impl fmt::Display for Tier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Tier {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace([' ', '-', '_'], "")
            .as_str()
        {
            "free" => Ok(Tier::Free),
            "tier1" => Ok(Tier::Tier1),
            "tier2" => Ok(Tier::Tier2),
            "tier3" => Ok(Tier::Tier3),
            "tier4" => Ok(Tier::Tier4),
            "tier5" => Ok(Tier::Tier5),
            other => Err(Error::config(format!(
                "unknown tier `{other}`: expected free, tier1, tier2, tier3, tier4 or tier5"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_parse_loosely_and_print_canonically() {
        assert_eq!("Tier 2".parse::<Tier>().unwrap(), Tier::Tier2);
        assert_eq!("tier-1".parse::<Tier>().unwrap(), Tier::Tier1);
        assert_eq!(" FREE ".parse::<Tier>().unwrap(), Tier::Free);
        assert!("gold".parse::<Tier>().is_err());
        for tier in Tier::ALL {
            assert_eq!(tier.as_str().parse::<Tier>().unwrap(), tier);
        }
    }
}

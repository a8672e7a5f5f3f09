//! Tier presets: default limits per model family for Google's usage tiers.
//!
//! Google no longer publishes per-model tables (each project sees its own at
//! aistudio.google.com/rate-limit), so these are the figures the field notes quote
//! (domain.md, "Tiers"), every one overridable in configuration and corrected by learning from
//! 429s. Where the notes give a range, the flash models get its top (they are the generous ones)
//! and the pro and Imagen models its bottom (preview and paid-only models are tighter). TPM and
//! IPM are not quoted per tier, so the presets leave them unlimited.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Limits;
use crate::error::Error;

/// A Google usage tier, per project.
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
    /// More than $1,000 cumulative spend and 30 days since the first payment.
    Tier3,
}

impl Tier {
    /// Every tier, lowest first.
    pub const ALL: [Tier; 4] = [Tier::Free, Tier::Tier1, Tier::Tier2, Tier::Tier3];

    /// `free`, `tier1`, `tier2`, `tier3`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Tier1 => "tier1",
            Tier::Tier2 => "tier2",
            Tier::Tier3 => "tier3",
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
            other => Err(Error::config(format!(
                "unknown tier `{other}`: expected free, tier1, tier2 or tier3"
            ))),
        }
    }
}

/// A family of models that share preset limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModelFamily {
    /// `gemini-2.5-flash-image`, `gemini-3.1-flash-image-preview`, ...
    GeminiFlashImage,
    /// `gemini-3-pro-image-preview`, ...
    GeminiProImage,
    /// `imagen-4.0-generate-001`, ...
    Imagen,
    /// Anything else: no preset, only configured and learned limits.
    Other,
}

impl ModelFamily {
    /// The family of `model` (a `vendor/` prefix such as OpenRouter's `google/` is ignored).
    pub fn of(model: &str) -> ModelFamily {
        let bare = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        if bare.starts_with("imagen") {
            ModelFamily::Imagen
        } else if bare.starts_with("gemini") && bare.contains("image") {
            if bare.contains("pro") {
                ModelFamily::GeminiProImage
            } else {
                ModelFamily::GeminiFlashImage
            }
        } else {
            ModelFamily::Other
        }
    }

    /// The preset limits of this family at `tier`.
    pub const fn preset(self, tier: Tier) -> Limits {
        let (rpm, rpd) = match (self, tier) {
            (ModelFamily::Other, _) => return Limits::NONE,
            (ModelFamily::GeminiFlashImage, Tier::Free) => (10, 1_500),
            (ModelFamily::GeminiProImage | ModelFamily::Imagen, Tier::Free) => (5, 250),
            (ModelFamily::GeminiFlashImage, Tier::Tier1) => (300, 10_000),
            (ModelFamily::GeminiProImage | ModelFamily::Imagen, Tier::Tier1) => (100, 10_000),
            (_, Tier::Tier2) => (1_000, 50_000),
            (_, Tier::Tier3) => (2_000, 100_000),
        };
        Limits {
            rpm: Some(rpm),
            rpd: Some(rpd),
            tpm: None,
            ipm: None,
        }
    }
}

/// The preset limits for `model` at `tier`.
pub fn preset(model: &str, tier: Tier) -> Limits {
    ModelFamily::of(model).preset(tier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_recognised_with_or_without_a_vendor_prefix() {
        assert_eq!(
            ModelFamily::of("gemini-2.5-flash-image"),
            ModelFamily::GeminiFlashImage
        );
        assert_eq!(
            ModelFamily::of("google/gemini-3-pro-image-preview"),
            ModelFamily::GeminiProImage
        );
        assert_eq!(
            ModelFamily::of("imagen-4.0-generate-001"),
            ModelFamily::Imagen
        );
        assert_eq!(ModelFamily::of("gemini-2.5-flash"), ModelFamily::Other);
    }

    #[test]
    fn presets_grow_with_the_tier() {
        let p = |t| preset("gemini-3-pro-image-preview", t);
        assert_eq!(p(Tier::Free).rpd, Some(250));
        assert_eq!(p(Tier::Tier1).rpm, Some(100));
        assert_eq!(p(Tier::Tier2).rpd, Some(50_000));
        assert_eq!(p(Tier::Tier3).rpm, Some(2_000));
        assert!(preset("some-text-model", Tier::Tier3).is_empty());
        assert_eq!("Tier 2".parse::<Tier>().unwrap(), Tier::Tier2);
        assert!("gold".parse::<Tier>().is_err());
    }
}

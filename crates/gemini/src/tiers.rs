//! Gemini's tier presets: default limits per model family and usage tier.
//!
//! Google no longer publishes per-model tables (each project sees its own at
//! <https://aistudio.google.com/rate-limit>), so these are the figures published rate-limit
//! pages quoted (<https://ai.google.dev/gemini-api/docs/rate-limits>), every one overridable in
//! configuration and corrected by learning from 429s. Where a range is quoted, the flash models
//! get its top (they are the generous ones) and the pro and Imagen models its bottom (preview
//! and paid-only models are tighter). TPM and IPM are not quoted per tier, so the presets leave
//! them unlimited. They apply only when a `tier` is configured: with none, a pool learns its
//! limits from the first 429 (docs/quota-model.md).

use imagegate_core::quota::Limits;
use imagegate_core::quota::Tier;

/// A family of Gemini models that share preset limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
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
    /// The family of `model` (a `vendor/` prefix such as `google/` is ignored).
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
            // Google has no tier above 3: a higher one configured gets tier 3's figures.
            (_, Tier::Tier3 | Tier::Tier4 | Tier::Tier5) => (2_000, 100_000),
        };
        Limits {
            rpm: Some(rpm),
            rpd: Some(rpd),
            tpm: None,
            ipm: None,
        }
    }
}

/// The preset limits for `model` at `tier` (the descriptor's `presets`).
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
        assert_eq!(p(Tier::Tier5), p(Tier::Tier3));
        assert_eq!(preset("gemini-2.5-flash-image", Tier::Free).rpm, Some(10));
        assert!(preset("some-text-model", Tier::Tier3).is_empty());
    }
}

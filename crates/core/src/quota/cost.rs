//! What one upstream call draws from a pool ([`Cost`]), estimated before it is sent
//! ([`TokenEstimator`]) and corrected once the upstream says what it really used ([`Usage`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Dimension;
use super::price::PerSize;
use crate::request::{GenerateRequest, ImageSize};
use crate::usage::TokenUsage;

/// What one upstream call draws from a pool, on every dimension at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cost {
    /// Requests (RPM and RPD): 1 for one call.
    pub requests: u64,
    /// Images asked for (IPM).
    pub images: u64,
    /// Estimated input + output tokens (TPM).
    pub tokens: u64,
}

impl Cost {
    /// A cost.
    pub const fn new(requests: u64, images: u64, tokens: u64) -> Self {
        Cost {
            requests,
            images,
            tokens,
        }
    }

    /// The amount this cost draws from `dimension`.
    pub const fn on(&self, dimension: Dimension) -> u64 {
        match dimension {
            Dimension::Rpm | Dimension::Rpd => self.requests,
            Dimension::Tpm => self.tokens,
            Dimension::Ipm => self.images,
        }
    }
}

/// What the upstream really used for a settled reservation. A field left `None` keeps the
/// estimate that was reserved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Images really generated.
    pub images: Option<u64>,
    /// Tokens really counted (input + output).
    pub tokens: Option<u64>,
}

impl Usage {
    /// Usage from what a provider reported: the image count and its token usage, if any.
    pub fn reported(images: usize, tokens: Option<&TokenUsage>) -> Self {
        Usage {
            images: Some(images as u64),
            tokens: tokens.map(TokenUsage::total),
        }
    }
}

/// The default output tokens one generated image counts towards TPM (Gemini 2.x image output).
pub const DEFAULT_TOKENS_PER_IMAGE: u64 = 1_290;

/// The default input tokens one reference image counts (Gemini bills a small image as 258).
pub const DEFAULT_TOKENS_PER_REFERENCE_IMAGE: u64 = 258;

/// Estimates a request's [`Cost`] before it is sent.
///
/// Output tokens are what dominate an image model's TPM, so they are configurable per model and
/// size; input tokens are a rough `prompt characters / 4` plus a fixed amount per reference
/// image, which is close enough for a budget that is corrected by [`Usage`] on settle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenEstimator {
    /// Output tokens per image when no model entry says otherwise.
    pub tokens_per_image: u64,
    /// Input tokens per reference image.
    pub tokens_per_reference_image: u64,
    /// Per-model output tokens per image, optionally per size.
    pub models: BTreeMap<String, ModelTokens>,
}

impl Default for TokenEstimator {
    fn default() -> Self {
        TokenEstimator {
            tokens_per_image: DEFAULT_TOKENS_PER_IMAGE,
            tokens_per_reference_image: DEFAULT_TOKENS_PER_REFERENCE_IMAGE,
            models: BTreeMap::new(),
        }
    }
}

/// Output tokens per image for one model: one figure (`per_image`), or one per size.
pub type ModelTokens = PerSize<u64>;

impl TokenEstimator {
    /// Output tokens for one image of `model` at `size` (1K when the request names none).
    pub fn tokens_per_image(&self, model: &str, size: Option<ImageSize>) -> u64 {
        let size = size.unwrap_or(ImageSize::OneK);
        super::price::lookup(&self.models, model)
            .and_then(|m| m.for_size(size))
            .unwrap_or(self.tokens_per_image)
    }

    /// The cost of sending `request` to `model` as one upstream call.
    pub fn estimate(&self, request: &GenerateRequest, model: &str) -> Cost {
        let images = u64::from(request.count.max(1));
        let prompt = (request.prompt.chars().count() as u64).div_ceil(4);
        let references = request.reference_images.len() as u64 * self.tokens_per_reference_image;
        let output = images.saturating_mul(self.tokens_per_image(model, request.size));
        Cost::new(1, images, prompt + references + output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_count_every_image_and_the_prompt() {
        let est = TokenEstimator::default();
        let req = GenerateRequest::new("abcdefgh").with_count(3);
        assert_eq!(
            est.estimate(&req, "gemini-2.5-flash-image"),
            Cost::new(1, 3, 2 + 3 * 1_290)
        );
    }

    #[test]
    fn per_model_and_size_figures_override_the_default() {
        let mut est = TokenEstimator::default();
        est.models.insert(
            "gemini-3-pro-image-preview".into(),
            ModelTokens {
                per_image: Some(1_120),
                four_k: Some(2_000),
                ..ModelTokens::default()
            },
        );
        assert_eq!(
            est.tokens_per_image("gemini-3-pro-image-preview", None),
            1_120
        );
        assert_eq!(
            est.tokens_per_image("gemini-3-pro-image-preview", Some(ImageSize::FourK)),
            2_000
        );
        assert_eq!(est.tokens_per_image("gemini-2.5-flash-image", None), 1_290);
    }
}

//! What an image costs in US dollars: a [`PriceTable`] (model x image size) and an estimate for
//! any request before it is sent.
//!
//! Core holds no provider's figures: each provider's descriptor lists its own prices
//! ([`crate::registry::ModelPrice`]), [`crate::registry::price_table`] gathers them, and
//! configuration overrides any of them ([`PriceTable::with_overrides`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::request::{GenerateRequest, ImageSize};

/// One figure per image size, with `per_image` for every size that has none of its own.
///
/// In TOML: `{ per_image = 0.039 }` or `{ "1K" = 0.134, "2K" = 0.134, "4K" = 0.24 }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerSize<T> {
    /// For every size without its own figure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_image: Option<T>,
    /// `0.5K` images.
    #[serde(rename = "0.5K", default, skip_serializing_if = "Option::is_none")]
    pub half: Option<T>,
    /// `1K` images.
    #[serde(rename = "1K", default, skip_serializing_if = "Option::is_none")]
    pub one_k: Option<T>,
    /// `2K` images.
    #[serde(rename = "2K", default, skip_serializing_if = "Option::is_none")]
    pub two_k: Option<T>,
    /// `4K` images.
    #[serde(rename = "4K", default, skip_serializing_if = "Option::is_none")]
    pub four_k: Option<T>,
}

impl<T: Copy> PerSize<T> {
    /// The figure for `size`, else `per_image`.
    pub fn for_size(&self, size: ImageSize) -> Option<T> {
        let sized = match size {
            ImageSize::Half => self.half,
            ImageSize::OneK => self.one_k,
            ImageSize::TwoK => self.two_k,
            ImageSize::FourK => self.four_k,
        };
        sized.or(self.per_image)
    }

    /// These figures with every figure `over` sets replacing ours.
    #[must_use]
    pub fn overridden_by(&self, over: &PerSize<T>) -> PerSize<T> {
        PerSize {
            per_image: over.per_image.or(self.per_image),
            half: over.half.or(self.half),
            one_k: over.one_k.or(self.one_k),
            two_k: over.two_k.or(self.two_k),
            four_k: over.four_k.or(self.four_k),
        }
    }

    /// The same figure for every size.
    pub fn flat(value: T) -> Self {
        PerSize {
            per_image: Some(value),
            half: None,
            one_k: None,
            two_k: None,
            four_k: None,
        }
    }
}

/// Finds `model`'s entry: the exact name first, then the name without a `vendor/` prefix
/// (OpenRouter's `google/gemini-...`) or a `:variant` suffix, then the longest configured name
/// the model starts with (so `gemini-2.5-flash-image-preview` finds `gemini-2.5-flash-image`).
pub(crate) fn lookup<'a, V>(map: &'a BTreeMap<String, V>, model: &str) -> Option<&'a V> {
    if let Some(v) = map.get(model) {
        return Some(v);
    }
    let bare = model.rsplit('/').next().unwrap_or(model);
    let bare = bare.split(':').next().unwrap_or(bare);
    if let Some(v) = map.get(bare) {
        return Some(v);
    }
    map.iter()
        .filter(|(name, _)| bare.starts_with(name.as_str()))
        .max_by_key(|(name, _)| name.len())
        .map(|(_, v)| v)
}

/// Prices per image in US dollars by model and size, plus the batch discount.
///
/// [`PriceTable::default`] knows no model; the registry's table
/// ([`crate::registry::price_table`]) holds every provider's figures, and
/// [`with_overrides`](PriceTable::with_overrides) merges configuration over it field by field
/// (so `[prices.models."gemini-3-pro-image-preview"] "4K" = 0.30` changes one figure).
/// Deserialising a table directly merges over the empty default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "PriceTableConfig", into = "PriceTableConfig")]
pub struct PriceTable {
    models: BTreeMap<String, PerSize<f64>>,
    batch_factor: f64,
    fallback: Option<f64>,
}

/// The configuration form of a [`PriceTable`]: overrides on top of the defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTableConfig {
    /// Per-model prices; merged over the defaults.
    #[serde(default)]
    pub models: BTreeMap<String, PerSize<f64>>,
    /// What a batch request costs relative to an interactive one (default 0.5: half price).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_factor: Option<f64>,
    /// The price per image of a model the table does not know (default: unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_per_image: Option<f64>,
}

/// The default batch factor: batch APIs (Gemini's Batch API among them) cost half the
/// interactive price.
pub const DEFAULT_BATCH_FACTOR: f64 = 0.5;

impl Default for PriceTable {
    /// No model priced, the default batch factor, no fallback.
    fn default() -> Self {
        PriceTable {
            models: BTreeMap::new(),
            batch_factor: DEFAULT_BATCH_FACTOR,
            fallback: None,
        }
    }
}

impl From<PriceTableConfig> for PriceTable {
    fn from(config: PriceTableConfig) -> Self {
        PriceTable::default().with_overrides(config)
    }
}

impl From<PriceTable> for PriceTableConfig {
    fn from(table: PriceTable) -> Self {
        PriceTableConfig {
            models: table.models,
            batch_factor: Some(table.batch_factor),
            fallback_per_image: table.fallback,
        }
    }
}

impl PriceTable {
    /// This table with `config` merged over it: a configured model's figures replace ours
    /// size by size, new models are added, the batch factor and fallback replace ours when set.
    #[must_use]
    pub fn with_overrides(mut self, config: PriceTableConfig) -> Self {
        for (model, over) in config.models {
            let merged = match self.models.get(&model) {
                Some(base) => base.overridden_by(&over),
                None => over,
            };
            self.models.insert(model, merged);
        }
        if let Some(factor) = config.batch_factor {
            self.batch_factor = factor;
        }
        self.fallback = config.fallback_per_image.or(self.fallback);
        self
    }

    /// Whether `model` has an entry of its own (exact name).
    pub fn knows(&self, model: &str) -> bool {
        self.models.contains_key(model)
    }

    /// Sets (or replaces) the prices of `model`.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>, prices: PerSize<f64>) -> Self {
        self.models.insert(model.into(), prices);
        self
    }

    /// The price of one interactive image of `model` at `size` (1K when `None`), if known.
    /// OpenRouter's `:free` model variants cost nothing.
    pub fn per_image(&self, model: &str, size: Option<ImageSize>) -> Option<f64> {
        if model.ends_with(":free") {
            return Some(0.0);
        }
        let size = size.unwrap_or(ImageSize::OneK);
        lookup(&self.models, model)
            .and_then(|p| p.for_size(size))
            .or(self.fallback)
    }

    /// What `request` would cost on `model`, in US dollars, before it is sent; `batch` applies
    /// the batch factor. `None` when the table knows no price for the model.
    pub fn estimate(&self, request: &GenerateRequest, model: &str, batch: bool) -> Option<f64> {
        let each = self.per_image(model, request.size)?;
        let factor = if batch { self.batch_factor } else { 1.0 };
        Some(each * f64::from(request.count.max(1)) * factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    /// A table like a provider's: two models, one priced by size.
    fn table() -> PriceTable {
        PriceTable::default()
            .with_model(
                "vendor-image-pro",
                PerSize {
                    per_image: None,
                    half: Some(0.045),
                    one_k: Some(0.067),
                    two_k: Some(0.101),
                    four_k: Some(0.151),
                },
            )
            .with_model("vendor-image", PerSize::flat(0.039))
    }

    #[test]
    fn lookup_takes_prefixes_vendor_names_and_free_variants() {
        let t = table();
        assert!(close(
            t.per_image("vendor-image-pro-preview", Some(ImageSize::Half)),
            0.045
        ));
        assert!(close(t.per_image("vendor-image-pro-preview", None), 0.067));
        assert!(close(t.per_image("acme/vendor-image", None), 0.039));
        assert!(close(t.per_image("acme/vendor-image:free", None), 0.0));
        assert_eq!(t.per_image("dall-e-3", None), None);
        assert!(t.knows("vendor-image") && !t.knows("vendor-image-pro-preview"));
        assert_eq!(PriceTable::default().per_image("vendor-image", None), None);
    }

    #[test]
    fn batch_is_half_price_and_counts_every_image() {
        let t = table();
        let req = GenerateRequest::new("x")
            .with_count(4)
            .with_size(ImageSize::TwoK);
        assert!(close(
            t.estimate(&req, "vendor-image-pro-preview", false),
            0.404
        ));
        assert!(close(
            t.estimate(&req, "vendor-image-pro-preview", true),
            0.202
        ));
    }

    #[test]
    fn configuration_merges_over_the_defaults() {
        let config: PriceTableConfig = serde_json::from_value(serde_json::json!({
            "models": { "vendor-image-pro": { "4K": 0.3 }, "my-model": { "per_image": 0.01 } },
            "batch_factor": 0.4
        }))
        .unwrap();
        let t = table().with_overrides(config);
        assert!(close(
            t.per_image("vendor-image-pro-preview", Some(ImageSize::FourK)),
            0.3
        ));
        assert!(close(
            t.per_image("vendor-image-pro-preview", Some(ImageSize::OneK)),
            0.067
        ));
        assert!(close(t.per_image("my-model", None), 0.01));
        let req = GenerateRequest::new("x");
        assert!(close(t.estimate(&req, "my-model", true), 0.004));
        let bad = serde_json::from_value::<PriceTableConfig>(serde_json::json!({"modles": {}}));
        assert!(bad.is_err());
    }
}

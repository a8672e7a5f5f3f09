//! The quota section of a provider's configuration (`[providers.NAME.quota]` in
//! `imagegate.toml`), and how it becomes [`PoolConfig`]s and a [`TokenEstimator`].
//!
//! ```toml
//! [providers.gemini.quota]
//! tier = "tier1"                       # free | tier1 ... tier5 (none: limits are learned)
//! day_zone = "America/Los_Angeles"     # IANA name; default per provider
//! tokens_per_image = 1290
//!
//! [providers.gemini.quota.models."gemini-3-pro-image-preview"]
//! rpm = 20
//! tokens_per_image = { "1K" = 1120, "2K" = 1120, "4K" = 2000 }
//!
//! [[providers.gemini.quota.shared_pools]]
//! name = "free-image"
//! models = ["gemini-2.5-flash-image", "gemini-3.1-flash-image-preview"]
//! rpm = 10
//! rpd = 100
//! ```

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::cost::TokenEstimator;
use super::price::PerSize;
use super::tier::Tier;
use super::{Limits, PoolConfig, PoolId, pool::zone_named};
use crate::error::{Error, Result};

/// What a provider's pools start from when configuration says nothing: its kind's name, the
/// zone its day ends in, and its tier presets. Implemented by the registry's
/// `ProviderDescriptor`; a trait here so that the quota model does not depend on the registry
/// (the registry depends on the quota model's types).
pub trait QuotaDefaults {
    /// The provider kind's name, the first part of its pool ids (`gemini`).
    fn kind(&self) -> &str;
    /// The zone whose midnight ends its day.
    fn zone(&self) -> TimeZone;
    /// Whether it has tier presets at all (if so and no tier is configured, its pools learn).
    fn has_presets(&self) -> bool;
    /// The preset limits of `model` at `tier`; none without a tier or presets.
    fn preset(&self, model: &str, tier: Option<Tier>) -> Limits;
}

/// The quota configuration of one provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderQuotaConfig {
    /// The projects' tier, choosing the provider's preset limits per model. Default: none, so
    /// a provider with tiers (Gemini) starts with no preset limits and learns each one from
    /// the first 429 that states it; a provider without tiers (OpenRouter) has limits only
    /// from configuration and learning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The IANA zone whose midnight resets daily quotas. Default: the provider's own (its
    /// descriptor's `day_zone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day_zone: Option<String>,
    /// Output tokens per image for every model without its own figure (default 1,290).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_image: Option<u64>,
    /// Input tokens per reference image (default 258).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_reference_image: Option<u64>,
    /// Per-model limit overrides and token figures.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelQuotaConfig>,
    /// Pools several models draw on together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_pools: Vec<SharedPoolConfig>,
}

/// Overrides for one model: any limit set here replaces the tier preset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelQuotaConfig {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Images per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipm: Option<u64>,
    /// Output tokens per image: one number, or a table by size (`0.5K`, `1K`, `2K`, `4K`,
    /// `per_image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_image: Option<TokensPerImage>,
}

impl ModelQuotaConfig {
    fn limits(&self) -> Limits {
        Limits {
            rpm: self.rpm,
            rpd: self.rpd,
            tpm: self.tpm,
            ipm: self.ipm,
        }
    }
}

/// Output tokens per image: one figure, or one per size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokensPerImage {
    /// The same for every size.
    Flat(u64),
    /// By size.
    BySize(PerSize<u64>),
}

/// Several models drawing on one pool.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SharedPoolConfig {
    /// The pool's name (shown in status, used as the pool part of its id).
    pub name: String,
    /// The models that draw on it.
    pub models: Vec<String>,
    /// Requests per minute (default: the tier preset of the first model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u64>,
    /// Requests per day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpd: Option<u64>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm: Option<u64>,
    /// Images per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipm: Option<u64>,
}

impl ProviderQuotaConfig {
    /// Checks what deserialisation cannot: the zone exists, shared pools are named, and no
    /// model is in two shared pools.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) naming the problem.
    pub fn validate(&self) -> Result<()> {
        if let Some(zone) = &self.day_zone {
            zone_named(zone)?;
        }
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for pool in &self.shared_pools {
            if pool.name.trim().is_empty() {
                return Err(Error::config("a shared quota pool needs a `name`"));
            }
            if pool.models.is_empty() {
                return Err(Error::config(format!(
                    "shared quota pool `{}` lists no `models`",
                    pool.name
                )));
            }
            for model in &pool.models {
                if let Some(other) = seen.insert(model, &pool.name) {
                    return Err(Error::config(format!(
                        "model `{model}` is in two shared quota pools (`{other}` and `{}`)",
                        pool.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The zone whose midnight ends the day of `provider`'s pools: configured, else the
    /// provider's own.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) for an unknown zone.
    pub fn day_zone(&self, provider: &(impl QuotaDefaults + ?Sized)) -> Result<TimeZone> {
        match &self.day_zone {
            Some(name) => zone_named(name),
            None => Ok(provider.zone()),
        }
    }

    /// The pool `model` draws on for `project`: its shared pool if configured, else its own;
    /// limits are the provider's preset at the configured tier with every configured figure on
    /// top. With no tier, a provider that has presets gets a *learning* pool: no preset limits,
    /// each unconfigured dimension learned from the first 429 that states it.
    ///
    /// Pools are named by the provider's *kind* (`gemini`, `openrouter`), not its configured
    /// name: quotas belong to the project, so two configured providers (a relay and the direct
    /// API, say) using the same project must land in the same pools.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](crate::ErrorKind::ConfigInvalid) for an unknown zone.
    pub fn pool_for(
        &self,
        provider: &(impl QuotaDefaults + ?Sized),
        project: &str,
        model: &str,
    ) -> Result<PoolConfig> {
        let zone = self.day_zone(provider)?;
        let learning = self.tier.is_none() && provider.has_presets();
        let base = |m: &str| provider.preset(m, self.tier);
        if let Some(shared) = self
            .shared_pools
            .iter()
            .find(|p| p.models.iter().any(|m| m == model))
        {
            let first = shared.models.first().map_or(model, String::as_str);
            let limits = base(first).overridden_by(Limits {
                rpm: shared.rpm,
                rpd: shared.rpd,
                tpm: shared.tpm,
                ipm: shared.ipm,
            });
            let id = PoolId::new(provider.kind(), project, shared.name.clone());
            return Ok(PoolConfig::new(id, limits, zone)
                .with_models(shared.models.clone())
                .with_learning(learning));
        }
        let overrides = self
            .models
            .get(model)
            .map_or(Limits::NONE, ModelQuotaConfig::limits);
        let limits = base(model).overridden_by(overrides);
        Ok(
            PoolConfig::new(PoolId::new(provider.kind(), project, model), limits, zone)
                .with_learning(learning),
        )
    }

    /// The token estimator these figures describe.
    pub fn token_estimator(&self) -> TokenEstimator {
        let mut estimator = TokenEstimator::default();
        if let Some(t) = self.tokens_per_image {
            estimator.tokens_per_image = t;
        }
        if let Some(t) = self.tokens_per_reference_image {
            estimator.tokens_per_reference_image = t;
        }
        for (model, config) in &self.models {
            let figures = match &config.tokens_per_image {
                Some(TokensPerImage::Flat(n)) => PerSize::flat(*n),
                Some(TokensPerImage::BySize(by)) => by.clone(),
                None => continue,
            };
            estimator.models.insert(model.clone(), figures);
        }
        estimator
    }
}

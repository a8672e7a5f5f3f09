//! The provider registry's types: what each provider crate tells the rest of imagegate about
//! itself, in one [`ProviderDescriptor`].
//!
//! Core defines the *shape* (and the mechanisms that use it: pools, presets, prices); each
//! provider crate fills one `pub static DESCRIPTOR` with its own figures; the binary keeps one
//! list of them and iterates it for configuration, assembly, `diagnose`, `quota`, the dry run
//! and the simulator. Adding a provider is a crate, its fixtures and one line in that list
//! (docs/adding-a-provider.md).
//!
//! ```
//! use imagegate_core::registry::{ProviderDescriptor, ProviderSettings, find};
//! # fn build(_: &ProviderSettings) -> imagegate_core::Result<std::sync::Arc<dyn imagegate_core::ImageProvider>> {
//! #     Err(imagegate_core::Error::config("not in a doc test"))
//! # }
//! static EXAMPLE: ProviderDescriptor = ProviderDescriptor {
//!     name: "example",
//!     label: "Example",
//!     key_vars: &["EXAMPLE_API_KEY"],
//!     key_help: "create one at https://example.invalid/keys",
//!     base_url_var: Some("EXAMPLE_BASE_URL"),
//!     default_model: "example-image-1",
//!     day_zone: "UTC",
//!     presets: None,
//!     prices: &[],
//!     parse_error: None,
//!     recognises: None,
//!     build,
//! };
//! let registry: &[&ProviderDescriptor] = &[&EXAMPLE];
//! assert_eq!(find(registry, "example").map(|d| d.default_model), Some("example-image-1"));
//! assert_eq!(EXAMPLE.zone(), jiff::tz::TimeZone::UTC);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::error::{Error, Result};
use crate::provider::ImageProvider;
use crate::quota::{Limits, PerSize, PriceTable, QuotaDefaults, Tier, zone_named};

/// A provider's pure error classifier: status first, then the body's structured details.
pub type ParseErrorFn = fn(StatusCode, &HeaderMap, &[u8], Timestamp) -> Error;

/// A provider's tier presets: the limits of `model` at `tier` (empty when it has none).
pub type PresetsFn = fn(model: &str, tier: Tier) -> Limits;

/// Builds a provider from its settings.
pub type BuildFn = fn(&ProviderSettings) -> Result<Arc<dyn ImageProvider>>;

/// Whether a decoded error object (`{"code", "message", ...}`) is in this provider's envelope;
/// `diagnose` asks each provider in turn.
pub type RecognisesFn = fn(&serde_json::Value) -> bool;

/// One model's price per image, in US dollars.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelPrice {
    /// The model name (a prefix: `gemini-3-pro-image` prices `gemini-3-pro-image-preview`).
    pub model: &'static str,
    /// Per image, by size.
    pub price: PerSize<f64>,
}

/// Everything imagegate knows about one kind of provider.
///
/// Fields are public so a provider crate can declare its descriptor as a `static`.
#[derive(Clone, Copy)]
pub struct ProviderDescriptor {
    /// The kind's name: `gemini`, `openrouter`, `mock`; also the first part of its pool ids.
    pub name: &'static str,
    /// The name people know it by in messages: `Gemini`, `OpenRouter`.
    pub label: &'static str,
    /// The environment variables the key may be in, conventional one first; empty when the
    /// provider needs no key. A key in the first one makes the provider exist without any
    /// configuration file.
    pub key_vars: &'static [&'static str],
    /// Where to get a key (ends the message when it is missing).
    pub key_help: &'static str,
    /// The environment variable that points the provider at another base URL (a relay).
    pub base_url_var: Option<&'static str>,
    /// The model used when neither the request nor the configuration names one.
    pub default_model: &'static str,
    /// The IANA zone whose midnight resets the provider's daily quotas.
    pub day_zone: &'static str,
    /// Tier presets, when the provider has tiers. `None`: limits come only from
    /// configuration and learning.
    pub presets: Option<PresetsFn>,
    /// Default prices, overridable in configuration.
    pub prices: &'static [ModelPrice],
    /// The pure error classifier, when the provider has a wire format (the mock has none).
    pub parse_error: Option<ParseErrorFn>,
    /// Whether an error body is in this provider's envelope (for `diagnose`'s guess).
    pub recognises: Option<RecognisesFn>,
    /// Builds the provider from its settings.
    pub build: BuildFn,
}

impl ProviderDescriptor {
    /// The zone whose midnight ends this provider's day ([`day_zone`](Self::day_zone) looked
    /// up; UTC if the name were unknown, which a test of each provider rules out).
    pub fn zone(&self) -> TimeZone {
        zone_named(self.day_zone).unwrap_or(TimeZone::UTC)
    }

    /// The preset limits of `model` at `tier`; none without a tier or presets.
    pub fn preset(&self, model: &str, tier: Option<Tier>) -> Limits {
        match (self.presets, tier) {
            (Some(presets), Some(tier)) => presets(model, tier),
            _ => Limits::NONE,
        }
    }

    /// The variable holding the key: `configured` if given, else the conventional one.
    pub fn key_var<'a>(&'a self, configured: Option<&'a str>) -> Option<&'a str> {
        configured.or_else(|| self.key_vars.first().copied())
    }
}

impl QuotaDefaults for ProviderDescriptor {
    fn kind(&self) -> &str {
        self.name
    }

    fn zone(&self) -> TimeZone {
        ProviderDescriptor::zone(self)
    }

    fn has_presets(&self) -> bool {
        self.presets.is_some()
    }

    fn preset(&self, model: &str, tier: Option<Tier>) -> Limits {
        ProviderDescriptor::preset(self, model, tier)
    }
}

impl fmt::Debug for ProviderDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderDescriptor")
            .field("name", &self.name)
            .field("key_vars", &self.key_vars)
            .field("base_url_var", &self.base_url_var)
            .field("default_model", &self.default_model)
            .field("day_zone", &self.day_zone)
            .field("presets", &self.presets.is_some())
            .field("prices", &self.prices.len())
            .finish_non_exhaustive()
    }
}

impl PartialEq for ProviderDescriptor {
    /// Descriptors are identified by name.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for ProviderDescriptor {}

/// What configuration says about one provider, as its [`BuildFn`] takes it. Everything is
/// optional: a provider falls back to its own defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderSettings {
    /// The configured name (`gemini`, `my-relay`): what errors and the mock's answers name.
    pub name: String,
    /// The environment variable holding the key (default: the descriptor's first).
    pub key_env: Option<String>,
    /// Scheme, host and optional path prefix before the API's own path.
    pub base_url: Option<String>,
    /// The project or account the key belongs to.
    pub project: Option<String>,
    /// The model used when a request names none.
    pub model: Option<String>,
    /// How long one upstream call may take.
    pub timeout: Option<Duration>,
    /// The largest answer accepted, in bytes.
    pub max_response_bytes: Option<u64>,
}

impl ProviderSettings {
    /// Settings for a provider configured as `name`, everything else default.
    pub fn new(name: impl Into<String>) -> Self {
        ProviderSettings {
            name: name.into(),
            ..ProviderSettings::default()
        }
    }

    /// Sets the key variable.
    #[must_use]
    pub fn with_key_env(mut self, var: Option<String>) -> Self {
        self.key_env = var;
        self
    }

    /// Sets the base URL.
    #[must_use]
    pub fn with_base_url(mut self, url: Option<String>) -> Self {
        self.base_url = url;
        self
    }

    /// Sets the project.
    #[must_use]
    pub fn with_project(mut self, project: Option<String>) -> Self {
        self.project = project;
        self
    }

    /// Sets the default model.
    #[must_use]
    pub fn with_model(mut self, model: Option<String>) -> Self {
        self.model = model;
        self
    }

    /// Sets the per-call timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the bound on an answer's size.
    #[must_use]
    pub fn with_max_response_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_response_bytes = bytes;
        self
    }
}

/// The descriptor named `name` in `registry`.
pub fn find<'a>(registry: &[&'a ProviderDescriptor], name: &str) -> Option<&'a ProviderDescriptor> {
    registry.iter().copied().find(|d| d.name == name)
}

/// The names in `registry`, in order, for messages ("expected one of gemini, openrouter, mock").
pub fn names(registry: &[&ProviderDescriptor]) -> Vec<&'static str> {
    registry.iter().map(|d| d.name).collect()
}

/// Every provider's default prices in one table (later providers do not replace a model an
/// earlier one priced).
pub fn price_table(registry: &[&ProviderDescriptor]) -> PriceTable {
    registry
        .iter()
        .flat_map(|d| d.prices.iter())
        .fold(PriceTable::default(), |table, p| {
            if table.knows(p.model) {
                table
            } else {
                table.with_model(p.model, p.price.clone())
            }
        })
}

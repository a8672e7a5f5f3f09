//! The provider registry: the one list of provider kinds ([`PROVIDERS`]) and, from a name and
//! the configuration, a ready `ImageProvider`.
//!
//! Everything that needs to know the providers iterates [`PROVIDERS`]: configuration (kinds,
//! conventional variables), assembly ([`build`], [`select`]), `diagnose`, `quota`, the price
//! table and the batch dry run. Adding a provider crate means one line here
//! (docs/adding-a-provider.md); no command changes.

use std::sync::Arc;

use imagegate_core::registry::{self, ProviderDescriptor};
use imagegate_core::{Error, ImageProvider};

use crate::config::{Config, ProviderConfig, ProviderKind};
use crate::failure::Failure;

/// Every provider kind imagegate can build, in order of preference: when neither `--provider`
/// nor `default_provider` says, the first configured one with a key is used.
pub(crate) static PROVIDERS: &[&ProviderDescriptor] = &[
    &imagegate_gemini::DESCRIPTOR,
    &imagegate_openrouter::DESCRIPTOR,
    &imagegate_openai::DESCRIPTOR,
    &imagegate_vertex::DESCRIPTOR,
    &imagegate_mock::DESCRIPTOR,
];

/// The registry entry named `name`.
pub(crate) fn descriptor(name: &str) -> Option<&'static ProviderDescriptor> {
    registry::find(PROVIDERS, name)
}

/// The registry's names, in order.
pub(crate) fn names() -> Vec<&'static str> {
    registry::names(PROVIDERS)
}

/// True for a kind that needs no key and can be used without a `[providers.NAME]` section
/// (the mock).
pub(crate) fn needs_no_configuration(name: &str) -> bool {
    descriptor(name).is_some_and(|d| d.key_vars.is_empty())
}

/// A provider ready to use, with the name the user knows it by.
#[derive(Debug)]
pub(crate) struct Selected {
    /// The configured name (`gemini`, `my-relay`, `mock`, ...).
    pub name: String,
    /// The provider itself.
    pub provider: Arc<dyn ImageProvider>,
    /// Its configuration (the defaults for an unconfigured `mock`).
    pub config: ProviderConfig,
}

/// Picks the provider: `--provider`, else `default_provider`, else the first registry entry
/// that needs a key and is configured, else the mock (with a note on stderr saying so).
///
/// # Errors
/// [`Failure::Usage`] when the named provider is not configured or cannot be built (no key,
/// bad base URL).
pub(crate) fn select(config: &Config, requested: Option<&str>) -> Result<Selected, Failure> {
    let name = match requested.or(config.default_provider.as_deref()) {
        Some(name) => name.to_owned(),
        None => match PROVIDERS
            .iter()
            .find(|d| !d.key_vars.is_empty() && config.providers.contains_key(d.name))
        {
            Some(d) => d.name.to_owned(),
            None => {
                let keys: Vec<&str> = PROVIDERS
                    .iter()
                    .filter_map(|d| d.key_vars.first().copied())
                    .collect();
                eprintln!(
                    "imagegate: no provider configured and none of {} is set; using the \
                     built-in mock provider (synthetic images, no network)",
                    keys.join(", ")
                );
                imagegate_mock::DESCRIPTOR.name.to_owned()
            }
        },
    };
    let provider_config = match config.providers.get(&name) {
        Some(provider_config) => provider_config.clone(),
        None if needs_no_configuration(&name) => ProviderConfig::default(),
        None => {
            let known: Vec<&str> = config
                .providers
                .keys()
                .map(String::as_str)
                .chain(
                    PROVIDERS
                        .iter()
                        .filter(|d| d.key_vars.is_empty())
                        .map(|d| d.name),
                )
                .collect();
            return Err(Failure::usage(format!(
                "no provider named `{name}` is configured (known: {}); set {} or add \
                 [providers.{name}] to the configuration",
                known.join(", "),
                descriptor(&name)
                    .and_then(|d| d.key_vars.first().copied())
                    .unwrap_or("its key")
            )));
        }
    };
    let provider = build(&name, &provider_config)
        .map_err(|e| Failure::usage(format!("provider `{name}`: {}", e.message())))?;
    Ok(Selected {
        name,
        provider,
        config: provider_config,
    })
}

/// Builds one provider from its configuration, through its registry entry.
///
/// # Errors
/// The entry's own: [`ErrorKind::ConfigInvalid`](imagegate_core::ErrorKind::ConfigInvalid)
/// naming the missing key variable or what is wrong with the base URL.
pub(crate) fn build(name: &str, config: &ProviderConfig) -> Result<Arc<dyn ImageProvider>, Error> {
    let kind = config
        .kind_for(name)
        .map_or(&imagegate_mock::DESCRIPTOR, ProviderKind::descriptor);
    (kind.build)(&config.settings(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_consistent() {
        let mut seen = std::collections::BTreeSet::new();
        for d in PROVIDERS {
            assert!(seen.insert(d.name), "{} twice", d.name);
            assert!(
                imagegate_core::quota::zone_named(d.day_zone).is_ok(),
                "{}: unknown zone {}",
                d.name,
                d.day_zone
            );
            assert!(!d.default_model.is_empty(), "{}", d.name);
            assert_eq!(
                d.recognises.is_some(),
                d.parse_error.is_some(),
                "{}",
                d.name
            );
        }
        assert!(needs_no_configuration("mock"));
        assert!(!needs_no_configuration("gemini"));
        // The keyed providers come first in preference order; the mock (no key) is last.
        assert_eq!(names()[..2], ["gemini", "openrouter"]);
        assert_eq!(names().last(), Some(&"mock"));
    }
}

//! The provider registry: from a name and the configuration to a ready `ImageProvider`.
//!
//! Adding a provider crate means one arm in [`build`] and one [`ProviderKind`] variant; no
//! command changes.

use std::sync::Arc;

use imagegate_core::{ApiKey, Error, ErrorKind, ImageProvider};
use imagegate_gemini::GeminiProvider;
use imagegate_mock::MockProvider;
use imagegate_openrouter::OpenRouterProvider;

use crate::config::{Config, ProviderConfig, ProviderKind};
use crate::failure::Failure;

/// The providers tried, in order, when neither `--provider` nor `default_provider` says.
const PREFERRED: [&str; 2] = ["gemini", "openrouter"];

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

/// Picks the provider: `--provider`, else `default_provider`, else the first of gemini and
/// openrouter that is configured, else the mock (with a note on stderr saying so).
///
/// # Errors
/// [`Failure::Usage`] when the named provider is not configured or cannot be built (no key,
/// bad base URL).
pub(crate) fn select(config: &Config, requested: Option<&str>) -> Result<Selected, Failure> {
    let name = match requested.or(config.default_provider.as_deref()) {
        Some(name) => name.to_owned(),
        None => match PREFERRED
            .iter()
            .find(|name| config.providers.contains_key(**name))
        {
            Some(name) => (*name).to_owned(),
            None => {
                eprintln!(
                    "imagegate: no provider configured and neither GEMINI_API_KEY nor \
                     OPENROUTER_API_KEY is set; using the built-in mock provider (synthetic \
                     images, no network)"
                );
                "mock".to_owned()
            }
        },
    };
    let provider_config = match config.providers.get(&name) {
        Some(provider_config) => provider_config.clone(),
        None if name == "mock" => ProviderConfig::default(),
        None => {
            let known: Vec<&str> = config
                .providers
                .keys()
                .map(String::as_str)
                .chain(std::iter::once("mock"))
                .collect();
            return Err(Failure::usage(format!(
                "no provider named `{name}` is configured (known: {}); set {} or add \
                 [providers.{name}] to the configuration",
                known.join(", "),
                match name.as_str() {
                    "gemini" => "GEMINI_API_KEY",
                    "openrouter" => "OPENROUTER_API_KEY",
                    _ => "its key",
                }
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

/// The key a provider's configuration points at, read from the environment.
fn key_for(name: &str, config: &ProviderConfig) -> Result<ApiKey, Error> {
    let Some(var) = config.key_env(name) else {
        return Err(Error::config(format!(
            "no `api_key_env` is configured for `{name}`"
        )));
    };
    match std::env::var(&var) {
        Ok(key) if !key.trim().is_empty() => Ok(ApiKey::new(key.trim())),
        _ => Err(Error::new(
            ErrorKind::ConfigInvalid,
            format!("needs an API key: set the environment variable {var}"),
        )),
    }
}

/// Builds one provider from its configuration.
pub(crate) fn build(name: &str, config: &ProviderConfig) -> Result<Arc<dyn ImageProvider>, Error> {
    let kind = config.kind_for(name).unwrap_or(ProviderKind::Mock);
    match kind {
        ProviderKind::Mock => {
            let mut mock = MockProvider::new().with_name(name);
            if let Some(project) = &config.project {
                mock = mock.with_project(project.clone());
            }
            if let Some(model) = &config.model {
                mock = mock.with_default_model(model.clone());
            }
            Ok(Arc::new(mock))
        }
        ProviderKind::Gemini => {
            let mut gemini = GeminiProvider::new(key_for(name, config)?);
            if let Some(url) = &config.base_url {
                gemini = gemini.with_base_url(url)?;
            }
            if let Some(timeout) = config.timeout {
                gemini = gemini.with_timeout(timeout);
            }
            if let Some(project) = &config.project {
                gemini = gemini.with_project(project.clone());
            }
            if let Some(model) = &config.model {
                gemini = gemini.with_model(model.clone());
            }
            Ok(Arc::new(gemini))
        }
        ProviderKind::Openrouter => {
            let mut openrouter = OpenRouterProvider::new(key_for(name, config)?);
            if let Some(url) = &config.base_url {
                openrouter = openrouter.with_base_url(url)?;
            }
            if let Some(timeout) = config.timeout {
                openrouter = openrouter.with_timeout(timeout);
            }
            if let Some(project) = &config.project {
                openrouter = openrouter.with_project(project.clone());
            }
            if let Some(model) = &config.model {
                openrouter = openrouter.with_model(model.clone());
            }
            Ok(Arc::new(openrouter))
        }
    }
}

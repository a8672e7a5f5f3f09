//! From a configured route to a ready `Router`: each target is a configured provider (and
//! model), drawing on its project's quota pool, with the shared quota state as the store.

use std::sync::Arc;

use imagegate_core::quota::QuotaStore;
use imagegate_core::{ImageProvider, SystemClock};
use imagegate_router::{Router, Target};

use crate::config::{Config, ProviderConfig};
use crate::failure::Failure;
use crate::providers::build;
use crate::state::{open_redis, open_store, pool_for};

/// Calls in flight when a route does not say.
const DEFAULT_CONCURRENCY: usize = 4;

/// The router for `route`, with every target built from its provider's configuration.
///
/// # Errors
/// [`Failure::Usage`] for an unknown route, a target that cannot be built (no key), or a
/// quota configuration or state file that does not resolve.
pub(crate) fn build_router(config: &Config, route: &str) -> Result<Router, Failure> {
    let Some(route_config) = config.routes.get(route) else {
        let known: Vec<&str> = config.routes.keys().map(String::as_str).collect();
        return Err(Failure::usage(format!(
            "no route named `{route}` is configured (known: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    };
    let mut builder = Router::builder(Arc::new(SystemClock))
        .concurrency(route_config.concurrency.unwrap_or(DEFAULT_CONCURRENCY))
        .prices(config.price_table());
    if let Some(store) = open_redis(config)? {
        builder = builder.store(Arc::new(store) as Arc<dyn QuotaStore>);
    } else if let Some(store) = open_store(config)? {
        builder = builder.store(Arc::new(store) as Arc<dyn QuotaStore>);
    }
    for entry in &route_config.targets {
        let (name, model) = match entry.split_once(':') {
            Some((name, model)) => (name, Some(model)),
            None => (entry.as_str(), None),
        };
        let provider_config = config.providers.get(name).cloned().unwrap_or_else(|| {
            // `mock` needs no configuration.
            ProviderConfig::default()
        });
        let provider: Arc<dyn ImageProvider> = build(name, &provider_config).map_err(|e| {
            Failure::usage(format!(
                "route `{route}`, target `{entry}`: {}",
                e.message()
            ))
        })?;
        let model = model.map_or_else(|| provider.default_model().to_owned(), str::to_owned);
        let Some(pool) = pool_for(name, &provider_config, &model)? else {
            return Err(Failure::usage(format!(
                "route `{route}`, target `{entry}`: the provider's kind is unknown"
            )));
        };
        builder = builder.target(Target::new(entry.clone(), provider, model, pool));
    }
    builder
        .build()
        .map_err(|e| Failure::usage(format!("route `{route}`: {}", e.message())))
}

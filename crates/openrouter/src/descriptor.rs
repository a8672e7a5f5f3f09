//! [`DESCRIPTOR`]: everything the rest of imagegate needs to know about this provider, in one
//! place (the registry's entry; docs/adding-a-provider.md).

use std::sync::Arc;

use imagegate_core::ImageProvider;
use imagegate_core::quota::PerSize;
use imagegate_core::registry::{ModelPrice, ProviderDescriptor, ProviderSettings};
use serde_json::Value;

use crate::classify::{PROVIDER, parse_error};
use crate::provider::{API_KEY_VAR, BASE_URL_VAR, DEFAULT_MODEL, KEY_HELP, OpenRouterProvider};

/// OpenRouter in the registry.
pub static DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    name: PROVIDER,
    label: "OpenRouter",
    key_vars: &[API_KEY_VAR],
    key_help: KEY_HELP,
    base_url_var: Some(BASE_URL_VAR),
    default_model: DEFAULT_MODEL,
    // OpenRouter's daily caps (the `:free` models' requests per day) reset at midnight UTC.
    day_zone: "UTC",
    // No tiers: paid models have no fixed limits; configure `:free` models' limits yourself.
    presets: None,
    prices: PRICES,
    parse_error: Some(parse_error),
    recognises: Some(recognises),
    build,
};

const fn sized(half: f64, one_k: f64, two_k: f64, four_k: f64) -> PerSize<f64> {
    PerSize {
        per_image: None,
        half: Some(half),
        one_k: Some(one_k),
        two_k: Some(two_k),
        four_k: Some(four_k),
    }
}

const fn flat(each: f64) -> PerSize<f64> {
    PerSize {
        per_image: Some(each),
        half: None,
        one_k: None,
        two_k: None,
        four_k: None,
    }
}

/// Prices per image in US dollars of the Google image models OpenRouter serves (it passes
/// Google's prices through: <https://openrouter.ai/google/gemini-2.5-flash-image>). Names are
/// looked up without the `google/` prefix, and `:free` variants cost nothing. The answer's own
/// `usage.cost` is what the router records; these estimate a request before it is sent.
pub const PRICES: &[ModelPrice] = &[
    ModelPrice {
        model: "gemini-3.1-flash-image",
        price: sized(0.045, 0.067, 0.101, 0.151),
    },
    ModelPrice {
        model: "gemini-3-pro-image",
        price: sized(0.134, 0.134, 0.134, 0.24),
    },
    ModelPrice {
        model: "gemini-2.5-flash-image",
        price: flat(0.039),
    },
];

/// OpenRouter's envelope: `metadata`, or a numeric `code` without Google's canonical
/// `status` / `details` (OpenAI's envelope has a string or null `code` and a `type`).
fn recognises(error: &Value) -> bool {
    let google = error.get("status").is_some_and(Value::is_string)
        || error.get("details").is_some_and(Value::is_array);
    error.get("metadata").is_some() || (!google && error.get("code").is_some_and(Value::is_number))
}

fn build(settings: &ProviderSettings) -> imagegate_core::Result<Arc<dyn ImageProvider>> {
    let var = settings.key_env.as_deref().unwrap_or(API_KEY_VAR);
    let mut openrouter = OpenRouterProvider::new(imagegate_http::key_from_env(var, KEY_HELP)?);
    if let Some(url) = &settings.base_url {
        openrouter = openrouter.with_base_url(url)?;
    }
    if let Some(timeout) = settings.timeout {
        openrouter = openrouter.with_timeout(timeout);
    }
    if let Some(bytes) = settings.max_response_bytes {
        openrouter = openrouter.with_max_response_bytes(bytes);
    }
    if let Some(project) = &settings.project {
        openrouter = openrouter.with_project(project.clone());
    }
    if let Some(model) = &settings.model {
        openrouter = openrouter.with_model(model.clone());
    }
    Ok(Arc::new(openrouter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegate_core::registry::price_table;

    #[test]
    fn the_descriptor_holds_openrouter_figures() {
        assert_eq!(DESCRIPTOR.zone(), jiff::tz::TimeZone::UTC);
        assert!(DESCRIPTOR.presets.is_none());
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        let t = price_table(&[&DESCRIPTOR]);
        assert!(close(
            t.per_image("google/gemini-2.5-flash-image", None),
            0.039
        ));
        assert!(close(
            t.per_image("google/gemini-2.5-flash-image:free", None),
            0.0
        ));
        let google =
            serde_json::json!({"code": 429, "message": "x", "status": "RESOURCE_EXHAUSTED"});
        let ours = serde_json::json!({"code": 429, "message": "x", "metadata": {"raw": "{}"}});
        assert!(!recognises(&google) && recognises(&ours));
        let bare = serde_json::json!({"code": 429, "message": "Rate limit exceeded"});
        let openai = serde_json::json!({"message": "x", "type": "requests", "param": null, "code": "rate_limit_exceeded"});
        assert!(recognises(&bare) && !recognises(&openai));
    }
}

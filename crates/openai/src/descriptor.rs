//! [`DESCRIPTOR`]: everything the rest of imagegate needs to know about this provider, in one
//! place (the registry's entry; docs/adding-a-provider.md).

use std::sync::Arc;

use imagegate_core::ImageProvider;
use imagegate_core::quota::PerSize;
use imagegate_core::registry::{ModelPrice, ProviderDescriptor, ProviderSettings};
use serde_json::Value;

use crate::classify::{PROVIDER, parse_error};
use crate::provider::{
    API_KEY_VAR, BASE_URL_VAR, DEFAULT_MODEL, KEY_HELP, ORGANIZATION_VAR, OpenAiProvider,
    PROJECT_VAR,
};

/// OpenAI (and every server speaking its Images API) in the registry.
pub static DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    name: PROVIDER,
    label: "OpenAI",
    key_vars: &[API_KEY_VAR],
    key_help: KEY_HELP,
    base_url_var: Some(BASE_URL_VAR),
    default_model: DEFAULT_MODEL,
    // OpenAI's daily limits (requests per day on the lower usage tiers) are counted in UTC days.
    day_zone: "UTC",
    // No presets: OpenAI's limits depend on the organization's usage tier *and* change without
    // notice; the `x-ratelimit-*` headers of every answer and the 429s state them, and the
    // quota model learns them from there (or from `[providers.openai.models.*]`).
    presets: None,
    prices: PRICES,
    parse_error: Some(parse_error),
    recognises: Some(recognises),
    build,
};

const fn flat(each: f64) -> PerSize<f64> {
    PerSize {
        per_image: Some(each),
        half: None,
        one_k: None,
        two_k: None,
        four_k: None,
    }
}

const fn square(half: f64, one_k: f64) -> PerSize<f64> {
    PerSize {
        per_image: None,
        half: Some(half),
        one_k: Some(one_k),
        two_k: None,
        four_k: None,
    }
}

/// Prices per image in US dollars, from OpenAI's public price list
/// (<https://platform.openai.com/docs/pricing>, "Image generation"): a 1024x1024 image at
/// the default quality (`gpt-image-1` medium, `dall-e-3` standard). Override them under
/// `[prices]`. For GPT-image models the answer's `usage` gives the real cost
/// ([`cost_from_usage`]), which is what the router records; these estimate a request before
/// it is sent.
pub const PRICES: &[ModelPrice] = &[
    ModelPrice {
        model: "gpt-image-1-mini",
        price: flat(0.011),
    },
    ModelPrice {
        model: "gpt-image-1",
        price: flat(0.042),
    },
    ModelPrice {
        model: "dall-e-3",
        price: flat(0.04),
    },
    ModelPrice {
        model: "dall-e-2",
        price: square(0.018, 0.02),
    },
];

/// Token prices of the GPT-image models in US dollars per million tokens, from the same page:
/// (model prefix, text input, image input, image output).
const TOKEN_PRICES: [(&str, f64, f64, f64); 2] = [
    ("gpt-image-1-mini", 2.0, 2.5, 8.0),
    ("gpt-image-1", 5.0, 10.0, 40.0),
];

/// The cost of one answer from its `usage` (GPT-image models report input text and image
/// tokens and output image tokens); `None` for models without token prices.
pub fn cost_from_usage(model: &str, usage: &Value) -> Option<f64> {
    let bare = model.rsplit('/').next().unwrap_or(model);
    let (_, text, image, output) = TOKEN_PRICES
        .iter()
        .find(|(prefix, ..)| bare.starts_with(prefix))?;
    let count = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0) as f64;
    let details = usage.get("input_tokens_details");
    let input = count(usage.get("input_tokens"));
    let image_in = count(details.and_then(|d| d.get("image_tokens")));
    let text_in = details
        .and_then(|d| d.get("text_tokens"))
        .map_or(input - image_in, |t| count(Some(t)));
    let out = count(usage.get("output_tokens"));
    Some((text_in * text + image_in * image + out * output) / 1_000_000.0)
}

/// OpenAI's envelope: a string `type` or a string `code` (Azure-style relays send `"429"`),
/// and none of Google's `status` / `details` or OpenRouter's `metadata`; its `code` is never a
/// number.
fn recognises(error: &Value) -> bool {
    (error.get("type").is_some_and(Value::is_string)
        || error.get("code").is_some_and(Value::is_string))
        && error.get("status").is_none()
        && error.get("details").is_none()
        && error.get("metadata").is_none()
}

fn build(settings: &ProviderSettings) -> imagegate_core::Result<Arc<dyn ImageProvider>> {
    let var = settings.key_env.as_deref().unwrap_or(API_KEY_VAR);
    let mut openai = OpenAiProvider::new(imagegate_http::key_from_env(var, KEY_HELP)?);
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(org) = env(ORGANIZATION_VAR) {
        openai = openai.with_organization(org.trim());
    }
    if let Some(project) = env(PROJECT_VAR) {
        openai = openai.with_openai_project(project.trim());
    }
    if let Some(url) = &settings.base_url {
        openai = openai.with_base_url(url)?;
    }
    if let Some(timeout) = settings.timeout {
        openai = openai.with_timeout(timeout);
    }
    if let Some(bytes) = settings.max_response_bytes {
        openai = openai.with_max_response_bytes(bytes);
    }
    if let Some(project) = &settings.project {
        openai = openai.with_project(project.clone());
    }
    if let Some(model) = &settings.model {
        openai = openai.with_model(model.clone());
    }
    Ok(Arc::new(openai))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegate_core::registry::price_table;
    use serde_json::json;

    #[test]
    fn the_descriptor_holds_openai_figures() {
        assert_eq!(DESCRIPTOR.zone(), jiff::tz::TimeZone::UTC);
        assert!(DESCRIPTOR.presets.is_none());
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        let t = price_table(&[&DESCRIPTOR]);
        assert!(close(t.per_image("gpt-image-1", None), 0.042));
        assert!(close(t.per_image("gpt-image-1-mini", None), 0.011));
        assert!(close(t.per_image("dall-e-3", None), 0.04));
        assert!(close(
            t.per_image("dall-e-2", Some(imagegate_core::ImageSize::Half)),
            0.018
        ));
        let ours =
            json!({"message": "x", "type": "invalid_request_error", "param": null, "code": null});
        let google = json!({"code": 429, "message": "x", "status": "RESOURCE_EXHAUSTED"});
        let openrouter = json!({"code": 429, "message": "x", "metadata": {}});
        assert!(recognises(&ours) && !recognises(&google) && !recognises(&openrouter));
    }

    #[test]
    fn usage_prices_gpt_image_answers() {
        let usage = json!({"input_tokens": 50, "output_tokens": 4160,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 40}});
        let cost = cost_from_usage("gpt-image-1", &usage).unwrap();
        assert!((cost - (10.0 * 5.0 + 40.0 * 10.0 + 4160.0 * 40.0) / 1e6).abs() < 1e-12);
        assert_eq!(cost_from_usage("dall-e-3", &usage), None);
    }
}

//! [`DESCRIPTOR`]: everything the rest of imagegate needs to know about this provider, in one
//! place (the registry's entry; docs/adding-a-provider.md).

use std::sync::Arc;

use imagegate_core::ImageProvider;
use imagegate_core::quota::PerSize;
use imagegate_core::registry::{ModelPrice, ProviderDescriptor, ProviderSettings};
use serde_json::Value;

use crate::provider::{API_KEY_ENV, BASE_URL_ENV, GeminiProvider, KEY_HELP};
use crate::response::{PROVIDER, parse_error};
use crate::tiers::preset;
use imagegate_gemini_wire::DEFAULT_MODEL;

/// The Gemini API in the registry.
pub static DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    name: PROVIDER,
    label: "Gemini",
    key_vars: &[API_KEY_ENV],
    key_help: KEY_HELP,
    base_url_var: Some(BASE_URL_ENV),
    default_model: DEFAULT_MODEL,
    // Gemini's daily quotas reset at midnight Pacific time.
    day_zone: "America/Los_Angeles",
    presets: Some(preset),
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

/// Interactive prices per image in US dollars, from Google's pricing page
/// (<https://ai.google.dev/gemini-api/docs/pricing>); names are prefixes, so
/// `gemini-3-pro-image` prices `gemini-3-pro-image-preview`. Overridable under `[prices]`.
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
    ModelPrice {
        model: "imagen-4.0-fast-generate",
        price: flat(0.02),
    },
    ModelPrice {
        model: "imagen-4.0-generate",
        price: flat(0.04),
    },
    ModelPrice {
        model: "imagen-4.0-ultra-generate",
        price: flat(0.06),
    },
];

/// Google's error envelope carries a canonical `status` string or typed `details`, and no
/// `metadata` (OpenRouter's mark).
fn recognises(error: &Value) -> bool {
    let google = error.get("status").is_some_and(Value::is_string)
        || error.get("details").is_some_and(Value::is_array);
    // Vertex AI speaks the same envelope; its details name aiplatform.googleapis.com.
    google
        && error.get("metadata").is_none()
        && !imagegate_google_rpc::names_service(error, "aiplatform.googleapis.com")
}

fn build(settings: &ProviderSettings) -> imagegate_core::Result<Arc<dyn ImageProvider>> {
    let var = settings.key_env.as_deref().unwrap_or(API_KEY_ENV);
    let mut gemini = GeminiProvider::new(imagegate_http::key_from_env(var, KEY_HELP)?);
    if let Some(url) = &settings.base_url {
        gemini = gemini.with_base_url(url)?;
    }
    if let Some(timeout) = settings.timeout {
        gemini = gemini.with_timeout(timeout);
    }
    if let Some(bytes) = settings.max_response_bytes {
        gemini = gemini.with_max_response_bytes(bytes);
    }
    if let Some(project) = &settings.project {
        gemini = gemini.with_project(project.clone());
    }
    if let Some(model) = &settings.model {
        gemini = gemini.with_model(model.clone());
    }
    Ok(Arc::new(gemini))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegate_core::ImageSize;
    use imagegate_core::quota::Tier;
    use imagegate_core::registry::price_table;

    #[test]
    fn the_descriptor_holds_gemini_figures() {
        assert_eq!(DESCRIPTOR.zone().iana_name(), Some("America/Los_Angeles"));
        assert_eq!(DESCRIPTOR.default_model, "gemini-2.5-flash-image");
        assert_eq!(
            DESCRIPTOR
                .preset("gemini-2.5-flash-image", Some(Tier::Free))
                .rpm,
            Some(10)
        );
        assert!(DESCRIPTOR.preset("gemini-2.5-flash-image", None).is_empty());
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        let t = price_table(&[&DESCRIPTOR]);
        assert!(close(
            t.per_image("gemini-3.1-flash-image-preview", Some(ImageSize::Half)),
            0.045
        ));
        assert!(close(
            t.per_image("gemini-3.1-flash-image-preview", None),
            0.067
        ));
        assert!(close(
            t.per_image("gemini-3-pro-image-preview", Some(ImageSize::FourK)),
            0.24
        ));
        assert!(close(t.per_image("imagen-4.0-generate-001", None), 0.04));
        assert_eq!(t.per_image("dall-e-3", None), None);
    }

    #[test]
    fn it_recognises_google_envelopes_only() {
        let google =
            serde_json::json!({"code": 429, "message": "x", "status": "RESOURCE_EXHAUSTED"});
        let openrouter = serde_json::json!({"code": 429, "message": "x", "metadata": {}});
        assert!(recognises(&google));
        assert!(!recognises(&openrouter));
    }

    #[test]
    fn build_names_the_missing_key_variable() {
        let settings = ProviderSettings::new("g")
            .with_key_env(Some("IMAGEGATE_TEST_UNSET_VARIABLE_FOR_GEMINI".to_owned()));
        let err = (DESCRIPTOR.build)(&settings).unwrap_err();
        assert!(
            err.message()
                .contains("IMAGEGATE_TEST_UNSET_VARIABLE_FOR_GEMINI"),
            "{err}"
        );
    }
}

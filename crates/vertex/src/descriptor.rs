//! [`DESCRIPTOR`]: everything the rest of imagegate needs to know about this provider, in one
//! place (the registry's entry; docs/adding-a-provider.md).

use std::sync::Arc;

use imagegate_core::ImageProvider;
use imagegate_core::quota::PerSize;
use imagegate_core::registry::{ModelPrice, ProviderDescriptor, ProviderSettings};
use serde_json::Value;

use crate::classify::{PROVIDER, parse_error};
use crate::credentials::CREDENTIALS_VAR;
use crate::provider::{BASE_URL_VAR, DEFAULT_MODEL, KEY_HELP, VertexProvider};

/// Vertex AI in the registry.
///
/// Its "key" variable is `GOOGLE_APPLICATION_CREDENTIALS`, the path of a credentials file:
/// set, it makes the provider exist like an API key does for the others. Without it the
/// provider still builds from the file `gcloud auth application-default login` writes.
pub static DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    name: PROVIDER,
    label: "Vertex AI",
    key_vars: &[CREDENTIALS_VAR],
    key_help: KEY_HELP,
    base_url_var: Some(BASE_URL_VAR),
    default_model: DEFAULT_MODEL,
    // Google Cloud's daily quotas reset at midnight Pacific time.
    day_zone: "America/Los_Angeles",
    // No presets: Gemini and Imagen on Vertex run on Dynamic Shared Quota (no per-project
    // limit to configure or learn); 429s make the router move on, not learn.
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

/// Prices per image in US dollars from Vertex AI's public price list
/// (<https://cloud.google.com/vertex-ai/generative-ai/pricing>): Gemini image output and
/// Imagen per image. Override them under `[prices]`. (Where the Gemini API prices the same
/// model, the registry keeps the first provider's figure; they agree.)
pub const PRICES: &[ModelPrice] = &[
    ModelPrice {
        model: "imagen-4.0-ultra-generate",
        price: flat(0.06),
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
        model: "imagen-3.0-fast-generate",
        price: flat(0.02),
    },
    ModelPrice {
        model: "imagen-3.0-generate",
        price: flat(0.04),
    },
    ModelPrice {
        model: "gemini-2.5-flash-image",
        price: flat(0.039),
    },
];

/// Google's envelope whose details name Vertex AI (`aiplatform.googleapis.com`); a bare
/// Google body is the Gemini API's to claim (both classify it alike but for the 429 rule).
fn recognises(error: &Value) -> bool {
    error.get("status").is_some_and(Value::is_string)
        && imagegate_google_rpc::names_service(error, "aiplatform.googleapis.com")
}

fn build(settings: &ProviderSettings) -> imagegate_core::Result<Arc<dyn ImageProvider>> {
    let var = settings
        .key_env
        .clone()
        .unwrap_or_else(|| CREDENTIALS_VAR.to_owned());
    let mut vertex = VertexProvider::from_vars(settings.project.as_deref(), |name| {
        // The configured variable stands in for GOOGLE_APPLICATION_CREDENTIALS.
        let name = if name == CREDENTIALS_VAR {
            var.as_str()
        } else {
            name
        };
        std::env::var(name).ok()
    })?;
    if let Some(url) = &settings.base_url {
        vertex = vertex.with_base_url(url)?;
    }
    if let Some(timeout) = settings.timeout {
        vertex = vertex.with_timeout(timeout);
    }
    if let Some(bytes) = settings.max_response_bytes {
        vertex = vertex.with_max_response_bytes(bytes);
    }
    if let Some(model) = &settings.model {
        vertex = vertex.with_model(model.clone());
    }
    Ok(Arc::new(vertex))
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegate_core::registry::price_table;
    use serde_json::json;

    #[test]
    fn the_descriptor_holds_vertex_figures() {
        assert_eq!(DESCRIPTOR.zone(), *imagegate_core::quota::PACIFIC);
        assert!(DESCRIPTOR.presets.is_none());
        let t = price_table(&[&DESCRIPTOR]);
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-9);
        assert!(close(t.per_image("imagen-4.0-generate-001", None), 0.04));
        assert!(close(
            t.per_image("imagen-4.0-fast-generate-001", None),
            0.02
        ));
        let vertex = json!({"code": 429, "message": "x", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED", "domain": "aiplatform.googleapis.com"}]});
        let gemini = json!({"code": 429, "message": "x", "status": "RESOURCE_EXHAUSTED"});
        assert!(recognises(&vertex) && !recognises(&gemini));
    }
}

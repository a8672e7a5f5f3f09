#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod batch;
mod descriptor;
mod provider;
mod response;
mod tiers;

pub use descriptor::{DESCRIPTOR, PRICES};
// The wire format is shared with Vertex AI (imagegate-gemini-wire); re-exported so this crate's
// API is unchanged.
pub use imagegate_gemini_wire::{
    DEFAULT_MODEL, Endpoint, IMAGEN_MAX_SAMPLES, build_request, capabilities_for, check_model,
    endpoint_for, normalize_model, takes_image_size,
};
pub use provider::{API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, GeminiProvider};
pub use response::{PROVIDER, parse_error, parse_response, parse_response_for, parse_success};
pub use tiers::{ModelFamily, preset};

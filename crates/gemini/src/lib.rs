#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod descriptor;
mod models;
mod provider;
mod request;
mod response;
mod tiers;

pub use descriptor::{DESCRIPTOR, PRICES};
pub use models::{
    DEFAULT_MODEL, Endpoint, IMAGEN_MAX_SAMPLES, capabilities_for, check_model, endpoint_for,
    normalize_model, takes_image_size,
};
pub use provider::{API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_TIMEOUT, GeminiProvider};
pub use request::build_request;
pub use response::{PROVIDER, parse_error, parse_response, parse_response_for, parse_success};
pub use tiers::{ModelFamily, preset};

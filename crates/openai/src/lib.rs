#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod classify;
mod descriptor;
mod envelope;
mod provider;
mod ratelimit;
mod request;
mod response;

pub use classify::parse_error;
pub use descriptor::{DESCRIPTOR, PRICES, cost_from_usage};
pub use provider::{
    API_KEY_VAR, BASE_URL_VAR, DEFAULT_BASE_URL, DEFAULT_MODEL, DEFAULT_TIMEOUT, OpenAiProvider,
};
pub use ratelimit::{go_duration, rate_limits};
pub use request::{EditForm, ModelFamily, build_edit_form, build_request, capabilities, size_for};
pub use response::{image_links, parse_response, parse_success};

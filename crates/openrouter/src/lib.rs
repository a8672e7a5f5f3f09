#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod base_url;
mod classify;
mod descriptor;
mod envelope;
mod key;
mod provider;
mod request;
mod response;
mod upstream;

pub use classify::parse_error;
pub use descriptor::{DESCRIPTOR, PRICES};
pub use key::{KeyInfo, KeyRateLimit, parse_key_info};
pub use provider::{API_KEY_VAR, BASE_URL_VAR, DEFAULT_MODEL, DEFAULT_TIMEOUT, OpenRouterProvider};
pub use request::{build_request, capabilities};
pub use response::{parse_response, parse_success};

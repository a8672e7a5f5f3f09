#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod base_url;
mod key;
mod shell;
mod transport;

pub use key::{key_from_env, key_from_lookup, sensitive_header};
pub use shell::{Answer, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, HttpShell};
pub use transport::transport_error;

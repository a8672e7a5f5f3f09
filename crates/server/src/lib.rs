#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod app;
mod auth;
mod chat;
mod config;
mod deadline;
mod failure;
mod files;
#[cfg(test)]
mod fuzz;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod gemini;
mod handle;
mod held;
mod keys;
mod observe;
mod openai;
mod page;
mod query;
mod quota_page;
mod size;

pub use app::Gateway;
pub use config::{ClientConfig, ConfigError, DEFAULT_MAX_BODY, ServerConfig};
pub use failure::{Dialect, FailureKind};
pub use keys::{KeyError, generate_key, key_sha256};
pub use page::{STATUS_PAGE, page as status_page};
pub use quota_page::{quota_page, serve_quota_page};

//! # imagegate-server
//!
//! `imagegate serve`: a gateway that unmodified OpenAI, Gemini and OpenRouter clients point
//! at by changing one base URL. Every request goes through the one [`Router`](imagegate_router::Router)
//! the caller built (the CLI assembles it from configuration exactly as `generate` does), so the
//! quotas are respected before sending, fallback happens across projects and providers, and when
//! capacity is not there in time the client gets a 429 in its own dialect with the exact hint
//! its SDK honours.
//!
//! - OpenAI Images: `POST /v1/images/generations`, `POST /v1/images/edits` (multipart),
//!   `GET /v1/images/files/{id}` for `response_format: "url"`.
//! - Gemini: `POST /{v1beta,v1}/models/{model}:generateContent`, `:streamGenerateContent`,
//!   `:predict`, `GET /{v1beta,v1}/models`.
//! - OpenRouter-style chat: `POST /v1/chat/completions`, `POST /api/v1/chat/completions`.
//! - `GET /v1/models`, `/healthz`, `/readyz`, `/status.json`, `/metrics`.
//!
//! The crate depends on core and the router only; docs/gateway.md is the user's guide.
//!
//! ```no_run
//! # async fn run(router: imagegate_router::Router) -> Result<(), Box<dyn std::error::Error>> {
//! use imagegate_server::{Gateway, ServerConfig};
//!
//! let gateway = Gateway::new(router, ServerConfig::default(), std::env::temp_dir().join("files"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! gateway.serve(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```
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
mod gemini;
mod handle;
mod keys;
mod observe;
mod openai;
mod query;
mod size;

pub use app::Gateway;
pub use config::{ClientConfig, ConfigError, DEFAULT_MAX_BODY, ServerConfig};
pub use failure::{Dialect, FailureKind};
pub use keys::{KeyError, generate_key, key_sha256};

//! # imagegate-emulator
//!
//! A local Gemini and OpenRouter that enforce *true* quotas over HTTP, so that any client, in
//! any language, can test its own 429 handling offline: point its base URL here and it meets
//! the same pools, windows, Pacific day, limit-0 projects and overloads as the simulator
//! (`imagegate_mock::sim`), answered with the same wire bodies the real services send.
//!
//! - Gemini: `POST /{v1beta,v1}/models/{model}:generateContent`, `:streamGenerateContent`
//!   (`?alt=sse` or a JSON array), `:predict` (Imagen), `GET /{v}/models[/{model}]`; key in
//!   `x-goog-api-key` or `?key=`.
//! - OpenRouter: `POST /api/v1/chat/completions` with `modalities`, `GET /api/v1/key`; key as
//!   `Authorization: Bearer`.
//! - Observability: `GET /emulator/stats`, `GET /emulator/log?since=N`,
//!   `POST /emulator/reset`.
//!
//! Every admission is decided by the project's [`SimulatedUpstream`](imagegate_mock::sim::SimulatedUpstream)
//! under one lock, so concurrent clients can never overshoot a pool. Time comes from an
//! injected [`Clock`](imagegate_core::Clock): the wall clock by default, a
//! [`ManualClock`](imagegate_core::ManualClock) in tests. docs/emulate.md is the user's guide.
//!
//! ```no_run
//! use std::path::Path;
//!
//! use imagegate_emulator::{Emulator, EmulatorConfig};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = EmulatorConfig::load(Path::new("fixtures/scenarios/shared-pool.toml"))?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("listening on http://{}", listener.local_addr()?);
//! Emulator::new(config)
//!     .serve(listener, async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod book;
mod config;
mod emulator;
mod gemini;
mod http_util;
mod observe;
mod openrouter;
mod parse;

pub use book::{LogEntry, Outcome};
pub use config::{ConfigError, DEFAULT_REJECT_LATENCY, EmulatorConfig, KeyEntry, PoolEntry};
pub use emulator::{Emulator, MAX_BODY_BYTES};
pub use observe::{Counters, InUseView, LimitsView, LogPage, PoolStats, Stats};

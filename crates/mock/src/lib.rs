//! # imagegate-mock
//!
//! In-process providers for imagegate, for tests, demos and dry runs that must not touch the
//! network or spend quota:
//!
//! - [`MockProvider`] always succeeds with real PNG images drawn deterministically from the
//!   request (model, prompt, seed, size, aspect ratio, image index, reference images): the same
//!   request gives byte-identical images, a different prompt a visibly different pattern.
//! - [`ScriptedProvider`] plays back a queue of [`Outcome`]s (images, or any
//!   [`ErrorKind`](imagegate_core::ErrorKind) with `retry_after` and quota facts, each after a
//!   latency on an injected clock) and records every call for assertions.
//! - [`sim`] is a simulated upstream: one provider x project enforcing a scenario's true quota
//!   pools and failing with the real services' wire errors, classified by an injected parser.
//! - [`render`] is the PNG renderer both use, for fixtures and tests that need a real image.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use imagegate_core::{
//!     Error, ErrorKind, GenerateRequest, ImageProvider, ImageSize, ManualClock,
//! };
//! use imagegate_mock::{MockProvider, Outcome, ScriptedProvider};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let request = GenerateRequest::new("a lighthouse at dusk").with_size(ImageSize::Half);
//!
//! // Always succeeds, the same bytes every time.
//! let mock = MockProvider::new();
//! let first = mock.generate(&request).await?;
//! let again = mock.generate(&request).await?;
//! assert_eq!(first.images[0].bytes, again.images[0].bytes);
//! assert_eq!((first.images[0].width, first.images[0].height), (Some(512), Some(512)));
//!
//! // A 429 that asks for 15 s, then an image after 2 simulated seconds.
//! let clock = Arc::new(ManualClock::new("2026-03-08T09:00:00Z".parse()?));
//! let scripted = ScriptedProvider::new("gemini", clock.clone())
//!     .then(Outcome::error(
//!         Error::new(ErrorKind::RateLimited, "per-minute quota full")
//!             .with_retry_after(Duration::from_secs(15)),
//!     ))
//!     .then(Outcome::image().after(Duration::from_secs(2)));
//! let err = scripted.generate(&request).await.unwrap_err();
//! assert_eq!(err.retry_after(), Some(Duration::from_secs(15)));
//! assert_eq!(scripted.generate(&request).await?.images.len(), 1);
//! assert_eq!(scripted.calls().len(), 2);
//! assert_eq!(clock.sleeps(), [Duration::from_secs(2)]);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod descriptor;
mod provider;
pub mod render;
mod response;
mod scripted;
pub mod sim;

pub use descriptor::DESCRIPTOR;
pub use provider::{DEFAULT_MODEL, MAX_IMAGES_PER_CALL, MockProvider};
pub use response::OUTPUT_TOKENS_PER_IMAGE;
pub use scripted::{Outcome, RecordedCall, ScriptedProvider};

//! # imagegate-core
//!
//! The vocabulary every imagegate crate speaks: requests and responses, the [`ImageProvider`]
//! trait, the one [`Error`] with its [`ErrorKind`], retry-hint parsers, the [`Clock`] through
//! which all time flows, the quota model, and the [`registry`] types each provider describes
//! itself with. No HTTP client (`imagegate-http` is the providers' shared one) and no
//! provider's figures: each provider's descriptor brings its own presets, prices and zone.
//!
//! ```
//! use imagegate_core::{ErrorKind, GenerateRequest, ImageSize};
//!
//! let request = GenerateRequest::new("a lighthouse at dusk")
//!     .with_size(ImageSize::OneK)
//!     .with_aspect_ratio("16:9".parse()?);
//! request.validate()?;
//! assert_eq!(ErrorKind::QuotaExhausted.as_str(), "quota_exhausted");
//! # Ok::<(), imagegate_core::Error>(())
//! ```
#![deny(missing_docs)]

mod advice;
pub mod clock;
mod error;
pub mod hints;
mod image;
mod provider;
pub mod quota;
pub mod registry;
mod request;
mod response;
pub mod secret;

pub use advice::human_duration;
pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use error::{Error, ErrorKind, QuotaFacts, Result};
pub use image::{Image, extension_for, sniff_mime};
pub use provider::{Capabilities, ImageProvider};
pub use quota::Dimension;
pub use quota::{
    Admission, Cost, Limits, MemoryQuotaStore, PoolConfig, PoolId, PoolStatus, PriceTable,
    QuotaStore, Reservation,
};
pub use request::{AspectRatio, GenerateRequest, ImageSize, Priority, ReferenceImage};
pub use response::{Attempt, GenerateResponse, ServedBy, TokenUsage, duration_ms};
pub use secret::ApiKey;

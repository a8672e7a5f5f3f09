#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod advice;
pub mod clock;
mod dimension;
mod error;
pub mod hints;
mod image;
mod provider;
pub mod quota;
pub mod registry;
mod request;
mod response;
pub mod secret;
mod usage;

pub use advice::human_duration;
pub use error::{Error, ErrorKind, QuotaFacts, Result};
pub use image::{Image, extension_for, sniff_mime};
pub use provider::{Capabilities, ImageProvider};
pub use request::{AspectRatio, GenerateRequest, ImageSize, Priority, ReferenceImage};
pub use response::{Attempt, GenerateResponse, ServedBy, duration_ms};
pub use usage::TokenUsage;

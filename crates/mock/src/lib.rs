#![doc = include_str!("../README.md")]
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

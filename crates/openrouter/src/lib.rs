//! # imagegate-openrouter
//!
//! The OpenRouter provider for imagegate: image output through chat completions, key and credit info.
#![deny(missing_docs)]

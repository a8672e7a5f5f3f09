//! # imagegate-gemini
//!
//! The Gemini API provider for imagegate: generateContent and Imagen predict, with every error classified.
#![deny(missing_docs)]

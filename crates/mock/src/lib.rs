//! # imagegate-mock
//!
//! In-process providers for imagegate: deterministic PNG images, scripted outcomes, and a quota-enforcing simulated upstream.
#![deny(missing_docs)]

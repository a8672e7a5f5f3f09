//! # imagegate-router
//!
//! One ImageProvider over many targets: throttling, retries, fallback, queue, cache and budget.
#![deny(missing_docs)]

//! # imagegate-google-rpc
//!
//! Google's error envelope (google.rpc.Status with its details) parsed and classified, for every provider that speaks to Google or relays its errors.
#![deny(missing_docs)]

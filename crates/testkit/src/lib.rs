//! # imagegate-testkit
//!
//! What a provider crate needs to prove itself offline:
//!
//! - [`fixture`]: the format of `fixtures/<provider>/<endpoint>/<scenario>.json` and its loader;
//! - [`table`]: every fixture of a provider through its pure parser, checked against `expect`;
//! - [`mount`]: a fixture's response served by a per-test wiremock server;
//! - [`conformance`]: the provider itself, over HTTP, against every fixture, checking the
//!   `ImageProvider` contract (one request per call, the key only in a header);
//! - [`secrets`]: the scan that keeps key-shaped strings out of `fixtures/`.
//!
//! Not a stable API: it changes with the tests that use it.
#![deny(missing_docs)]

pub mod conformance;
pub mod fixture;
pub mod mount;
pub mod secrets;
pub mod table;

pub use fixture::{Expect, Fixture, FixtureRequest, FixtureResponse, Origin, fixtures_root};
pub use mount::mount;
pub use table::check_table;

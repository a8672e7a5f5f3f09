//! # imagegate-testkit
//!
//! What a provider crate needs to prove itself offline: the fixture format of
//! `fixtures/<provider>/<endpoint>/<scenario>.json` and its loader. Not a stable API: it
//! changes with the tests that use it.
#![deny(missing_docs)]

pub mod fixture;

pub use fixture::{Expect, Fixture, FixtureRequest, FixtureResponse, Origin, fixtures_root};

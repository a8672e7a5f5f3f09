#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

// Not about fixtures: the runner of the pinned Python SDK suites.
pub mod python;

pub mod conformance;
pub mod fixture;
pub mod mount;
pub mod secrets;
pub mod table;

pub use fixture::{Expect, Fixture, FixtureRequest, FixtureResponse, Origin, fixtures_root};
pub use mount::mount;
pub use table::check_table;

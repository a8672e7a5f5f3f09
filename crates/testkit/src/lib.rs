#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

// Not about fixtures: the runner of the pinned Python SDK suites.
pub mod python;

pub mod conformance;
mod fixture;
mod mount;
pub mod secrets;
mod table;

pub use fixture::{
    DEFAULT_NOW, Expect, Fixture, FixtureRequest, FixtureResponse, Origin, fixtures_root,
};
pub use mount::{mount, response_template};
pub use table::{check_fixtures, check_table};

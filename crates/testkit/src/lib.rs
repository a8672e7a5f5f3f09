//! # imagegate-testkit
//!
//! Test kit for imagegate providers: the fixture format and loader, wiremock mounting, the table runner and the conformance suite.
#![deny(missing_docs)]

//! The imagegate command.
fn main() {}

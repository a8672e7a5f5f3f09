//! The table runner: every fixture of a provider through that provider's pure parser.
//!
//! A provider crate's table test is one line: hand [`check_table`] the provider's fixture
//! directory and a function from a fixture to the parser's outcome. Every mismatch of every
//! fixture is collected, so one run shows the whole picture instead of the first failure.

use imagegate_core::{Error, GenerateResponse};

use crate::fixture::Fixture;

/// Runs every fixture under `fixtures/<provider_dir>` through `parse` and checks its `expect`.
///
/// Returns how many fixtures passed (all of them), so a caller can assert the table is not
/// empty.
///
/// # Errors
/// One line per failing fixture (its id, origin and every mismatch), or the reason the
/// fixtures could not be loaded. An empty directory is an error too: a table that checks
/// nothing must not pass.
pub fn check_table<F>(provider_dir: &str, parse: F) -> Result<usize, String>
where
    F: Fn(&Fixture) -> Result<GenerateResponse, Error>,
{
    let fixtures = Fixture::load_dir(provider_dir)?;
    check_fixtures(&fixtures, parse)
}

/// [`check_table`] over fixtures already loaded (a subset, or fixtures built in a test).
///
/// # Errors
/// As [`check_table`].
pub fn check_fixtures<F>(fixtures: &[Fixture], parse: F) -> Result<usize, String>
where
    F: Fn(&Fixture) -> Result<GenerateResponse, Error>,
{
    if fixtures.is_empty() {
        return Err("no fixtures to check".to_owned());
    }
    let failures: Vec<String> = fixtures
        .iter()
        .filter_map(|fixture| {
            fixture
                .expect
                .check(&parse(fixture))
                .err()
                .map(|why| format!("{} ({:?}): {why}", fixture.id, fixture.origin))
        })
        .collect();
    if failures.is_empty() {
        Ok(fixtures.len())
    } else {
        Err(format!(
            "{} of {} fixtures failed:\n  {}",
            failures.len(),
            fixtures.len(),
            failures.join("\n  ")
        ))
    }
}

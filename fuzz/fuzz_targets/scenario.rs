//! `imagegate simulate`'s scenario files (crates/sim) on any TOML text; a parsed scenario
//! deals its jobs without panicking.
#![no_main]

use std::path::Path;

use imagegate_fuzz::TextFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: TextFile| {
    let text = String::from_utf8_lossy(&file.text);
    match imagegate_sim::scenario::Scenario::parse(Path::new("scenario.toml"), &text) {
        Ok(scenario) => {
            let _ = format!("{scenario:?}");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty(), "an error without a message");
        }
    }
});

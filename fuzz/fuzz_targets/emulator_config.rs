//! The emulator's configuration (`imagegate emulate FILE`) on any TOML text.
#![no_main]

use std::path::Path;

use imagegate_fuzz::TextFile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: TextFile| {
    let text = String::from_utf8_lossy(&file.text);
    match imagegate_emulator::EmulatorConfig::parse(Path::new("emulator.toml"), &text) {
        Ok(config) => {
            let _ = format!("{config:?}");
        }
        Err(error) => {
            let message = error.to_string();
            assert!(!message.is_empty(), "an error without a message");
        }
    }
});

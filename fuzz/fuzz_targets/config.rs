//! The CLI's configuration loading (`imagegate --config FILE`, figment over TOML and the
//! environment) on any file; when the input says so, an `api_key = "<key>"` line is put in
//! it (a key pasted where it does not belong): the key never appears in what comes out.
#![no_main]

use imagegate_fuzz::{KEY, TextFile, assert_no_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|file: TextFile| {
    let with_key = file.key.mode & 1 == 1;
    let bytes = if with_key {
        let quote = if file.key.mode & 2 == 2 { '\'' } else { '"' };
        file.with_line(&format!("api_key = {quote}{KEY}{quote}"))
    } else {
        file.text.clone()
    };
    let text = match imagegate_cli::fuzzing::config(&bytes) {
        Ok(config) => config,
        Err(failure) => failure,
    };
    if with_key {
        assert_no_key("configuration's Debug or failure", &text);
    }
});

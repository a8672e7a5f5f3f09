//! The CLI's configuration loading (`imagegate --config FILE`, figment over TOML and the
//! environment, then validation) on any file. When the input says so, an `api_key = "<secret>"`
//! line (a key pasted where it does not belong) is put in it: the secret never appears in the
//! failure or the loaded configuration, unless the file made it the value of another key (a
//! multi-line string that swallowed the line, or a model named `api_key` in `[server.models]`),
//! which is then not a key.
#![no_main]

use imagegate_fuzz::{TextFile, assert_absent};
use libfuzzer_sys::fuzz_target;

/// Not in the dictionary, so the fuzzer only meets it on the inserted line.
const SECRET: &str = "cfgsecret-Hq2Lw9Zx4Tn7Vb3K";

/// Whether the secret, where it is in the parsed file, is only ever the value of an `api_key`
/// where the configuration's schema could mean a key: not inside `server.models` or `prices`,
/// maps keyed by model names, where `api_key` is only a model's name.
fn only_as_api_key(value: &toml::Value, path: &[&str]) -> bool {
    match value {
        toml::Value::String(s) => {
            !s.contains(SECRET)
                || (path.last() == Some(&"api_key")
                    && !path.iter().any(|p| *p == "models" || *p == "prices"))
        }
        toml::Value::Array(items) => items
            .iter()
            .all(|v| only_as_api_key(v, &[path, &["[]"]].concat())),
        toml::Value::Table(table) => table.iter().all(|(k, v)| {
            !k.contains(SECRET) && only_as_api_key(v, &[path, &[k.as_str()]].concat())
        }),
        _ => true,
    }
}

fuzz_target!(|file: TextFile| {
    let with_key = file.key.mode & 1 == 1;
    let bytes = if with_key {
        let quote = if file.key.mode & 2 == 2 { '\'' } else { '"' };
        file.with_line(&format!("api_key = {quote}{SECRET}{quote}"))
    } else {
        file.text.clone()
    };
    let outcome = imagegate_cli::fuzzing::config(&bytes);
    if !with_key
        || file
            .text
            .windows(SECRET.len())
            .any(|w| w == SECRET.as_bytes())
    {
        return;
    }
    let text = String::from_utf8_lossy(&bytes);
    let must_hide = match toml::from_str::<toml::Value>(&text) {
        // A syntax error: nothing may quote the file.
        Err(_) => true,
        Ok(parsed) => only_as_api_key(&parsed, &[]),
    };
    if must_hide {
        match outcome {
            Ok(config) => assert_absent(SECRET, "loaded configuration's Debug", &config),
            Err(failure) => assert_absent(SECRET, "configuration failure", &failure),
        }
    }
});

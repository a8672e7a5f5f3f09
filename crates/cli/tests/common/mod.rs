//! Running the `imagegate` binary the way a user would, with a clean environment.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // shared by several test files

use std::path::Path;

use assert_cmd::Command;

/// The binary with no provider keys, no `IMAGEGATE_*` variables, run in `dir` (so no stray
/// `./imagegate.toml` is read), keeping its quota state in `dir/.state`.
pub(crate) fn imagegate(dir: &Path) -> Command {
    let mut cmd = assert_cmd::cargo_bin_cmd!("imagegate");
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if is_provider_variable(&name) {
            cmd.env_remove(name);
        }
    }
    // Quota state goes beside the test's files, never into the real home.
    cmd.env("IMAGEGATE_STATE_DIR", dir.join(".state"));
    cmd.current_dir(dir);
    cmd
}

/// Variables that could configure a provider from the developer's environment: every known
/// provider's prefix, and any `*_API_KEY` / `*_BASE_URL` so a provider added later is covered
/// without editing this list.
pub(crate) fn is_provider_variable(name: &str) -> bool {
    [
        "IMAGEGATE_",
        "GEMINI_",
        "OPENROUTER_",
        "GOOGLE_",
        "OPENAI_",
        "VERTEX_",
    ]
    .iter()
    .any(|p| name.starts_with(p))
        || name.ends_with("_API_KEY")
        || name.ends_with("_BASE_URL")
}

/// Decodes a PNG, returning (width, height, pixel bytes).
pub(crate) fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    (info.width, info.height, pixels)
}

pub(crate) fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

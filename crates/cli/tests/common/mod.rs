//! Running the `imagegate` binary the way a user would, with a clean environment.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // shared by several test files

use std::path::Path;

use assert_cmd::Command;

/// The binary with no provider keys, no `IMAGEGATE_*` variables, run in `dir` (so no stray
/// `./imagegate.toml` is read), keeping its quota state in `dir/.state`.
pub(crate) fn imagegate(dir: &Path) -> Command {
    let mut cmd = assert_cmd::cargo_bin_cmd!("imagegate");
    for name in provider_variables() {
        cmd.env_remove(name);
    }
    // Quota state goes beside the test's files, never into the real home.
    cmd.env("IMAGEGATE_STATE_DIR", dir.join(".state"));
    cmd.current_dir(dir);
    cmd
}

/// [`imagegate`] as a plain process, for one that keeps running (a server, a batch to kill):
/// the same clean environment, directory and state.
pub(crate) fn imagegate_process(dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_imagegate"));
    for name in provider_variables() {
        cmd.env_remove(name);
    }
    cmd.env("IMAGEGATE_STATE_DIR", dir.join(".state"));
    cmd.current_dir(dir);
    cmd
}

/// The names of this process's variables that [`is_provider_variable`] picks out.
fn provider_variables() -> Vec<String> {
    std::env::vars_os()
        .map(|(name, _)| name.to_string_lossy().into_owned())
        .filter(|name| is_provider_variable(name))
        .collect()
}

/// Spawns `cmd`, a server that says `listening on URL` first (`imagegate serve`, `emulate`,
/// `quota --serve`), and reads that line: the process and its loopback URL. Its stdin is
/// closed and its stdout piped; stderr is the caller's to set.
pub(crate) fn spawn_listening(cmd: &mut std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("the first line was {line:?}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    (child, url)
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

/// A child process killed (and reaped) when dropped, so a failed assertion leaves nothing
/// running after the test. Take the child out (`.0.take()`) to stop it some other way.
pub(crate) struct KillOnDrop(pub(crate) Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `imagegate emulate` with `config` (written to `dir/emulate.toml`) on a free port:
/// the process and its URL, from its first line of output.
pub(crate) fn emulate(dir: &Path, config: &str) -> (KillOnDrop, String) {
    std::fs::write(dir.join("emulate.toml"), config).unwrap();
    let (child, url) = spawn_listening(
        imagegate_process(dir)
            .args(["emulate", "emulate.toml"])
            .stderr(std::process::Stdio::null()),
    );
    (KillOnDrop(Some(child)), url)
}

/// The batch journal's file name, in the output directory.
pub(crate) const JOURNAL: &str = ".imagegate-batch.jsonl";

/// The PNGs a batch wrote to `dir/out`, sorted; none when it made no output directory.
pub(crate) fn output_images(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join("out")) else {
        return Vec::new();
    };
    let mut images: Vec<std::path::PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    images.sort();
    images
}

/// The records of the batch journal in `dir/out` (a line cut by a kill is left out, as the
/// CLI itself leaves it out).
pub(crate) fn journal(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("out").join(JOURNAL))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// How many of `journal`'s records are `event`.
pub(crate) fn events(journal: &[serde_json::Value], event: &str) -> usize {
    journal.iter().filter(|r| r["event"] == event).count()
}

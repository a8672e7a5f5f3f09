//! Entry points for the fuzz targets under `fuzz/` (the `fuzzing` feature only, compiled by
//! `fuzz/cli-lib`, which builds this crate's sources as a library): the configuration, batch
//! input and journal readers are private to the binary, and stay so.
//!
//! Each function runs the real reader on `bytes` and returns what came out as text, for the
//! fuzz target's checks. Files go to one temporary directory per process, as the readers take
//! paths.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::batch::input::{self, References};
use crate::batch::journal::Replay;
use crate::failure::Failure;

/// The scratch directory: in memory (`/dev/shm`) where there is one, since every execution
/// writes a file.
fn scratch() -> Option<&'static Path> {
    static DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .ok()
    })
    .as_ref()
    .map(tempfile::TempDir::path)
}

/// Writes a new file (removing the old one first: ext4 flushes a truncated file's data on
/// close, which made each execution wait for the disk).
fn write(name: &str, bytes: &[u8]) -> Option<PathBuf> {
    let path = scratch()?.join(name);
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, bytes).ok()?;
    Some(path)
}

fn failure_text(failure: &Failure) -> String {
    match failure {
        Failure::Usage(m) | Failure::Io(m) => m.clone(),
        Failure::Upstream { error, .. } => format!("{error}\n{error:?}"),
    }
}

/// `imagegate --config FILE` on a file holding `bytes` (the environment's `IMAGEGATE_*`
/// variables apply as usual): the configuration's `Debug`, or the failure's message.
pub fn config(bytes: &[u8]) -> Result<String, String> {
    let path = write("imagegate.toml", bytes).ok_or("no scratch file")?;
    crate::config::load(Some(&path))
        .map(|c| format!("{c:?}"))
        .map_err(|f| failure_text(&f))
}

/// The batch input reader on `bytes`, in the format detected from the content (`jsonl`:
/// as if the file were named `*.jsonl`), references kept inside the input's directory or not.
pub fn batch_input(bytes: &[u8], jsonl: bool, anywhere: bool) -> String {
    let name = if jsonl { "input.jsonl" } else { "input.txt" };
    let format = input::detect(Path::new(name), bytes);
    let references = if anywhere {
        References::Anywhere
    } else {
        References::Inside
    };
    let base = scratch().unwrap_or(Path::new("."));
    let parsed = input::parse(bytes, format, base, references);
    let stems: Vec<String> = parsed
        .jobs
        .iter()
        .flat_map(|j| (0..j.n.min(4)).map(|i| j.image_stem(i)))
        .collect();
    format!("{parsed:?}\n{stems:?}")
}

/// The journal reader on a journal holding `bytes`: the replay and its notes.
pub fn journal(bytes: &[u8]) -> Result<String, String> {
    let path = write(crate::batch::journal::FILE_NAME, bytes).ok_or("no scratch file")?;
    let replay = Replay::read(&path)?;
    let notes = replay.notes(&path);
    Ok(format!("{replay:?}\n{notes:?}"))
}

//! Helpers for the hostile-user tests: the real binary against a per-test wiremock Gemini,
//! with a clean environment, spawned or run to the end.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // shared by several test files

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use imagegate_testkit::{Fixture, mount};
use serde_json::Value;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

/// The Gemini key every test sets; no output may contain it.
pub(crate) const KEY: &str = "hostile-test-credential-9b3e";
pub(crate) const SUCCESS: &str = "gemini/generate-content/200-success-png-with-text";
pub(crate) const JOURNAL: &str = ".imagegate-batch.jsonl";

/// A wiremock server answering every call with the success fixture, after `delay`.
pub(crate) async fn server(delay: Duration) -> MockServer {
    let fixture = Fixture::by_id(SUCCESS).unwrap();
    let server = MockServer::start().await;
    if delay.is_zero() {
        mount(&server, &fixture).await;
    } else {
        Mock::given(any())
            .respond_with(imagegate_testkit::response_template(&fixture).set_delay(delay))
            .mount(&server)
            .await;
    }
    server
}

/// The binary with a clean environment, pointed at `server` as `gemini`, run in `dir`.
pub(crate) fn command(dir: &Path, server: &MockServer) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imagegate"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if ["IMAGEGATE_", "GEMINI_", "OPENROUTER_", "GOOGLE_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            cmd.env_remove(name);
        }
    }
    cmd.env("IMAGEGATE_STATE_DIR", dir.join(".state"))
        .env("GEMINI_API_KEY", KEY)
        .env("GEMINI_BASE_URL", server.uri())
        .current_dir(dir)
        .stdin(Stdio::null());
    cmd
}

pub(crate) fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

/// `batch INPUT --out out --provider gemini` plus `extra`.
pub(crate) fn batch_args(input: &str, extra: &[&str]) -> Vec<String> {
    let mut args = strings(&["batch", input, "--out", "out", "--provider", "gemini"]);
    args.extend(strings(extra));
    args
}

/// Runs to the end (at most a minute: a hang is a failure, not a stuck test run).
pub(crate) async fn run(
    dir: &Path,
    server: &MockServer,
    args: Vec<String>,
) -> std::process::Output {
    let mut cmd = command(dir, server);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let output = finish(child, Duration::from_secs(60)).await;
    for shown in [stdout(&output), stderr(&output)] {
        assert!(!shown.contains(KEY), "the key leaked: {shown}");
    }
    output
}

/// Waits for `child` at most `limit`, reading its pipes meanwhile (so a chatty child cannot
/// block on a full pipe); kills it and fails the test when it hangs.
pub(crate) async fn finish(child: Child, limit: Duration) -> std::process::Output {
    let pid = child.id();
    let waiting = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap());
    match tokio::time::timeout(limit, waiting).await {
        Ok(output) => output.unwrap(),
        Err(_) => {
            signal(pid, "-KILL");
            panic!("imagegate (pid {pid}) hung for {limit:?} and was killed");
        }
    }
}

pub(crate) fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub(crate) fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn json(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(output)))
}

/// Image files (by extension) in `dir`, sorted.
pub(crate) fn images_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut images: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| ["png", "jpg", "webp", "gif"].contains(&&*e.to_string_lossy()))
        })
        .collect();
    images.sort();
    images
}

pub(crate) fn names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// The journal's readable records.
pub(crate) fn journal(out: &Path) -> Vec<Value> {
    std::fs::read(out.join(JOURNAL))
        .unwrap_or_default()
        .split(|b| *b == b'\n')
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect()
}

pub(crate) fn events(journal: &[Value], event: &str) -> usize {
    journal.iter().filter(|r| r["event"] == event).count()
}

pub(crate) async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

/// Polls until `done` holds (another process writes what it checks), or fails the test.
pub(crate) async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends `signal` (e.g. "-TERM") to `pid` with kill(1).
pub(crate) fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Makes a FIFO with mkfifo(1).
pub(crate) fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(made.success());
}

pub(crate) fn exit(status: ExitStatus) -> Option<i32> {
    status.code()
}

/// The fixture's PNG, to use as a reference or compare against.
pub(crate) fn fixture_png() -> Vec<u8> {
    use base64::Engine as _;
    let fixture = Fixture::by_id(SUCCESS).unwrap();
    let body: Value = serde_json::from_slice(&fixture.body()).unwrap();
    let data = body["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|p| p["inlineData"]["data"].as_str())
        .unwrap()
        .to_owned();
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap()
}

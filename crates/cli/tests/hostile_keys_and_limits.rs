//! Keys of any shape never leave the process; configuration that cannot work is refused
//! naming its key; inputs too large to handle are refused or cut with a note.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod hostile_kit;

use std::process::Stdio;
use std::time::Duration;

use hostile_kit::*;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A relay's key: no prefix any scrubber could know.
const RELAY_KEY: &str = "q7Zt4LmR9wXc2Vb8Nk1P";

/// A relay that echoes the key it was sent in its error message.
async fn echoing_relay() -> MockServer {
    let server = MockServer::start().await;
    let body = serde_json::json!({
        "error": {
            "code": 400,
            "message": format!("the key {RELAY_KEY} is not valid for this relay"),
            "status": "INVALID_ARGUMENT"
        }
    });
    Mock::given(any())
        .respond_with(ResponseTemplate::new(400).set_body_json(body))
        .mount(&server)
        .await;
    server
}

fn relay_command(dir: &std::path::Path, server: &MockServer) -> std::process::Command {
    std::fs::write(
        dir.join("imagegate.toml"),
        format!(
            "[providers.relay]\nkind = \"gemini\"\napi_key_env = \"RELAY_TOKEN\"\nbase_url = \"{}\"\n",
            server.uri()
        ),
    )
    .unwrap();
    let mut cmd = command(dir, server);
    cmd.env("RELAY_TOKEN", RELAY_KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn assert_no_key(what: &str, text: &str) {
    assert!(
        !text.contains(RELAY_KEY),
        "the key leaked into {what}: {text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_of_any_shape_echoed_by_a_relay_is_scrubbed_everywhere() {
    let server = echoing_relay().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = relay_command(dir.path(), &server);
    cmd.args(["-vv", "generate", "a cat", "--provider", "relay", "--json"]);
    let output = finish(cmd.spawn().unwrap(), Duration::from_secs(60)).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("not valid for this relay"),
        "the message is kept"
    );
    assert_no_key("generate --json", &stdout(&output));
    assert_no_key("stderr", &stderr(&output));

    std::fs::write(dir.path().join("in.txt"), "a cat\n").unwrap();
    let mut cmd = relay_command(dir.path(), &server);
    cmd.args([
        "-vv",
        "batch",
        "in.txt",
        "--out",
        "out",
        "--provider",
        "relay",
        "--json",
    ]);
    let output = finish(cmd.spawn().unwrap(), Duration::from_secs(60)).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_no_key("batch --json", &stdout(&output));
    assert_no_key("stderr", &stderr(&output));
    let journal = std::fs::read_to_string(dir.path().join("out").join(JOURNAL)).unwrap();
    assert!(journal.contains("not valid for this relay"), "{journal}");
    assert_no_key("the journal", &journal);
    for entry in walk(dir.path().join(".state")) {
        assert_no_key(
            "the state directory",
            &String::from_utf8_lossy(&std::fs::read(entry).unwrap()),
        );
    }
}

fn walk(dir: std::path::PathBuf) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(path));
        } else {
            files.push(path);
        }
    }
    files
}

fn generate_with_config(toml: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("custom.toml"), toml).unwrap();
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_imagegate"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        if ["IMAGEGATE_", "GEMINI_", "OPENROUTER_", "GOOGLE_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            cmd.env_remove(name);
        }
    }
    cmd.env("IMAGEGATE_STATE_DIR", dir.path().join(".state"))
        .current_dir(dir.path())
        .args(["generate", "x", "-o", "x.png", "--config", "custom.toml"]);
    cmd.output().unwrap()
}

#[test]
fn a_key_pasted_as_api_key_env_is_refused_without_echoing_it() {
    let pasted = "AIzaSyD4xY7qLmN0pRsTuVwXyZ1234567890ab";
    let output = generate_with_config(&format!("[providers.gemini]\napi_key_env = \"{pasted}\"\n"));
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("providers.gemini.api_key_env"), "{err}");
    assert!(!err.contains(pasted), "the key was echoed: {err}");
    assert!(!err.contains("AIzaSy"), "part of the key was echoed: {err}");

    let odd =
        generate_with_config("[providers.gemini]\napi_key_env = \"sk-live key/with spaces\"\n");
    assert_eq!(odd.status.code(), Some(2));
    assert!(!stderr(&odd).contains("with spaces"), "{}", stderr(&odd));
}

#[test]
fn a_zero_or_absurd_timeout_is_refused_naming_the_key() {
    for timeout in ["0s", "400days"] {
        let output = generate_with_config(&format!("[providers.mock]\ntimeout = \"{timeout}\"\n"));
        assert_eq!(
            output.status.code(),
            Some(2),
            "{timeout}: {}",
            stderr(&output)
        );
        let err = stderr(&output);
        assert!(err.contains("providers.mock.timeout"), "{err}");
    }
}

#[test]
fn diagnose_cuts_a_huge_message_with_a_note() {
    let dir = tempfile::tempdir().unwrap();
    let body = serde_json::json!({
        "error": {"code": 400, "message": "x".repeat(2_000_000), "status": "INVALID_ARGUMENT"}
    });
    std::fs::write(dir.path().join("body.json"), body.to_string()).unwrap();
    for json in [false, true] {
        let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_imagegate"));
        cmd.current_dir(dir.path()).args(["diagnose", "body.json"]);
        if json {
            cmd.arg("--json");
        }
        let output = cmd.output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let shown = stdout(&output);
        assert!(shown.len() < 20_000, "{} bytes printed", shown.len());
        assert!(
            shown.contains("more bytes not shown"),
            "{}",
            &shown[..shown.len().min(500)]
        );
    }
}

#[test]
fn simulate_refuses_a_scenario_too_large_to_hold() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/scenarios/free-tier-single-project.toml"),
    )
    .unwrap()
    .replace("jobs = 700", "jobs = 100000000");
    assert!(scenario.contains("jobs = 100000000"));
    std::fs::write(dir.path().join("huge.toml"), scenario).unwrap();
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_imagegate"));
    cmd.current_dir(dir.path())
        .args(["simulate", "huge.toml", "--strategy", "oracle"])
        .timeout(Duration::from_secs(30));
    let output = cmd.output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("workload.jobs"),
        "{}",
        stderr(&output)
    );
}

fn diagnose(body: &serde_json::Value) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.json"), body.to_string()).unwrap();
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_imagegate"));
    cmd.current_dir(dir.path())
        .args(["diagnose", "body.json", "--json"]);
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn rate_limited(delay: &str) -> serde_json::Value {
    serde_json::json!({"error": {
        "code": 429,
        "message": "Resource has been exhausted (e.g. check quota).",
        "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]
    }})
}

#[test]
fn advice_never_says_wait_0_ms_nor_calls_a_day_long_delay_a_window() {
    let zero = diagnose(&rate_limited("0s"));
    let advice = zero["advice"].as_str().unwrap();
    assert!(!advice.contains("0 ms"), "{advice}");

    let day = diagnose(&rate_limited("90000s"));
    let advice = day["advice"].as_str().unwrap();
    assert!(!advice.starts_with("Wait 25 h"), "{advice}");
    assert!(advice.contains("per-minute"), "{advice}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_refused_by_max_cost_counts_the_calls_in_flight() {
    let server = server(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "one\ntwo\nthree\n").unwrap();
    // Two images at $0.039 fit in $0.10; the third is refused while the two are in flight.
    let output = run(
        dir.path(),
        &server,
        batch_args(
            "in.txt",
            &["--concurrency", "3", "--max-cost", "0.10", "--json"],
        ),
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let summary = json(&output);
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{summary}");
    let message = failed[0]["message"].as_str().unwrap();
    assert!(message.contains("$0.078"), "{message}");
}

/// Makes `dir` refuse new files: `chmod 0555` for a normal user; for root, who ignores
/// permission bits, the immutable attribute (`chattr +i`). Undone on drop.
struct ReadOnlyDir(std::path::PathBuf, bool);

impl ReadOnlyDir {
    fn new(dir: &std::path::Path) -> Self {
        let uid = std::process::Command::new("id").arg("-u").output().unwrap();
        let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let status = if root {
            std::process::Command::new("chattr")
                .arg("+i")
                .arg(dir)
                .status()
                .unwrap()
        } else {
            std::process::Command::new("chmod")
                .arg("0555")
                .arg(dir)
                .status()
                .unwrap()
        };
        assert!(
            status.success(),
            "could not make {} read-only",
            dir.display()
        );
        ReadOnlyDir(dir.to_path_buf(), root)
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        let _ = if self.1 {
            std::process::Command::new("chattr")
                .arg("-i")
                .arg(&self.0)
                .status()
        } else {
            std::process::Command::new("chmod")
                .arg("0755")
                .arg(&self.0)
                .status()
        };
    }
}

#[test]
fn a_quota_state_that_cannot_be_written_stops_the_run_instead_of_dropping_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    let generate = |name: &str| {
        let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_imagegate"));
        for (var, _) in std::env::vars_os() {
            let var = var.to_string_lossy().into_owned();
            if ["IMAGEGATE_", "GEMINI_", "OPENROUTER_", "GOOGLE_"]
                .iter()
                .any(|p| var.starts_with(p))
            {
                cmd.env_remove(var);
            }
        }
        cmd.env("IMAGEGATE_STATE_DIR", dir.path().join(".state"))
            .current_dir(dir.path())
            .args([
                "generate",
                "x",
                "--provider",
                "mock",
                "--size",
                "0.5K",
                "-o",
                name,
            ]);
        cmd.output().unwrap()
    };
    let first = generate("a.png");
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(dir.path().join(".state/quota.json").is_file());

    let _locked = ReadOnlyDir::new(&dir.path().join(".state"));
    let second = generate("b.png");
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(
        err.contains("quota.json") && err.contains("cannot be written"),
        "{err}"
    );
    assert!(
        !dir.path().join("b.png").exists(),
        "nothing was made unthrottled"
    );
}

#[test]
fn advice_never_says_until_a_reset_that_already_passed() {
    let dir = tempfile::tempdir().unwrap();
    let body = serde_json::json!({"error": {
        "code": 429,
        "message": "Rate limit exceeded: free-models-per-day",
        "metadata": {"headers": {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "1700000000000"
        }}
    }});
    std::fs::write(dir.path().join("body.json"), body.to_string()).unwrap();
    let mut cmd = assert_cmd::Command::new(env!("CARGO_BIN_EXE_imagegate"));
    cmd.current_dir(dir.path()).args(["diagnose", "body.json"]);
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(text.contains("already passed"), "{text}");
    let fix = text.lines().find(|l| l.starts_with("fix:")).unwrap();
    assert!(!fix.contains("until then"), "{text}");
}

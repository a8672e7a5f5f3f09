//! `imagegate batch` against a real `imagegate emulate` serving Gemini and its Batch API.
//!
//! `--via auto` splits by the deadline: a far one sends everything to the Batch API, and a
//! near one goes interactively until the pool's daily quota runs out, then spills the rest
//! to the Batch API.
//!
//! `--via batch` killed with SIGKILL in every phase of a Batch API job, then run
//! again: every image on disk and not one request submitted twice, by the emulator's own
//! counters. A real `imagegate emulate` process serves the Batch API (turnaround 0 s); its
//! holds park the client at one endpoint (the create before it takes effect, the create after
//! the job is made but before the answer, a poll, the download of the responses file), so the
//! kill lands in that phase deterministically: the test waits for the client to be parked
//! there, never for a fixed time.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{KillOnDrop, events, journal, output_images as images, stderr};
use serde_json::Value;

const KEY: &str = "emulator-batch-kill-credential";
const IMAGES: usize = 4;

const EMULATOR: &str = r#"
[upstream]
latency = "0s"
reject_latency = "0s"

[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]
rpm = 100
batch_turnaround = "0s"

[[upstream.key]]
provider = "gemini"
project = "proj-a"
key = "emulator-batch-kill-credential"
"#;

/// Two jobs of two images; fast polls.
const CLI: &str = r#"
[batch]
job_size = 2
poll_interval = "20ms"
max_poll_interval = "50ms"
"#;

/// `imagegate emulate` on a free port, and its URL.
fn emulate(dir: &Path) -> (KillOnDrop, String) {
    common::emulate(dir, EMULATOR)
}

/// One HTTP/1.1 exchange over a plain socket: the status and the body.
fn http(url: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let host = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: \
         application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    // The emulator's control answers are small; a chunked one is one chunk.
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split_once("\r\n")
            .map_or(body, |(_, rest)| rest)
            .rsplit_once("\r\n0\r\n")
            .map_or(body, |(chunk, _)| chunk)
            .trim_end_matches("\r\n")
    } else {
        body
    };
    (status, body.to_owned())
}

fn json(url: &str, method: &str, path: &str, body: &str) -> Value {
    let (status, text) = http(url, method, path, body);
    assert_eq!(status, 200, "{method} {path}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

fn batch_stats(url: &str) -> Value {
    json(url, "GET", "/emulator/stats", "")["batch"].clone()
}

/// Polls until `done` holds, or fails the test after a minute.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn command(dir: &Path, url: &str) -> Command {
    command_with(dir, url, &["--via", "batch"])
}

fn command_with(dir: &Path, url: &str, extra: &[&str]) -> Command {
    let mut cmd = common::imagegate_process(dir);
    cmd.env("GEMINI_API_KEY", KEY)
        .env("GEMINI_BASE_URL", url)
        .args([
            "batch",
            "in.txt",
            "--out",
            "out",
            "--provider",
            "gemini",
            "--json",
        ])
        .args(extra)
        .stdin(Stdio::null());
    cmd
}

/// What one kill-and-rerun showed.
#[derive(Debug)]
struct Report {
    /// Journal records at the kill.
    planned_at_kill: usize,
    created_at_kill: usize,
    written_at_kill: usize,
    /// The rerun's summary.
    summary: Value,
    /// The emulator's batch counters at the end.
    stats: Value,
    journal: Vec<Value>,
}

/// Runs a batch of [`IMAGES`] prompts with `endpoint` held at `phase`, kills it with SIGKILL
/// once the client is parked there, releases the hold and runs the same command again.
fn kill_at(endpoint: &str, phase: &str, extra_config: &str) -> Report {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, url) = emulate(dir.path());
    let prompts: String = (0..IMAGES)
        .map(|i| format!("a lighthouse number {i}\n"))
        .collect();
    std::fs::write(dir.path().join("in.txt"), prompts).unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        format!("{CLI}{extra_config}"),
    )
    .unwrap();

    json(
        &url,
        "POST",
        "/emulator/batch/hold",
        &format!(r#"{{"endpoint": "{endpoint}", "phase": "{phase}"}}"#),
    );
    let child = command(dir.path(), &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut client = KillOnDrop(Some(child));
    // Returns once the client's request waits at the hold.
    json(
        &url,
        "GET",
        &format!("/emulator/batch/hold?until_waiting={endpoint}"),
        "",
    );
    let mut child = client.0.take().unwrap();
    child.kill().unwrap(); // SIGKILL: no chance to clean up
    child.wait().unwrap();

    let at_kill = journal(dir.path());
    json(&url, "POST", "/emulator/batch/release", "{}");
    // The parked request is gone (dropped with its connection, or answered to no one).
    wait_until("no request waiting at a hold", || {
        let view = json(&url, "GET", "/emulator/batch/hold", "");
        view["waiting"]
            .as_object()
            .is_none_or(|w| w.values().all(|n| n.as_u64() == Some(0)))
    });

    let rerun = command(dir.path(), &url).output().unwrap();
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert!(!stderr(&rerun).contains(KEY), "the key leaked");
    let summary: Value = serde_json::from_slice(&rerun.stdout).unwrap();
    Report {
        planned_at_kill: events(&at_kill, "batch_planned"),
        created_at_kill: events(&at_kill, "batch_created"),
        written_at_kill: events(&at_kill, "written"),
        summary,
        stats: batch_stats(&url),
        journal: journal(dir.path()),
    }
    .checked(dir.path())
}

impl Report {
    /// What every phase must show: every image on disk, each written once, each request
    /// submitted once.
    fn checked(self, dir: &Path) -> Self {
        assert_eq!(images(dir).len(), IMAGES, "{self:#?}");
        assert_eq!(
            events(&self.journal, "written"),
            IMAGES,
            "each image written once: {self:#?}"
        );
        assert_eq!(self.stats["duplicate_submissions"], 0, "{self:#?}");
        assert_eq!(self.stats["resubmissions"], 0, "{self:#?}");
        assert_eq!(
            self.stats["requests_submitted"], IMAGES as u64,
            "every request submitted exactly once: {self:#?}"
        );
        assert_eq!(self.stats["jobs_created"], 2, "{self:#?}");
        assert_eq!(self.summary["via"], "batch");
        assert_eq!(
            self.summary["images_written"].as_u64().unwrap()
                + self.summary["images_recovered"].as_u64().unwrap(),
            (IMAGES - self.written_at_kill) as u64,
            "{self:#?}"
        );
        assert_eq!(events(&self.journal, "done"), IMAGES, "{self:#?}");
        self
    }
}

#[test]
fn killed_before_the_create_reaches_the_server_the_rerun_creates_the_jobs_once() {
    let report = kill_at("create", "before", "");
    assert!(report.planned_at_kill >= 1, "{report:#?}");
    assert_eq!(report.created_at_kill, 0, "{report:#?}");
    // Every job planned before the kill was found missing and marked so; then made afresh.
    let not_created = report
        .journal
        .iter()
        .filter(|r| r["event"] == "batch_ended" && r["state"] == "not_created")
        .count();
    assert_eq!(not_created, report.planned_at_kill, "{report:#?}");
}

#[test]
fn killed_after_the_server_made_the_job_the_rerun_finds_it_by_its_display_name() {
    let report = kill_at("create", "after", "");
    assert_eq!(
        report.created_at_kill, 0,
        "the answer never came: {report:#?}"
    );
    assert!(report.planned_at_kill >= 1, "{report:#?}");
    // The job made before the kill is re-attached to, not made again (jobs_created stays 2,
    // checked above), and its name is recorded by the rerun.
    let ended_not_created = report
        .journal
        .iter()
        .filter(|r| r["event"] == "batch_ended" && r["state"] == "not_created")
        .count();
    assert!(
        ended_not_created < report.planned_at_kill,
        "at least the held job was found: {report:#?}"
    );
}

#[test]
fn killed_while_polling_the_rerun_re_attaches_by_name() {
    let report = kill_at("get", "before", "");
    assert!(report.created_at_kill >= 1, "{report:#?}");
    assert_eq!(report.written_at_kill, 0, "{report:#?}");
}

#[test]
fn killed_while_downloading_the_results_the_rerun_downloads_them_again() {
    // Jobs uploaded as a JSONL file, results in a responses file to download.
    let report = kill_at("download", "before", "inline_max_result_bytes = 0\n");
    assert!(report.created_at_kill >= 1, "{report:#?}");
    assert_eq!(report.written_at_kill, 0, "{report:#?}");
    assert!(
        report.stats["files_downloaded"].as_u64().unwrap() >= 2,
        "{report:#?}"
    );
}

fn prompts(dir: &Path) {
    let prompts: String = (0..IMAGES)
        .map(|i| format!("a lighthouse number {i}\n"))
        .collect();
    std::fs::write(dir.join("in.txt"), prompts).unwrap();
    std::fs::write(dir.join("imagegate.toml"), CLI).unwrap();
}

#[test]
fn auto_with_a_far_deadline_sends_everything_to_the_batch_api_at_half_price() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, url) = emulate(dir.path());
    prompts(dir.path());
    let output = command_with(dir.path(), &url, &["--deadline", "30h"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("--via auto: 4 image(s) via the Batch API, 0 interactive"),
        "{}",
        stderr(&output)
    );
    // The progress names the batch jobs, their states and counts, beside the images.
    let err = stderr(&output);
    assert!(err.contains("imagegate: batch job imagegate-"), "{err}");
    assert!(err.contains(": succeeded 2/2 ["), "{err}");
    assert!(err.contains("batch jobs: "), "{err}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["via"], "auto");
    assert_eq!(summary["images_via_batch"], IMAGES as u64);
    assert!(
        (summary["cost_usd"].as_f64().unwrap() - IMAGES as f64 * 0.039 / 2.0).abs() < 1e-9,
        "{summary}"
    );
    assert_eq!(images(dir.path()).len(), IMAGES);
    let stats = json(&url, "GET", "/emulator/stats", "");
    assert_eq!(stats["batch"]["requests_submitted"], IMAGES as u64);
    assert_eq!(stats["pools"][0]["counters"]["admitted"], 0, "{stats}");
}

#[test]
fn auto_with_a_near_deadline_goes_interactively_and_spills_when_the_daily_quota_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    // Two interactive images a day: the other two are refused for the day.
    let (_emulator, url) = common::emulate(
        dir.path(),
        &EMULATOR.replace("rpm = 100\n", "rpm = 100\nrpd = 2\n"),
    );
    prompts(dir.path());
    // A deadline under `batch.min_deadline` makes `auto` no default: it is asked for.
    let output = command_with(
        dir.path(),
        &url,
        &["--via", "auto", "--deadline", "2h", "--concurrency", "1"],
    )
    .output()
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("--via auto: 0 image(s) via the Batch API, 4 interactive"),
        "{err}"
    );
    assert!(err.contains("spill to the Batch API"), "{err}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["images_written"], IMAGES as u64, "{summary}");
    assert_eq!(summary["images_via_batch"], 2, "{summary}");
    assert!(
        summary["failed"].as_array().unwrap().is_empty(),
        "{summary}"
    );
    assert_eq!(images(dir.path()).len(), IMAGES);
    let stats = json(&url, "GET", "/emulator/stats", "");
    assert_eq!(stats["pools"][0]["counters"]["admitted"], 2, "{stats}");
    assert_eq!(stats["batch"]["requests_submitted"], 2, "{stats}");
    assert_eq!(stats["batch"]["duplicate_submissions"], 0, "{stats}");
}

#[test]
fn ctrl_c_while_polling_stops_at_once_and_the_rerun_re_attaches() {
    let dir = tempfile::tempdir().unwrap();
    let (_emulator, url) = emulate(dir.path());
    prompts(dir.path());
    json(
        &url,
        "POST",
        "/emulator/batch/hold",
        r#"{"endpoint": "get", "phase": "before"}"#,
    );
    let child = command(dir.path(), &url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut client = KillOnDrop(Some(child));
    json(&url, "GET", "/emulator/batch/hold?until_waiting=get", "");
    let pid = client.0.as_ref().unwrap().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    // The poll parked at the hold is abandoned at once (a poll only reads): the run ends
    // without waiting for the job, which goes on at the server, and well within the 30 s
    // grace the calls in flight would get.
    let stopping = Instant::now();
    let output = client.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(20),
        "{:?}",
        stopping.elapsed()
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run the same command again"),
        "{}",
        stderr(&output)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["interrupted"], true, "{summary}");
    assert!(images(dir.path()).is_empty());
    let at_stop = journal(dir.path());
    assert_eq!(events(&at_stop, "batch_ended"), 0, "the jobs stay live");

    json(&url, "POST", "/emulator/batch/release", "{}");
    let rerun = command(dir.path(), &url).output().unwrap();
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(images(dir.path()).len(), IMAGES);
    let stats = batch_stats(&url);
    assert_eq!(stats["requests_submitted"], IMAGES as u64, "{stats}");
    assert_eq!(stats["duplicate_submissions"], 0, "{stats}");
}

//! `imagegate batch` as a user runs it: the real binary against a per-test wiremock server
//! serving the recorded Gemini success body. The crash and Ctrl-C tests run a real child
//! process and stop it mid-batch; the upstream's request log proves nothing was paid twice
//! beyond the calls in flight at the stop.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{JOURNAL, events, journal, output_images as images, stderr, stdout};
use imagegate_testkit::{Fixture, mount};
use serde_json::Value;
use wiremock::matchers::{any, body_string_contains};
use wiremock::{Mock, MockServer};

const KEY: &str = "batch-test-credential-7f2c";
const SUCCESS: &str = "gemini/generate-content/200-success-png-with-text";

/// A wiremock server answering every call with the success fixture, after `delay`.
async fn server(delay: Duration) -> MockServer {
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

/// The binary with a clean environment (as `common::imagegate`), as a std `Command` so a test
/// can spawn it and stop it.
fn command(dir: &Path, server: &MockServer) -> Command {
    let mut cmd = common::imagegate_process(dir);
    cmd.env("GEMINI_API_KEY", KEY)
        .env("GEMINI_BASE_URL", server.uri())
        .stdin(Stdio::null());
    cmd
}

fn batch_args(extra: &[&str]) -> Vec<String> {
    ["batch", "in.txt", "--out", "out", "--provider", "gemini"]
        .iter()
        .chain(extra)
        .map(|s| (*s).to_owned())
        .collect()
}

async fn run(dir: &Path, server: &MockServer, args: Vec<String>) -> std::process::Output {
    let mut cmd = command(dir, server);
    cmd.args(args);
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    for shown in [stdout(&output), stderr(&output)] {
        assert!(!shown.contains(KEY), "the key leaked: {shown}");
    }
    output
}

fn prompts(dir: &Path, count: usize) {
    let mut text = String::from("# a batch\n\n");
    for i in 0..count {
        text.push_str(&format!("a lighthouse number {i}\n"));
    }
    std::fs::write(dir.join("in.txt"), text).unwrap();
}

/// Images whose last journal record is `started`: calls in flight when the run stopped.
fn in_flight(journal: &[Value]) -> usize {
    let mut last = std::collections::BTreeMap::new();
    for record in journal {
        let job = record["job"].as_str().unwrap_or_default().to_owned();
        match record["event"].as_str() {
            Some("started") => {
                last.insert((job, record["image"].as_u64()), true);
            }
            Some("written") => {
                last.insert((job, record["image"].as_u64()), false);
            }
            Some("failed") => last.retain(|(j, _), _| *j != job),
            _ => {}
        }
    }
    last.values().filter(|open| **open).count()
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

/// Polls until `done` holds (the journal is written by another process), or fails the test.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_for_exit(mut child: Child) -> (std::process::ExitStatus, String) {
    tokio::task::spawn_blocking(move || {
        let status = child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            std::io::Read::read_to_string(&mut pipe, &mut err).unwrap();
        }
        (status, err)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_writes_every_image_and_a_rerun_makes_none() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    prompts(dir.path(), 6);
    let first = run(dir.path(), &server, batch_args(&["--concurrency", "3"])).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let written = images(dir.path());
    assert_eq!(written.len(), 6, "{written:?}");
    // Stable names: the line number (the first prompt is on line 3) and the prompt's slug.
    assert!(dir.path().join("out/3-a-lighthouse-number-0.png").is_file());
    assert_eq!(requests(&server).await, 6);
    let log = stderr(&first);
    assert_eq!(log.matches("imagegate: wrote ").count(), 6, "{log}");

    let again = run(
        dir.path(),
        &server,
        batch_args(&["--concurrency", "3", "--json"]),
    )
    .await;
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(requests(&server).await, 6, "the rerun sent nothing");
    let summary: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["images_already_done"], 6);
    assert_eq!(summary["images_written"], 0);
    assert_eq!(images(dir.path()), written);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_killed_with_sigkill_resumes_without_paying_twice() {
    let jobs = 6;
    let server = server(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    prompts(dir.path(), jobs);
    let mut cmd = command(dir.path(), &server);
    cmd.args(batch_args(&["--concurrency", "1"]))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    // Kill while a call is in flight (its `started` is durable, its answer 300 ms away), so
    // the rerun has to decide about an attempt of unknown outcome.
    wait_until("two images written and a third call in flight", || {
        let journal = journal(dir.path());
        events(&journal, "written") >= 2 && in_flight(&journal) == 1
    })
    .await;
    child.kill().unwrap(); // SIGKILL on Unix: no chance to clean up
    child.wait().unwrap();

    let at_kill = journal(dir.path());
    let written_at_kill = events(&at_kill, "written");
    let in_flight_at_kill = in_flight(&at_kill);
    assert!(
        written_at_kill >= 2 && written_at_kill < jobs,
        "{at_kill:?}"
    );
    assert_eq!(in_flight_at_kill, 1, "concurrency 1: {at_kill:?}");
    let before: Vec<(PathBuf, std::time::SystemTime)> = images(dir.path())
        .into_iter()
        .map(|p| {
            let modified = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p, modified)
        })
        .collect();

    let rerun = run(
        dir.path(),
        &server,
        batch_args(&["--concurrency", "1", "--json"]),
    )
    .await;
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(images(dir.path()).len(), jobs, "every image exists");
    let total = requests(&server).await;
    assert!(
        total <= jobs + in_flight_at_kill,
        "{total} requests for {jobs} images with {in_flight_at_kill} in flight at the kill"
    );
    let summary: Value = serde_json::from_slice(&rerun.stdout).unwrap();
    // At most one request per image plus the resends the summary owns up to (a resent call
    // may not have reached the server before the kill).
    let resent = summary["resent_after_interruption"].as_u64().unwrap() as usize;
    let recovered = summary["images_recovered"].as_u64().unwrap() as usize;
    assert_eq!(resent + recovered, in_flight_at_kill, "{summary}");
    assert!(total <= jobs + resent, "{total} requests, {resent} resent");
    assert!(total + recovered >= jobs, "every image was requested once");
    for (path, modified) in before {
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            modified,
            "{} was not written again",
            path.display()
        );
    }
    assert_eq!(in_flight(&journal(dir.path())), 0, "the journal is closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_finishes_the_calls_in_flight_and_says_how_to_resume() {
    let jobs = 8;
    let server = server(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    prompts(dir.path(), jobs);
    let mut cmd = command(dir.path(), &server);
    cmd.args(batch_args(&["--concurrency", "2"]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pid = child.id().to_string();
    wait_until("one image written", || {
        events(&journal(dir.path()), "written") >= 1
    })
    .await;
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let (status, err) = wait_for_exit(child).await;
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
    assert!(err.contains("batch in.txt --out out"), "{err}");

    let stopped = journal(dir.path());
    assert_eq!(
        in_flight(&stopped),
        0,
        "every started call was recorded: {stopped:?}"
    );
    let done = events(&stopped, "written");
    assert!(done < jobs, "Ctrl-C stopped the batch early: {done}");
    assert_eq!(images(dir.path()).len(), done);
    let requests_at_stop = requests(&server).await;
    assert_eq!(
        requests_at_stop, done,
        "the calls in flight finished and were kept"
    );

    let rerun = run(dir.path(), &server, batch_args(&["--concurrency", "2"])).await;
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(images(dir.path()).len(), jobs);
    assert_eq!(requests(&server).await, jobs, "no call made twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_lines_and_an_unreadable_reference_fail_alone() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.png");
    std::fs::write(&reference, imagegate_testkit_png()).unwrap();
    std::fs::write(
        dir.path().join("in.jsonl"),
        concat!(
            "{\"prompt\": \"a red cat\", \"id\": \"cat\"}\n",
            "{\"prompt\": \"broken\"\n",
            "{\"prompt\": \"missing ref\", \"references\": [\"nope.png\"]}\n",
            "{\"promt\": \"typo\"}\n",
            "{\"prompt\": \"two dogs\", \"n\": 2, \"references\": [\"ref.png\"], \"output\": \"dogs\"}\n",
        ),
    )
    .unwrap();
    let output = run(
        dir.path(),
        &server,
        [
            "batch",
            "in.jsonl",
            "--out",
            "out",
            "--provider",
            "gemini",
            "--json",
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("in.jsonl:2: skipped"), "{err}");
    assert!(err.contains("in.jsonl:4: skipped"), "{err}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{summary}");
    assert_eq!(failed[0]["line"], 3);
    assert_eq!(failed[0]["kind"], "unreadable_reference");
    assert!(
        failed[0]["message"].as_str().unwrap().contains("nope.png"),
        "{summary}"
    );
    let lines: Vec<u64> = summary["malformed_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [2, 4]);
    let names: Vec<String> = images(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["cat-a-red-cat.png", "dogs-1.png", "dogs-2.png"]);
    assert_eq!(requests(&server).await, 3, "the failed job sent nothing");
}

/// A small valid PNG (the fixture's image) to use as a reference.
fn imagegate_testkit_png() -> Vec<u8> {
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

#[tokio::test(flavor = "multi_thread")]
async fn dry_run_estimates_and_sends_and_writes_nothing() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    prompts(dir.path(), 25);
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[providers.gemini.quota.models.\"gemini-2.5-flash-image\"]\nrpm = 10\n",
    )
    .unwrap();
    let output = run(dir.path(), &server, batch_args(&["--dry-run", "--json"])).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["images"], 25);
    let cost = report["estimated_cost_usd"].as_f64().unwrap();
    assert!((cost - 25.0 * 0.039).abs() < 1e-9, "{report}");
    // The simple bound: 25 images at 10 a minute wait for two more minute windows.
    assert_eq!(report["bound"]["images_per_minute"], 10);
    assert_eq!(report["bound"]["seconds"], 120.0);
    // The simulator's engine, with latency, takes at least that long, and not absurdly more.
    let simulated = report["estimated_time_s"].as_f64().unwrap();
    assert!((120.0..600.0).contains(&simulated), "{report}");
    assert_eq!(report["simulation"]["failed"], 0, "{report}");
    assert!(
        report["time_method"]
            .as_str()
            .unwrap()
            .contains("simulator")
    );
    assert_eq!(requests(&server).await, 0);
    assert!(!dir.path().join("out").exists(), "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn max_cost_stops_before_overspending() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    prompts(dir.path(), 5);
    // Two images at $0.039 fit in $0.10; a third would pass it.
    let output = run(
        dir.path(),
        &server,
        batch_args(&["--concurrency", "1", "--max-cost", "0.10", "--json"]),
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(requests(&server).await, 2);
    assert_eq!(images(dir.path()).len(), 2);
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(summary["cost_usd"].as_f64().unwrap() <= 0.10);
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 3);
    assert!(failed.iter().all(|f| f["kind"] == "not_run"), "{summary}");
    assert!(summary["resume"].as_str().unwrap().contains("batch"));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_exits_2() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = run(dir.path(), &server, batch_args(&[])).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(stderr(&missing).contains("cannot read INPUT"));

    std::fs::write(dir.path().join("in.txt"), "{\"nope\": 1}\n").unwrap();
    let nothing = run(dir.path(), &server, batch_args(&[])).await;
    assert_eq!(nothing.status.code(), Some(2), "{}", stderr(&nothing));
    assert!(stderr(&nothing).contains("no valid job"));
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upstream_refusal_fails_its_job_with_kind_and_advice_and_keeps_the_rest() {
    let server = server(Duration::ZERO).await;
    let blocked = Fixture::by_id("gemini/generate-content/200-prompt-blocked").unwrap();
    Mock::given(body_string_contains("forbidden subject"))
        .respond_with(imagegate_testkit::response_template(&blocked))
        .with_priority(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("in.txt"),
        "a calm sea\na forbidden subject\na green hill\n",
    )
    .unwrap();
    let output = run(dir.path(), &server, batch_args(&[])).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.contains("failed job 2 (line 2): content_blocked"),
        "{text}"
    );
    assert!(text.contains("advice:"), "{text}");
    // One path: a provider is a one-target route, labelled as every route target is.
    assert!(
        text.contains("gemini (gemini-2.5-flash-image): 2 image(s)"),
        "per-target line: {text}"
    );
    assert_eq!(images(dir.path()).len(), 2, "the others are kept");
    assert!(stderr(&output).contains("job 2 (line 2) failed"));

    // A rerun tries the failed job again (a refusal made no image) and nothing else.
    let again = run(dir.path(), &server, batch_args(&[])).await;
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(requests(&server).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_already_on_disk_under_its_name_is_adopted_not_generated() {
    // A crash between the rename and the `written` record leaves the image without its
    // record: the rerun must not pay for it again nor overwrite it.
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "a quiet harbor\na busy port\n").unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    std::fs::write(
        dir.path().join("out").join(JOURNAL),
        "{\"at\":\"2026-11-23T10:00:00Z\",\"event\":\"started\",\"job\":\"1\",\"image\":0}\n",
    )
    .unwrap();
    let existing = imagegate_testkit_png();
    std::fs::write(dir.path().join("out/1-a-quiet-harbor.png"), &existing).unwrap();
    let output = run(dir.path(), &server, batch_args(&["--json"])).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["images_recovered"], 1);
    assert_eq!(summary["images_written"], 1);
    assert_eq!(summary["resent_after_interruption"], 0);
    assert_eq!(requests(&server).await, 1);
    assert_eq!(
        std::fs::read(dir.path().join("out/1-a-quiet-harbor.png")).unwrap(),
        existing
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_runs_the_batch_through_the_router() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    prompts(dir.path(), 3);
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[routes.main]\ntargets = [\"gemini\"]\n",
    )
    .unwrap();
    let output = run(
        dir.path(),
        &server,
        [
            "batch", "in.txt", "--out", "out", "--route", "main", "--json",
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(images(dir.path()).len(), 3);
    assert_eq!(requests(&server).await, 3);
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let targets = summary["targets"].as_object().unwrap();
    assert_eq!(targets.len(), 1, "{summary}");
    let (name, stats) = targets.iter().next().unwrap();
    assert!(name.starts_with("gemini"), "{name}");
    assert_eq!(stats["images"], 3);
    assert!((summary["cost_usd"].as_f64().unwrap() - 3.0 * 0.039).abs() < 1e-9);
}

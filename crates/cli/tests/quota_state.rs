//! Quota state outlives the process: `generate` counts and learns, the next `generate` and
//! `imagegate quota` know it.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::{imagegate, stderr};
use imagegate_testkit::{Fixture, mount};
use serde_json::Value;
use wiremock::MockServer;

fn rpd_used(dir: &std::path::Path) -> Value {
    let output = imagegate(dir).args(["quota", "--json"]).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    let pool = &status["pools"][0];
    pool["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dimension"] == "rpd")
        .unwrap()
        .clone()
}

#[test]
fn a_daily_limit_counts_across_runs_and_stops_the_next_one_without_a_call() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[providers.mock.quota.models.\"mock-image-1\"]\nrpd = 2\n",
    )
    .unwrap();
    for n in 1..=2 {
        let output = imagegate(dir.path())
            .args([
                "generate",
                "x",
                "--provider",
                "mock",
                "--size",
                "0.5K",
                "-o",
                "out/",
            ])
            .output()
            .unwrap();
        assert!(output.status.success(), "run {n}: {}", stderr(&output));
        assert_eq!(rpd_used(dir.path())["used"], n);
    }
    let output = imagegate(dir.path())
        .args([
            "generate",
            "x",
            "--provider",
            "mock",
            "--size",
            "0.5K",
            "-o",
            "third.png",
        ])
        .args(["--json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "quota_exhausted");
    assert_eq!(report["error"]["dimension"], "rpd");
    assert!(report["error"]["reset_at"].is_string());
    assert!(!dir.path().join("third.png").exists());
    assert_eq!(rpd_used(dir.path())["remaining"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_per_day_429_parks_the_pool_so_the_next_run_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        Fixture::by_id("gemini/generate-content/429-quotafailure-rpd-quotavalue").unwrap();
    let server = MockServer::start().await;
    mount(&server, &fixture).await;

    let run = |dir: std::path::PathBuf, uri: String| {
        let mut cmd = imagegate(&dir);
        cmd.env("GEMINI_API_KEY", "state-test-credential")
            .env("GEMINI_BASE_URL", uri)
            .args(["generate", "a fox", "-o", "fox.png"]);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let first = run(dir.path().to_path_buf(), server.uri()).await.unwrap();
    assert_eq!(first.status.code(), Some(1));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);

    let second = run(dir.path().to_path_buf(), server.uri()).await.unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "the parked pool is not called again"
    );
    let err = stderr(&second);
    assert!(err.contains("no rpd quota left until"), "{err}");
    assert!(err.contains("--clear-blocks"), "{err}");

    // The status shows the block; clearing it lets the next run call again.
    let output = imagegate(dir.path())
        .env("GEMINI_API_KEY", "state-test-credential")
        .args(["quota", "--json", "--clear-blocks"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let third = run(dir.path().to_path_buf(), server.uri()).await.unwrap();
    assert_eq!(third.status.code(), Some(1));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[test]
fn a_damaged_state_file_is_named_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".state")).unwrap();
    std::fs::write(dir.path().join(".state/quota.json"), "{ not json").unwrap();
    let output = imagegate(dir.path())
        .args(["generate", "x", "--size", "0.5K", "-o", "x.png"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("quota.json"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".state/quota.json")).unwrap(),
        "{ not json",
        "left as it was"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_tier_learns_the_limit_a_429_states_and_the_next_run_remembers_it() {
    let dir = tempfile::tempdir().unwrap();
    let fixture =
        Fixture::by_id("gemini/generate-content/429-quotafailure-rpd-quotavalue").unwrap();
    let stated = fixture.expect.quota_value.flatten().unwrap();
    let server = MockServer::start().await;
    mount(&server, &fixture).await;
    let quota = |dir: &std::path::Path| {
        let output = imagegate(dir)
            .env("GEMINI_API_KEY", "state-test-credential")
            .args(["quota", "--json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let status: Value = serde_json::from_slice(&output.stdout).unwrap();
        status["pools"][0]["dimensions"].clone()
    };
    let dim = |dims: &Value, name: &str| {
        dims.as_array()
            .unwrap()
            .iter()
            .find(|d| d["dimension"] == name)
            .unwrap()
            .clone()
    };
    // No tier configured: nothing known yet.
    let before = quota(dir.path());
    assert_eq!(dim(&before, "rpd")["learning"], true);

    let mut cmd = imagegate(dir.path());
    cmd.env("GEMINI_API_KEY", "state-test-credential")
        .env("GEMINI_BASE_URL", server.uri())
        .args(["generate", "a fox", "-o", "fox.png"]);
    let run = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));

    // A later process reads the learned limit from the state file.
    let after = quota(dir.path());
    let rpd = dim(&after, "rpd");
    assert_eq!(rpd["learned"], stated);
    assert_eq!(rpd["limit"], stated);
    assert_eq!(rpd.get("learning"), None);
    assert_eq!(dim(&after, "rpm")["learning"], true, "rpm is still unknown");
}

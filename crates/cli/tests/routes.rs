//! `generate` through a configured route: the router falls back across targets and the
//! configuration names what is wrong with a route.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::{imagegate, stderr, stdout};
use imagegate_testkit::{Fixture, mount};
use serde_json::Value;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer};

#[tokio::test(flavor = "multi_thread")]
async fn a_per_minute_429_on_the_first_target_falls_back_to_the_next_at_once() {
    let fixture = Fixture::by_id("gemini/generate-content/429-per-minute-requests").unwrap();
    let server = MockServer::start().await;
    mount(&server, &fixture).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "default_route = \"main\"\n\
         [providers.gemini]\nproject = \"p1\"\nbase_url = \"{}\"\n\
         [routes.main]\ntargets = [\"gemini\", \"mock\"]\n",
        server.uri()
    );
    std::fs::write(dir.path().join("imagegate.toml"), toml).unwrap();
    let mut cmd = imagegate(dir.path());
    cmd.env("GEMINI_API_KEY", "route-test-credential").args([
        "generate",
        "a heron",
        "--size",
        "0.5K",
        "-o",
        "heron.png",
        "--json",
    ]);
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["provider"], "route:main");
    assert_eq!(summary["model"], "mock-image-1", "served by the fallback");
    assert!(dir.path().join("heron.png").is_file());
    assert!(!stdout(&output).contains("route-test-credential"));
}

#[test]
fn a_route_naming_an_unknown_provider_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[routes.main]\ntargets = [\"mock\", \"nowhere:some-model\"]\n",
    )
    .unwrap();
    let output = imagegate(dir.path())
        .args(["generate", "x", "--route", "main"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("routes.main.targets") && err.contains("nowhere"),
        "{err}"
    );

    let output = imagegate(dir.path())
        .args(["generate", "x", "--route", "other"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn a_route_of_mocks_writes_every_image() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[providers.studio]\nkind = \"mock\"\n[routes.local]\ntargets = [\"studio\", \"mock\"]\n",
    )
    .unwrap();
    let output = imagegate(dir.path())
        .args([
            "generate", "dunes", "--route", "local", "-n", "3", "--seed", "5",
        ])
        .args(["--size", "0.5K", "-o", "out/"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let mut images: Vec<Vec<u8>> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(images.len(), 3);
    images.sort();
    images.dedup();
    assert_eq!(images.len(), 3, "three different pictures");
}

/// One path: a route whose only target answers a per-day 429 stops right after that one
/// request, saying when the pool resets, instead of waiting (silently) for the daily reset.
/// `--provider` goes through the same router and behaves the same. The command is guarded by a
/// generous timeout: a silent wait would hang it, and the test must fail rather than hang.
#[tokio::test(flavor = "multi_thread")]
async fn a_per_day_429_on_the_only_target_exits_1_at_once_saying_when_the_pool_resets() {
    for selection in [["--route", "main"], ["--provider", "gemini"]] {
        let fixture =
            Fixture::by_id("gemini/generate-content/429-quotafailure-rpd-quotavalue").unwrap();
        let server = MockServer::start().await;
        mount(&server, &fixture).await;
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            "[providers.gemini]\nproject = \"p1\"\nbase_url = \"{}\"\n\
             [routes.main]\ntargets = [\"gemini\"]\n",
            server.uri()
        );
        std::fs::write(dir.path().join("imagegate.toml"), toml).unwrap();
        let mut cmd = imagegate(dir.path());
        cmd.env("GEMINI_API_KEY", "route-test-credential")
            .args(["generate", "a heron", "-o", "heron.png", "--json"])
            .args(selection);
        let run = tokio::task::spawn_blocking(move || cmd.output().unwrap());
        let output = tokio::time::timeout(std::time::Duration::from_secs(60), run)
            .await
            .expect("the command must not wait for the daily reset")
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{selection:?}: {}",
            stderr(&output)
        );
        assert_eq!(
            server.received_requests().await.unwrap().len(),
            1,
            "{selection:?}: one request, then no retry"
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["error"]["kind"], "quota_exhausted", "{selection:?}");
        assert_eq!(report["error"]["dimension"], "rpd", "{selection:?}");
        let reset = report["error"]["reset_at"].as_str().unwrap();
        let err = stderr(&output);
        assert!(
            err.contains(&format!("capacity returns at {reset}")),
            "{err}"
        );
        assert!(
            err.contains("PST") || err.contains("PDT"),
            "Pacific time: {err}"
        );
        assert!(err.contains("no rpd quota left"), "{err}");
        assert!(err.contains("resets at"), "the advice: {err}");
        assert!(!dir.path().join("heron.png").exists());
    }
}

/// `batch` without `--max-wait` waits for per-minute windows but not for a daily reset: a
/// per-day 429 fails the job at once, and the next job finds the pool parked and sends
/// nothing. With `--max-wait 25h` the same batch would wait for the reset instead.
#[tokio::test(flavor = "multi_thread")]
async fn batch_fails_at_once_on_a_daily_quota_unless_max_wait_allows_the_wait() {
    let fixture =
        Fixture::by_id("gemini/generate-content/429-quotafailure-rpd-quotavalue").unwrap();
    let server = MockServer::start().await;
    mount(&server, &fixture).await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.gemini]\nproject = \"p1\"\nbase_url = \"{}\"\n",
        server.uri()
    );
    std::fs::write(dir.path().join("imagegate.toml"), toml).unwrap();
    std::fs::write(dir.path().join("in.txt"), "a heron\na crane\n").unwrap();
    let mut cmd = imagegate(dir.path());
    cmd.env("GEMINI_API_KEY", "route-test-credential").args([
        "batch",
        "in.txt",
        "--out",
        "out",
        "--provider",
        "gemini",
        "--concurrency",
        "1",
        "--json",
    ]);
    let run = tokio::task::spawn_blocking(move || cmd.output().unwrap());
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("the batch must not wait for the daily reset")
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let failed = summary["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 2, "{summary}");
    assert!(
        failed.iter().all(|f| f["kind"] == "quota_exhausted"),
        "{summary}"
    );
    assert!(
        failed[1]["message"]
            .as_str()
            .unwrap()
            .contains("capacity returns at"),
        "{summary}"
    );
}

/// A per-minute 429 asking for a day (`retryDelay: "86400s"` on a per-minute quota id) is not
/// believed: the pool is held 5 minutes, so `generate` (2-minute maximum wait) stops at once
/// saying capacity returns in 5 minutes, and the state file does not block the next day.
#[tokio::test(flavor = "multi_thread")]
async fn a_per_minute_429_asking_for_a_day_holds_the_pool_minutes_not_a_day() {
    let mut fixture = Fixture::by_id("gemini/generate-content/429-per-minute-requests").unwrap();
    let body = fixture.response.body_json.as_mut().unwrap();
    let details = body["error"]["details"].as_array_mut().unwrap();
    let retry = details
        .iter_mut()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .unwrap();
    retry["retryDelay"] = Value::from("86400s");
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(imagegate_testkit::response_template(&fixture))
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[providers.gemini]\nproject = \"p1\"\nbase_url = \"{}\"\n",
        server.uri()
    );
    std::fs::write(dir.path().join("imagegate.toml"), toml).unwrap();
    let mut cmd = imagegate(dir.path());
    cmd.env("GEMINI_API_KEY", "route-test-credential").args([
        "generate",
        "a heron",
        "-o",
        "heron.png",
        "--provider",
        "gemini",
        "--json",
    ]);
    let run = tokio::task::spawn_blocking(move || cmd.output().unwrap());
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), run)
        .await
        .expect("no wait of a day, nor of five minutes")
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "rate_limited");
    let wait_ms = report["error"]["retry_after_ms"].as_u64().unwrap();
    assert!(
        (299_000..=300_000).contains(&wait_ms),
        "held 5 minutes, not a day: {wait_ms} ms"
    );
    assert!(stderr(&output).contains("in 4 min") || stderr(&output).contains("in 5 min"));
}

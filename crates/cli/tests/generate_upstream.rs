//! `imagegate generate` against the real API shapes, served by a per-test wiremock server
//! through the conventional base-URL variables. The key must never appear in any output.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use base64::Engine as _;
use common::{imagegate, stderr, stdout};
use imagegate_testkit::{Fixture, mount};
use serde_json::Value;
use wiremock::MockServer;

const KEY: &str = "cli-test-credential-5d1e";

struct Run {
    output: std::process::Output,
    dir: tempfile::TempDir,
    requests: Vec<wiremock::Request>,
}

/// Serves `fixture_id` and runs `imagegate -vv generate` with `provider`'s variables pointed
/// at the server.
async fn run(provider: &str, fixture_id: &str, extra: &[&str]) -> Run {
    let fixture = Fixture::by_id(fixture_id).unwrap();
    let server = MockServer::start().await;
    mount(&server, &fixture).await;
    let dir = tempfile::tempdir().unwrap();
    let (key_var, url_var) = match provider {
        "gemini" => ("GEMINI_API_KEY", "GEMINI_BASE_URL"),
        _ => ("OPENROUTER_API_KEY", "OPENROUTER_BASE_URL"),
    };
    let mut cmd = imagegate(dir.path());
    cmd.env(key_var, KEY)
        .env(url_var, server.uri())
        .args([
            "-vv",
            "generate",
            "A watercolor lighthouse at dawn",
            "--provider",
            provider,
        ])
        .args(["-o", "out.png"])
        .args(extra);
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let requests = server.received_requests().await.unwrap();
    for shown in [stdout(&output), stderr(&output)] {
        assert!(
            !shown.contains(KEY),
            "the key leaked into the output: {shown}"
        );
    }
    for request in &requests {
        assert!(!request.url.as_str().contains(KEY), "the key is in the URL");
    }
    Run {
        output,
        dir,
        requests,
    }
}

/// The bytes of the first image in a fixture's response, as the upstream sent them.
fn first_image_bytes(fixture_id: &str) -> Vec<u8> {
    let fixture = Fixture::by_id(fixture_id).unwrap();
    let body: Value = serde_json::from_slice(&fixture.body()).unwrap();
    let data = body["candidates"][0]["content"]["parts"]
        .as_array()
        .and_then(|parts| parts.iter().find_map(|p| p["inlineData"]["data"].as_str()))
        .map(str::to_owned)
        .or_else(|| {
            body["choices"][0]["message"]["images"][0]["image_url"]["url"]
                .as_str()
                .and_then(|url| url.split_once(",").map(|(_, data)| data.to_owned()))
        })
        .expect("the fixture carries an image");
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn gemini_success_writes_the_image_byte_for_byte_in_one_request() {
    let id = "gemini/generate-content/200-success-png-with-text";
    let run = run("gemini", id, &["--aspect-ratio", "16:9"]).await;
    assert!(run.output.status.success(), "{}", stderr(&run.output));
    assert_eq!(run.requests.len(), 1, "one request for one image");
    assert_eq!(
        run.requests[0].headers.get("x-goog-api-key").unwrap(),
        KEY,
        "the key travels in the header"
    );
    let written = std::fs::read(run.dir.path().join("out.png")).unwrap();
    assert_eq!(written, first_image_bytes(id));
}

#[tokio::test(flavor = "multi_thread")]
async fn gemini_permanent_errors_fail_at_once_with_advice_and_exit_1() {
    for (id, advice) in [
        (
            "gemini/generate-content/429-limit0-freetier-image",
            "billing",
        ),
        ("gemini/generate-content/400-location-unsupported", "region"),
        ("gemini/generate-content/400-api-key-invalid", "key"),
    ] {
        let run = run("gemini", id, &[]).await;
        assert_eq!(
            run.output.status.code(),
            Some(1),
            "{id}: {}",
            stderr(&run.output)
        );
        assert_eq!(run.requests.len(), 1, "{id}: never retried");
        let err = stderr(&run.output).to_lowercase();
        assert!(err.contains(advice), "{id}: {err}");
        assert!(!run.dir.path().join("out.png").exists());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_json_reports_the_error_kind_for_scripts() {
    let run = run(
        "gemini",
        "gemini/generate-content/429-quotafailure-rpd-quotavalue",
        &["--json"],
    )
    .await;
    assert_eq!(run.output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&run.output.stdout).unwrap();
    assert_eq!(report["error"]["kind"], "quota_exhausted");
    assert_eq!(report["error"]["dimension"], "rpd");
}

#[tokio::test(flavor = "multi_thread")]
async fn openrouter_success_and_a_credit_error() {
    let id = "openrouter/chat-completions/200-success";
    let run_ok = run("openrouter", id, &[]).await;
    assert!(run_ok.output.status.success(), "{}", stderr(&run_ok.output));
    assert_eq!(run_ok.requests.len(), 1);
    let auth = run_ok.requests[0].headers.get("authorization").unwrap();
    assert_eq!(auth.to_str().unwrap(), format!("Bearer {KEY}"));
    let written = std::fs::read(run_ok.dir.path().join("out.png")).unwrap();
    assert_eq!(written, first_image_bytes(id));

    let run_402 = run(
        "openrouter",
        "openrouter/chat-completions/402-insufficient-credits",
        &[],
    )
    .await;
    assert_eq!(run_402.output.status.code(), Some(1));
    assert_eq!(run_402.requests.len(), 1);
    assert!(
        stderr(&run_402.output).contains("billing"),
        "{}",
        stderr(&run_402.output)
    );
}

//! `imagegate generate --provider openai` against a wiremock stand-in of the Images API,
//! reached through `OPENAI_BASE_URL` as the openai SDKs read it, and a route that falls back
//! from OpenAI to the mock. The key must never appear in any output.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use base64::Engine as _;
use common::{imagegate, stderr, stdout};
use imagegate_testkit::{Fixture, mount};
use serde_json::Value;
use wiremock::MockServer;

const KEY: &str = "cli-openai-credential-3b7a";

struct Run {
    output: std::process::Output,
    dir: tempfile::TempDir,
    requests: Vec<wiremock::Request>,
}

async fn serve(fixture_id: &str) -> MockServer {
    let fixture = Fixture::by_id(fixture_id).unwrap();
    let server = MockServer::start().await;
    mount(&server, &fixture).await;
    server
}

/// Runs `imagegate` in a fresh directory with `toml` as its configuration, the key in
/// `OPENAI_API_KEY` and `OPENAI_BASE_URL` at `{server}/v1`.
async fn run(server: &MockServer, toml: &str, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("imagegate.toml"), toml).unwrap();
    let mut cmd = imagegate(dir.path());
    cmd.env("OPENAI_API_KEY", KEY)
        .env("OPENAI_BASE_URL", format!("{}/v1", server.uri()))
        .args(args);
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

#[tokio::test(flavor = "multi_thread")]
async fn openai_success_writes_the_image_byte_for_byte_in_one_request() {
    let id = "openai/images-generations/200-success-gpt-image-1";
    let server = serve(id).await;
    let run = run(
        &server,
        "",
        &[
            "generate",
            "A watercolor lighthouse at dawn",
            "--provider",
            "openai",
            "--aspect-ratio",
            "16:9",
            "-o",
            "out.png",
            "--json",
        ],
    )
    .await;
    assert!(run.output.status.success(), "{}", stderr(&run.output));
    assert_eq!(run.requests.len(), 1, "one request for one image");
    let sent = &run.requests[0];
    assert_eq!(sent.url.path(), "/v1/images/generations");
    assert_eq!(
        sent.headers.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {KEY}")
    );
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["model"], "gpt-image-1");
    assert_eq!(body["size"], "1536x1024");
    let fixture = Fixture::by_id(id).unwrap();
    let answer: Value = serde_json::from_slice(&fixture.body()).unwrap();
    let expected = base64::engine::general_purpose::STANDARD
        .decode(answer["data"][0]["b64_json"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        std::fs::read(run.dir.path().join("out.png")).unwrap(),
        expected
    );
    let summary: Value = serde_json::from_slice(&run.output.stdout).unwrap();
    assert_eq!(summary["provider"], "openai", "{summary}");
}

#[tokio::test(flavor = "multi_thread")]
async fn openai_billing_errors_fail_at_once_with_exit_1() {
    for id in [
        "openai/images-generations/429-insufficient-quota",
        "openai/images-generations/429-limit-zero",
    ] {
        let server = serve(id).await;
        let run = run(
            &server,
            "",
            &[
                "generate",
                "x",
                "--provider",
                "openai",
                "-o",
                "out.png",
                "--json",
            ],
        )
        .await;
        assert_eq!(
            run.output.status.code(),
            Some(1),
            "{id}: {}",
            stderr(&run.output)
        );
        assert_eq!(run.requests.len(), 1, "{id}: never retried");
        let report: Value = serde_json::from_slice(&run.output.stdout).unwrap();
        assert_eq!(report["error"]["kind"], "billing_required", "{id}");
        assert!(!run.dir.path().join("out.png").exists());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_falls_back_from_an_openai_429_to_the_mock() {
    let server = serve("openai/images-generations/429-images-per-minute").await;
    let toml = "default_route = \"main\"\n\
                [providers.openai]\nproject = \"acct\"\n\
                [routes.main]\ntargets = [\"openai\", \"mock\"]\n";
    let run = run(
        &server,
        toml,
        &["generate", "a heron", "-o", "heron.png", "--json"],
    )
    .await;
    assert!(run.output.status.success(), "{}", stderr(&run.output));
    assert_eq!(run.requests.len(), 1, "OpenAI was asked once");
    let summary: Value = serde_json::from_slice(&run.output.stdout).unwrap();
    assert_eq!(summary["provider"], "route:main");
    assert_eq!(summary["model"], "mock-image-1", "served by the fallback");
    assert!(run.dir.path().join("heron.png").is_file());
}

#[test]
fn diagnose_tells_the_openai_envelope_apart_and_explains_it() {
    let fixture = Fixture::by_id("openai/images-generations/429-tokens-per-minute").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.json"), fixture.body()).unwrap();
    for provider in ["openai", "auto"] {
        let output = imagegate(dir.path())
            .args([
                "diagnose",
                "--provider",
                provider,
                "--status",
                "429",
                "body.json",
            ])
            .args(["--now", "2026-01-15T12:00:00Z"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let text = stdout(&output);
        assert!(text.contains("rate_limited"), "{provider}: {text}");
        assert!(text.contains("OpenAI"), "{provider}: {text}");
        assert!(text.contains("tpm"), "{provider}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rate_limit_headers_of_a_success_are_learned_and_remembered() {
    let server = serve("openai/images-generations/200-success-gpt-image-1").await;
    let toml = "[providers.openai]\nproject = \"acct\"\n";
    let run = run(
        &server,
        toml,
        &[
            "generate",
            "a heron",
            "--provider",
            "openai",
            "-o",
            "heron.png",
        ],
    )
    .await;
    assert!(run.output.status.success(), "{}", stderr(&run.output));
    // The fixture's headers: 50 requests and 100000 tokens a minute.
    let mut cmd = imagegate(run.dir.path());
    cmd.env("OPENAI_API_KEY", KEY).args(["quota", "--json"]);
    let output = cmd.output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let pools: Value = serde_json::from_str(&text).unwrap();
    let pools = pools
        .as_array()
        .cloned()
        .or_else(|| pools["pools"].as_array().cloned())
        .unwrap_or_else(|| panic!("{text}"));
    let pool = pools
        .iter()
        .find(|p| p["id"]["provider"] == "openai")
        .unwrap_or_else(|| panic!("{text}"));
    let learned = |dim: &str| {
        pool["dimensions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["dimension"] == dim)
            .map(|d| d["learned"].clone())
            .unwrap()
    };
    assert_eq!(learned("rpm"), 50, "{text}");
    assert_eq!(learned("tpm"), 100_000, "{text}");
}

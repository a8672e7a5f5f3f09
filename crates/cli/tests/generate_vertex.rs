//! `imagegate generate --provider vertex` against wiremock stand-ins of Vertex AI and of
//! Google's token endpoint (a service-account key generated for the test, its `token_uri` at
//! the stand-in), and a route that falls back across all four providers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;

use aws_lc_rs::encoding::AsDer;
use base64::Engine as _;
use common::{imagegate, stderr, stdout};
use imagegate_testkit::{Fixture, mount};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const ACCESS_TOKEN: &str = "cli-vertex-access-token-8e2f";
const VERTEX_OK: &str = "vertex/generate-content/200-success";

/// A service-account key file (a fresh RSA key) whose `token_uri` is the stand-in's `/token`.
fn key_file(dir: &std::path::Path, server: &MockServer) -> std::path::PathBuf {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = pair.as_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let body: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        body.join("\n")
    );
    let file = dir.join("service-account.json");
    let json = json!({"type": "service_account", "project_id": "test-project",
        "private_key": pem, "client_email": "cli-test@test-project.iam.gserviceaccount.com",
        "token_uri": format!("{}/token", server.uri())});
    std::fs::write(&file, json.to_string()).unwrap();
    file
}

async fn token_endpoint(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}),
        ))
        .mount(server)
        .await;
}

fn image_of(fixture_id: &str) -> Vec<u8> {
    let fixture = Fixture::by_id(fixture_id).unwrap();
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

async fn output_of(mut cmd: assert_cmd::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn vertex_success_through_a_service_account_token() {
    let server = MockServer::start().await;
    token_endpoint(&server).await;
    mount(&server, &Fixture::by_id(VERTEX_OK).unwrap()).await;
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), &server);
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[providers.vertex]\nproject = \"test-project/us-central1\"\n",
    )
    .unwrap();
    let mut cmd = imagegate(dir.path());
    cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("VERTEX_BASE_URL", server.uri())
        .args([
            "generate",
            "a lighthouse",
            "--provider",
            "vertex",
            "-o",
            "out.png",
            "--json",
        ]);
    let output = output_of(cmd).await;
    assert!(output.status.success(), "{}", stderr(&output));
    for shown in [stdout(&output), stderr(&output)] {
        assert!(
            !shown.contains(ACCESS_TOKEN) && !shown.contains("PRIVATE KEY"),
            "{shown}"
        );
    }
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.iter().filter(|r| r.url.path() == "/token").count(), 1);
    let vertex: Vec<_> = sent.iter().filter(|r| r.url.path() != "/token").collect();
    assert_eq!(vertex.len(), 1);
    assert_eq!(
        vertex[0].url.path(),
        "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash-image:generateContent"
    );
    assert_eq!(
        vertex[0]
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {ACCESS_TOKEN}")
    );
    assert_eq!(
        std::fs::read(dir.path().join("out.png")).unwrap(),
        image_of(VERTEX_OK)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_route_falls_back_across_gemini_openrouter_openai_to_vertex() {
    let server = MockServer::start().await;
    token_endpoint(&server).await;
    for id in [
        "gemini/generate-content/429-per-minute-requests",
        "openrouter/chat-completions/429-retry-after",
        "openai/images-generations/429-images-per-minute",
        VERTEX_OK,
    ] {
        mount(&server, &Fixture::by_id(id).unwrap()).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path(), &server);
    let toml = "default_route = \"all\"\n\
                [providers.gemini]\nproject = \"g\"\n\
                [providers.openrouter]\nproject = \"o\"\n\
                [providers.openai]\nproject = \"a\"\n\
                [providers.vertex]\nproject = \"test-project/us-central1\"\n\
                [routes.all]\ntargets = [\"gemini\", \"openrouter\", \"openai\", \"vertex\"]\n";
    std::fs::write(dir.path().join("imagegate.toml"), toml).unwrap();
    let mut cmd = imagegate(dir.path());
    cmd.env("GEMINI_API_KEY", "route-gemini-credential")
        .env("GEMINI_BASE_URL", server.uri())
        .env("OPENROUTER_API_KEY", "route-openrouter-credential")
        .env("OPENROUTER_BASE_URL", server.uri())
        .env("OPENAI_API_KEY", "route-openai-credential")
        .env("OPENAI_BASE_URL", format!("{}/v1", server.uri()))
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key)
        .env("VERTEX_BASE_URL", server.uri())
        .args(["generate", "a heron", "-o", "heron.png", "--json"]);
    let output = output_of(cmd).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let sent = server.received_requests().await.unwrap();
    let calls = |p: &str| sent.iter().filter(|r| r.url.path() == p).count();
    assert_eq!(
        calls("/v1beta/models/gemini-2.5-flash-image:generateContent"),
        1
    );
    assert_eq!(calls("/api/v1/chat/completions"), 1);
    assert_eq!(calls("/v1/images/generations"), 1);
    assert_eq!(
        calls(
            "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash-image:generateContent"
        ),
        1
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["provider"], "route:all", "{summary}");
    assert_eq!(
        std::fs::read(dir.path().join("heron.png")).unwrap(),
        image_of(VERTEX_OK)
    );
    let shown = format!("{}{}", stdout(&output), stderr(&output));
    for secret in [
        "route-gemini-credential",
        "route-openrouter-credential",
        "route-openai-credential",
        ACCESS_TOKEN,
    ] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
}

#[test]
fn diagnose_explains_a_vertex_429_as_nothing_to_learn() {
    let fixture = Fixture::by_id("vertex/generate-content/429-quota-failure-per-day").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.json"), fixture.body()).unwrap();
    for provider in ["vertex", "auto"] {
        let output = imagegate(dir.path())
            .args(["diagnose", "--provider", provider, "--json", "body.json"])
            .args(["--now", "2026-01-15T12:00:00Z"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["kind"], "rate_limited", "{provider}: {report}");
        assert_eq!(report["dimension"], Value::Null, "{provider}: {report}");
        assert_eq!(report["retry_after_ms"], 20000, "{provider}: {report}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn vertex_errors_reach_the_user_classified() {
    for (id, kind, code) in [
        (
            "vertex/generate-content/403-billing-disabled",
            "billing_required",
            1,
        ),
        (
            "vertex/generate-content/429-resource-exhausted",
            "rate_limited",
            1,
        ),
    ] {
        let server = MockServer::start().await;
        token_endpoint(&server).await;
        mount(&server, &Fixture::by_id(id).unwrap()).await;
        let dir = tempfile::tempdir().unwrap();
        let key = key_file(dir.path(), &server);
        std::fs::write(
            dir.path().join("imagegate.toml"),
            "[providers.vertex]\nproject = \"test-project/us-central1\"\n",
        )
        .unwrap();
        let mut cmd = imagegate(dir.path());
        cmd.env("GOOGLE_APPLICATION_CREDENTIALS", &key)
            .env("VERTEX_BASE_URL", server.uri())
            .args([
                "generate",
                "x",
                "--provider",
                "vertex",
                "-o",
                "x.png",
                "--json",
            ]);
        let output = output_of(cmd).await;
        assert_eq!(
            output.status.code(),
            Some(code),
            "{id}: {}",
            stderr(&output)
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["error"]["kind"], kind, "{id}: {report}");
        assert_eq!(report["error"]["dimension"], Value::Null, "{id}: {report}");
        assert!(!dir.path().join("x.png").exists());
    }
}

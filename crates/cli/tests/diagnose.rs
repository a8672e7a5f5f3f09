//! `imagegate diagnose` classifies every recorded error exactly as the providers do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod common;

use common::{imagegate, stderr, stdout};
use imagegate_testkit::{Fixture, Origin};
use serde_json::Value;

/// Every real error body the repository holds, by fixture id: each must stay a recorded
/// fixture that `diagnose` is run on.
const RECORDED_ERRORS: [&str; 15] = [
    "gemini/generate-content/400-api-key-invalid",
    "gemini/generate-content/400-location-unsupported",
    "gemini/generate-content/404-model-not-found",
    "gemini/generate-content/429-errorinfo-rate-limit-exceeded",
    "gemini/generate-content/429-limit0-freetier-image",
    "gemini/generate-content/429-quotafailure-rpd-quotavalue",
    "gemini/generate-content/429-quotafailure-tpm-freetier",
    "gemini/generate-content/429-resource-exhausted-bare",
    "gemini/generate-content/500-internal",
    "gemini/generate-content/503-overloaded",
    "openrouter/chat-completions/401-no-auth",
    "openrouter/chat-completions/402-insufficient-credits",
    "openrouter/chat-completions/404-no-endpoints",
    "openrouter/chat-completions/429-free-models-per-day",
    "openrouter/chat-completions/502-upstream-error-raw-object",
];

/// Recorded and synthesized fixtures whose body is a JSON error envelope: what a person would
/// paste into `diagnose`.
fn error_fixtures(provider: &str) -> Vec<Fixture> {
    Fixture::load_dir(provider)
        .unwrap()
        .into_iter()
        .filter(|f| f.expect.kind.is_some() && f.response.status >= 400)
        .filter(|f| {
            serde_json::from_slice::<Value>(&f.body()).is_ok_and(|v| {
                let v = v.as_array().and_then(|a| a.first()).unwrap_or(&v);
                v.get("error").is_some_and(Value::is_object)
                    || (v.get("code").is_some() && v.get("message").is_some())
            })
        })
        .collect()
}

fn diagnose_json(fixture: &Fixture, provider: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body.json"), fixture.body()).unwrap();
    let mut cmd = imagegate(dir.path());
    cmd.args(["diagnose", "--json", "--provider", provider])
        .args(["--status", &fixture.response.status.to_string()])
        .args(["--now", &fixture.now().to_string(), "body.json"]);
    for (name, value) in &fixture.response.headers {
        cmd.args(["--header", &format!("{name}: {value}")]);
    }
    let output = cmd.output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}: {}",
        fixture.id,
        stderr(&output)
    );
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 1, "exactly one JSON object: {text}");
    serde_json::from_str(&text).unwrap()
}

/// The fields `diagnose --json` promises, compared with the fixture's expectation.
fn mismatches(fixture: &Fixture, got: &Value) -> Vec<String> {
    let e = &fixture.expect;
    let mut problems = Vec::new();
    let mut check = |field: &str, want: Value| {
        if got[field] != want {
            problems.push(format!("{field}: expected {want}, got {}", got[field]));
        }
    };
    check("kind", serde_json::to_value(e.kind).unwrap());
    if let Some(t) = e.temporary {
        check("temporary", Value::Bool(t));
    }
    if let Some(s) = e.http_status {
        check("http_status", s.into());
    }
    if let Some(d) = e.dimension {
        check("dimension", serde_json::to_value(d).unwrap());
    }
    if let Some(v) = e.quota_value {
        check("quota_value", serde_json::to_value(v).unwrap());
    }
    if let Some(id) = &e.quota_id {
        check("quota_id", id.as_str().into());
    }
    if let Some(m) = &e.quota_metric {
        check("quota_metric", m.as_str().into());
    }
    if let Some(m) = &e.model {
        check("model", m.as_str().into());
    }
    if let Some(ms) = e.retry_after_ms {
        check("retry_after_ms", serde_json::to_value(ms).unwrap());
    }
    if let Some(at) = e.reset_at {
        check("reset_at", serde_json::to_value(at).unwrap());
    }
    for field in [
        "kind",
        "temporary",
        "http_status",
        "dimension",
        "retry_after_ms",
        "quota_id",
        "quota_metric",
        "quota_value",
        "model",
        "reset_at",
        "message",
        "advice",
    ] {
        if got.get(field).is_none() {
            problems.push(format!("field `{field}` missing"));
        }
    }
    problems
}

fn check_provider(provider: &str) -> usize {
    let fixtures = error_fixtures(provider);
    assert!(!fixtures.is_empty(), "no {provider} error fixtures");
    let mut failures = Vec::new();
    for fixture in &fixtures {
        for envelope in [provider, "auto"] {
            let problems = mismatches(fixture, &diagnose_json(fixture, envelope));
            if !problems.is_empty() {
                failures.push(format!(
                    "{} (--provider {envelope}): {}",
                    fixture.id,
                    problems.join("; ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    fixtures.len()
}

/// Every provider with fixtures (each directory of `fixtures/` but the scenarios and the fuzz
/// findings), so a new
/// provider's error fixtures are diagnosed without editing this file.
fn providers_with_fixtures() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(imagegate_testkit::fixtures_root())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "scenarios" && name != "fuzz")
        .collect();
    names.sort();
    names
}

#[test]
fn diagnose_agrees_with_every_error_fixture_of_every_provider() {
    let providers = providers_with_fixtures();
    for known in ["gemini", "openrouter", "openai"] {
        assert!(
            providers.iter().any(|p| p == known),
            "{known} in {providers:?}"
        );
    }
    for provider in &providers {
        check_provider(provider);
    }
}

#[test]
fn every_recorded_error_is_a_fixture_diagnose_runs_on() {
    let mut diagnosed = Vec::new();
    for provider in ["gemini", "openrouter"] {
        diagnosed.extend(error_fixtures(provider).into_iter().map(|f| f.id));
    }
    for id in RECORDED_ERRORS {
        let f = Fixture::by_id(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(f.origin, Origin::Recorded, "{id}");
        assert!(
            diagnosed.contains(&f.id),
            "{id} is not run through diagnose"
        );
    }
}

#[test]
fn the_status_comes_from_the_body_unless_given() {
    let dir = tempfile::tempdir().unwrap();
    let body =
        r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#;
    let output = imagegate(dir.path())
        .args(["diagnose", "--json", "-"])
        .write_stdin(body)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let got: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(got["kind"], "unavailable");
    assert_eq!(got["http_status"], 503);
}

#[test]
fn input_it_does_not_understand_exits_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (input, reason) in [
        ("<html><body>502 Bad Gateway</body></html>", "not JSON"),
        ("", "empty"),
        ("{\"candidates\": []}", "not an error body"),
        ("{\"error\": {\"message\": \"no code\"}}", "--status"),
        ("{\"error\": {\"code\": 4", "not JSON"),
    ] {
        let output = imagegate(dir.path())
            .arg("diagnose")
            .write_stdin(input)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{input}");
        assert!(
            stderr(&output).contains(reason),
            "{input}: {}",
            stderr(&output)
        );
    }
    let output = imagegate(dir.path())
        .args(["diagnose", "missing.json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("missing.json"));
}

#[test]
fn the_human_explanation_of_a_daily_quota() {
    let fixture = Fixture::by_id("gemini/generate-content/429-quotafailure-rpd-quotavalue")
        .expect("the recorded per-day 429 is a fixture");
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args(["diagnose", "--now", &fixture.now().to_string(), "-"])
        .write_stdin(fixture.body())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    insta::assert_snapshot!(stdout(&output));
}

#[test]
fn a_malformed_header_argument_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args(["diagnose", "--header", "no colon here", "-"])
        .write_stdin("{\"error\":{\"code\":429,\"message\":\"x\"}}")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("Name: value"),
        "{}",
        stderr(&output)
    );
}

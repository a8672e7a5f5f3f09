//! `imagegate batch --via batch|auto` as a user runs it: the real binary, the Gemini Batch API
//! served by a per-test wiremock server (a create answering a pending Operation, a poll
//! answering the finished one with the recorded image body as every inline result), the dry
//! run's two costs, and the flags' refusals.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::{imagegate, journal, output_images as images, stderr, stdout};
use imagegate_testkit::Fixture;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "batch-api-test-credential-3d1e";
const SUCCESS: &str = "gemini/generate-content/200-success-png-with-text";
const MODEL: &str = "gemini-2.5-flash-image";

/// The Operation of a job named `batches/wm-1`, in `state`, with `results` (keys) inline.
fn operation(state: &str, keys: &[&str]) -> Value {
    let image: Value = serde_json::from_slice(&Fixture::by_id(SUCCESS).unwrap().body()).unwrap();
    let mut op = json!({
        "name": "batches/wm-1",
        "metadata": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
            "model": format!("models/{MODEL}"),
            "displayName": "from-the-test",
            "state": state,
            "batchStats": {"requestCount": keys.len().to_string(), "pendingRequestCount": keys.len().to_string()},
            "name": "batches/wm-1"
        }
    });
    if state == "BATCH_STATE_SUCCEEDED" {
        let inlined: Vec<Value> = keys
            .iter()
            .map(|k| json!({"response": image, "metadata": {"key": k}}))
            .collect();
        let output = json!({"inlinedResponses": {"inlinedResponses": inlined}});
        op["metadata"]["output"] = output.clone();
        op["metadata"]["batchStats"] = json!({
            "requestCount": keys.len().to_string(),
            "successfulRequestCount": keys.len().to_string()
        });
        op["done"] = json!(true);
        let mut response = output;
        response["@type"] = json!(
            "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
        );
        op["response"] = response;
    }
    op
}

/// A Batch API whose one job holds `keys` and has finished by the first poll.
async fn batch_server(keys: &[&str]) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1beta/models/[^/]+:batchGenerateContent$"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(operation("BATCH_STATE_PENDING", keys)),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1beta/batches/wm-1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(operation("BATCH_STATE_SUCCEEDED", keys)),
        )
        .mount(&server)
        .await;
    server
}

fn run(dir: &Path, url: &str, args: &[&str]) -> std::process::Output {
    let output = imagegate(dir)
        .env("GEMINI_API_KEY", KEY)
        .env("GEMINI_BASE_URL", url)
        .args(args)
        .output()
        .unwrap();
    for shown in [stdout(&output), stderr(&output)] {
        assert!(!shown.contains(KEY), "the key leaked: {shown}");
    }
    output
}

const FAST: &str = "[batch]\npoll_interval = \"10ms\"\nmax_poll_interval = \"20ms\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn via_batch_writes_the_results_like_interactive_images_at_half_the_price() {
    let server = batch_server(&["1#0", "2#0"]).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "a red kite\na blue boat\n").unwrap();
    std::fs::write(dir.path().join("imagegate.toml"), FAST).unwrap();
    let uri = server.uri();
    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            run(
                &dir,
                &uri,
                &[
                    "batch",
                    "in.txt",
                    "--out",
                    "out",
                    "--provider",
                    "gemini",
                    "--via",
                    "batch",
                    "--json",
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let names: Vec<String> = images(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["1-a-red-kite.png", "2-a-blue-boat.png"]);
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["via"], "batch");
    assert_eq!(summary["images_via_batch"], 2);
    assert_eq!(summary["images_written"], 2);
    assert!(
        (summary["cost_usd"].as_f64().unwrap() - 0.039).abs() < 1e-9,
        "{summary}"
    );
    assert_eq!(summary["batch_jobs"][0]["name"], "batches/wm-1");
    assert_eq!(summary["batch_jobs"][0]["state"], "succeeded");
    assert_eq!(
        summary["targets"]["gemini (gemini-2.5-flash-image, Batch API)"]["images"], 2,
        "{summary}"
    );
    let requests = server.received_requests().await.unwrap();
    let creates: Vec<_> = requests
        .iter()
        .filter(|r| r.url.path().ends_with(":batchGenerateContent"))
        .collect();
    assert_eq!(creates.len(), 1, "one job");
    let body: Value = serde_json::from_slice(&creates[0].body).unwrap();
    let sent = &body["batch"]["input_config"]["requests"]["requests"];
    assert_eq!(sent.as_array().unwrap().len(), 2, "{body}");
    assert_eq!(sent[0]["metadata"]["key"], "1#0");
    let display = body["batch"]["display_name"].as_str().unwrap();
    // The journal named the job before it was created, and recorded its name after.
    let journal = journal(dir.path());
    let events: Vec<&str> = journal
        .iter()
        .map(|r| r["event"].as_str().unwrap())
        .collect();
    let planned = events.iter().position(|e| *e == "batch_planned").unwrap();
    let created = events.iter().position(|e| *e == "batch_created").unwrap();
    assert!(planned < created, "{events:?}");
    assert_eq!(journal[planned]["batch"], display);
    assert_eq!(journal[created]["name"], "batches/wm-1");
    assert_eq!(events.iter().filter(|e| **e == "done").count(), 2);

    // A rerun has nothing to do and sends nothing.
    let before = server.received_requests().await.unwrap().len();
    let uri = server.uri();
    let again = tokio::task::spawn_blocking({
        let dir = dir.path().to_path_buf();
        move || {
            run(
                &dir,
                &uri,
                &[
                    "batch",
                    "in.txt",
                    "--out",
                    "out",
                    "--provider",
                    "gemini",
                    "--via",
                    "batch",
                ],
            )
        }
    })
    .await
    .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(server.received_requests().await.unwrap().len(), before);
}

#[test]
fn the_dry_run_prices_both_ways_and_auto_takes_the_batch_api_when_the_deadline_allows() {
    let dir = tempfile::tempdir().unwrap();
    let mut prompts = String::new();
    for i in 0..25 {
        prompts.push_str(&format!("a lighthouse number {i}\n"));
    }
    std::fs::write(dir.path().join("in.txt"), prompts).unwrap();
    let dry = |extra: &[&str]| {
        let mut args = vec![
            "batch",
            "in.txt",
            "--out",
            "out",
            "--provider",
            "gemini",
            "--dry-run",
            "--json",
        ];
        args.extend_from_slice(extra);
        let output = run(dir.path(), "http://127.0.0.1:9", &args);
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-9;

    // A deadline the Batch API can meet: auto is the default, everything goes there.
    let report = dry(&["--deadline", "30h"]);
    assert_eq!(report["via"], "auto", "{report}");
    assert_eq!(report["images_batch"], 25);
    assert_eq!(report["images_interactive"], 0);
    assert!(
        close(&report["cost_interactive_usd"], 25.0 * 0.039),
        "{report}"
    );
    assert!(
        close(&report["cost_batch_usd"], 25.0 * 0.039 / 2.0),
        "{report}"
    );
    assert!(
        close(&report["estimated_cost_usd"], 25.0 * 0.039 / 2.0),
        "{report}"
    );
    assert!(close(&report["saving_usd"], 25.0 * 0.039 / 2.0), "{report}");

    // Too close for it: interactive, as before; no saving, both costs still shown.
    let report = dry(&["--deadline", "2h"]);
    assert_eq!(report["via"], "interactive", "{report}");
    assert_eq!(report["images_interactive"], 25);
    assert!(
        close(&report["estimated_cost_usd"], 25.0 * 0.039),
        "{report}"
    );
    assert!(
        close(&report["cost_batch_usd"], 25.0 * 0.039 / 2.0),
        "{report}"
    );
    assert!(close(&report["saving_usd"], 0.0), "{report}");

    // Forced either way.
    let report = dry(&["--via", "batch"]);
    assert_eq!(report["images_batch"], 25);
    let text = run(
        dir.path(),
        "http://127.0.0.1:9",
        &[
            "batch",
            "in.txt",
            "--out",
            "out",
            "--provider",
            "gemini",
            "--dry-run",
            "--deadline",
            "30h",
        ],
    );
    let text = stdout(&text);
    assert!(
        text.contains(
            "all interactive: $0.975; all via the Batch API: $0.488; this plan saves $0.488 (50%)"
        ),
        "{text}"
    );
    assert!(
        text.contains("estimated time: 1day (the Batch API's turnaround"),
        "{text}"
    );
    assert!(!dir.path().join("out").exists(), "a dry run writes nothing");
}

#[test]
fn the_flags_refuse_what_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.txt"), "a red kite\n").unwrap();
    // The mock has no Batch API.
    let output = imagegate(dir.path())
        .args([
            "batch",
            "in.txt",
            "--out",
            "out",
            "--provider",
            "mock",
            "--via",
            "batch",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--via batch needs a Gemini target"));
    // auto needs a deadline.
    let output = run(
        dir.path(),
        "http://127.0.0.1:9",
        &[
            "batch",
            "in.txt",
            "--out",
            "out",
            "--provider",
            "gemini",
            "--via",
            "auto",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("--via auto needs --deadline"));
    // A provider with its Batch API turned off is no batch target either.
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[providers.gemini]\nbatch = false\n",
    )
    .unwrap();
    let output = run(
        dir.path(),
        "http://127.0.0.1:9",
        &[
            "batch",
            "in.txt",
            "--out",
            "out",
            "--provider",
            "gemini",
            "--via",
            "batch",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    // Only Gemini has one.
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[providers.openrouter]\nbatch = true\n",
    )
    .unwrap();
    let output = run(
        dir.path(),
        "http://127.0.0.1:9",
        &["batch", "in.txt", "--out", "out"],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("providers.openrouter.batch"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.path().join("out").exists());
}

//! The Batch API end to end: imagegate-gemini's batch calls against the emulator over loopback,
//! on a manual clock (turnarounds pass by advancing it; nothing sleeps).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{GEMINI_MODEL, Running, config, start};
use imagegate_core::{ApiKey, ErrorKind, GenerateRequest, ManualClock};
use imagegate_emulator::{BatchEndpoint, EmulatorConfig, HoldPhase};
use imagegate_gemini::GeminiProvider;
use imagegate_gemini::batch::{BatchOptions, BatchOutput, BatchRequest, BatchState};
use serde_json::{Value, json};

const KEY: &str = "emulator-batch-key";

fn pool(extra: &str) -> String {
    config(&format!(
        "[[upstream.pool]]\nprovider = \"gemini\"\nproject = \"proj-a\"\nmodels = [\"{GEMINI_MODEL}\"]\nrpm = 10\n{extra}\n"
    ))
}

fn gemini(run: &Running) -> GeminiProvider {
    GeminiProvider::new(ApiKey::new(KEY))
        .with_base_url(&run.url)
        .unwrap()
        .with_clock(run.clock.clone() as Arc<ManualClock>)
}

fn by_file(provider: GeminiProvider) -> GeminiProvider {
    provider.with_batch_options(BatchOptions {
        inline_max_result_bytes: 0,
        upload_chunk_bytes: 256 * 1024,
        ..BatchOptions::default()
    })
}

fn requests(keys: &[&str]) -> Vec<BatchRequest> {
    keys.iter()
        .map(|k| {
            BatchRequest::new(
                *k,
                GenerateRequest::new(format!("a lighthouse number {k}"))
                    .with_aspect_ratio("1:1".parse().unwrap()),
            )
        })
        .collect()
}

async fn stats(run: &Running) -> Value {
    reqwest::get(format!("{}/emulator/stats", run.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_inline_job_pends_runs_and_succeeds_with_an_image_per_key() {
    let run = start(&pool("batch_turnaround = \"2m..10m\"")).await;
    let g = gemini(&run);
    let job = g
        .batch_create(GEMINI_MODEL, "run-1", &requests(&["a", "b"]))
        .await
        .unwrap();
    assert_eq!(job.state, BatchState::Pending);
    assert_eq!(job.display_name, "run-1");
    assert_eq!(job.stats.requests, 2);
    assert!(job.name.starts_with("batches/"));
    // The interactive pool is untouched: batch quota is its own.
    let s = stats(&run).await;
    assert_eq!(s["pools"][0]["counters"]["requests"], 0);
    assert_eq!(s["batch"]["jobs_created"], 1);
    assert_eq!(s["batch"]["requests_submitted"], 2);

    run.clock.advance(Duration::from_secs(60));
    let polled = g.batch_get(&job.name).await.unwrap();
    assert!(!polled.is_finished(), "{:?}", polled.state);
    run.clock.advance(Duration::from_secs(600));
    let done = g.batch_get(&job.name).await.unwrap();
    assert_eq!(done.state, BatchState::Succeeded);
    assert!(done.done);
    assert_eq!(done.stats.succeeded, 2);
    let end = done.end_time.unwrap();
    let took = imagegate_core::clock::span(done.create_time.unwrap(), end);
    assert!(
        (Duration::from_secs(120)..=Duration::from_secs(600)).contains(&took),
        "{took:?}"
    );
    assert!(matches!(done.output, Some(BatchOutput::Inline(_))));
    let results = g.batch_results(&done).await.unwrap();
    let keys: Vec<_> = results.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["a", "b"]);
    for r in &results {
        let response = r.outcome.as_ref().unwrap();
        assert_eq!(response.images.len(), 1);
        assert_eq!(common::png_size(&response.images[0].bytes), (1024, 1024));
    }
    run.stop().await;
}

#[tokio::test]
async fn turnarounds_are_seeded() {
    let mut ends = Vec::new();
    for _ in 0..2 {
        let run = start(&pool("batch_turnaround = \"2m..10m\"")).await;
        let g = gemini(&run);
        let mut took = Vec::new();
        for i in 0..3 {
            let job = g
                .batch_create(GEMINI_MODEL, &format!("j{i}"), &requests(&["k"]))
                .await
                .unwrap();
            took.push(job.name);
        }
        run.clock.advance(Duration::from_secs(3600));
        let mut spans = Vec::new();
        for name in &took {
            let job = g.batch_get(name).await.unwrap();
            spans.push(imagegate_core::clock::span(
                job.create_time.unwrap(),
                job.end_time.unwrap(),
            ));
        }
        ends.push((took, spans));
        run.stop().await;
    }
    assert_eq!(
        ends[0], ends[1],
        "the same seed, the same jobs and turnarounds"
    );
    assert!(
        ends[0].1.iter().any(|s| *s != ends[0].1[0]),
        "{:?}",
        ends[0].1
    );
}

#[tokio::test]
async fn a_file_job_is_uploaded_and_its_results_downloaded() {
    let run = start(&pool("batch_turnaround = \"0s\"")).await;
    let g = by_file(gemini(&run));
    let keys: Vec<String> = (0..40).map(|i| format!("file-{i:03}")).collect();
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let job = g
        .batch_create(GEMINI_MODEL, "file-run", &requests(&key_refs))
        .await
        .unwrap();
    assert_eq!(job.state, BatchState::Pending);
    let done = g.batch_get(&job.name).await.unwrap();
    assert_eq!(done.state, BatchState::Succeeded);
    let Some(BatchOutput::ResponsesFile(file)) = &done.output else {
        panic!(
            "a file job answers with a responses file: {:?}",
            done.output
        )
    };
    assert!(file.starts_with("files/"));
    let results = g.batch_results(&done).await.unwrap();
    assert_eq!(results.len(), 40);
    assert!(results.iter().all(|r| r.outcome.is_ok()));
    assert_eq!(results[39].key, "file-039");
    let s = stats(&run).await;
    assert_eq!(s["batch"]["files_uploaded"], 1);
    assert_eq!(s["batch"]["files_downloaded"], 1);
    run.stop().await;
}

#[tokio::test]
async fn the_batch_quota_refuses_a_job_with_a_429_until_a_job_ends() {
    // Each request counts about 1,300 tokens (its image's output tokens): room for one job
    // of two, not for two.
    let run = start(&pool(
        "batch_turnaround = \"10m\"\nbatch_enqueued_tokens = 3000",
    ))
    .await;
    let g = gemini(&run);
    g.batch_create(GEMINI_MODEL, "first", &requests(&["a", "b"]))
        .await
        .unwrap();
    let e = g
        .batch_create(GEMINI_MODEL, "second", &requests(&["c", "d"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.http_status(), Some(429));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(600)));
    assert_eq!(
        e.quota().dimension,
        None,
        "no interactive dimension is blamed"
    );
    let s = stats(&run).await;
    assert_eq!(s["batch"]["creates_refused"], 1);
    assert_eq!(s["batch"]["jobs_created"], 1);
    run.clock.advance(Duration::from_secs(600));
    g.batch_create(GEMINI_MODEL, "second", &requests(&["c", "d"]))
        .await
        .unwrap();
    // A job that could never fit is refused as a bad request, not a wait.
    let e = g
        .batch_create(GEMINI_MODEL, "huge", &requests(&["e", "f", "g"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert!(e.message().contains("split it"), "{}", e.message());
    run.stop().await;
}

#[tokio::test]
async fn a_second_submission_of_a_live_key_is_counted_and_a_retry_of_lost_work_is_not() {
    let run = start(&pool("batch_turnaround = \"10m\"")).await;
    let g = gemini(&run);
    let first = g
        .batch_create(GEMINI_MODEL, "one", &requests(&["a", "b"]))
        .await
        .unwrap();
    g.batch_create(GEMINI_MODEL, "two", &requests(&["b", "c"]))
        .await
        .unwrap();
    let s = stats(&run).await;
    assert_eq!(s["batch"]["duplicate_submissions"], 1);
    assert_eq!(s["batch"]["duplicate_keys"], json!(["b"]));
    // Cancelled before it ran: submitting its keys again is a retry, not a duplicate.
    g.batch_cancel(&first.name).await.unwrap();
    assert_eq!(
        g.batch_get(&first.name).await.unwrap().state,
        BatchState::Cancelled
    );
    g.batch_create(GEMINI_MODEL, "three", &requests(&["a"]))
        .await
        .unwrap();
    let s = stats(&run).await;
    assert_eq!(s["batch"]["duplicate_submissions"], 1);
    assert_eq!(s["batch"]["resubmissions"], 1);
    assert_eq!(s["batch"]["requests_submitted"], 5);
    assert_eq!(s["batch"]["jobs_cancelled"], 1);
    // A reset zeroes the counters (jobs stay).
    run.emulator.reset();
    let s = stats(&run).await;
    assert_eq!(s["batch"]["jobs_created"], 0);
    assert_eq!(g.batch_list().await.unwrap().len(), 3);
    run.stop().await;
}

#[tokio::test]
async fn a_job_longer_than_48_hours_expires_without_results() {
    let run = start(&pool("batch_turnaround = \"50h\"")).await;
    let g = gemini(&run);
    let job = g
        .batch_create(GEMINI_MODEL, "slow", &requests(&["a"]))
        .await
        .unwrap();
    run.clock.advance(Duration::from_secs(47 * 3600));
    assert_eq!(
        g.batch_get(&job.name).await.unwrap().state,
        BatchState::Running
    );
    run.clock.advance(Duration::from_secs(3600));
    let expired = g.batch_get(&job.name).await.unwrap();
    assert_eq!(expired.state, BatchState::Expired);
    assert!(expired.output.is_none());
    assert!(g.batch_results(&expired).await.unwrap().is_empty());
    run.stop().await;
}

#[tokio::test]
async fn list_pages_newest_first_and_delete_makes_a_job_gone() {
    let run = start(&pool("batch_turnaround = \"0s\"")).await;
    let g = gemini(&run).with_batch_options(BatchOptions {
        list_page_size: 2,
        ..BatchOptions::default()
    });
    for name in ["j1", "j2", "j3"] {
        g.batch_create(GEMINI_MODEL, name, &requests(&["k"]))
            .await
            .unwrap();
    }
    let jobs = g.batch_list().await.unwrap();
    let names: Vec<_> = jobs.iter().map(|j| j.display_name.as_str()).collect();
    assert_eq!(names, ["j3", "j2", "j1"]);
    assert!(jobs.iter().all(|j| j.state == BatchState::Succeeded));
    g.batch_delete(&jobs[0].name).await.unwrap();
    let e = g.batch_get(&jobs[0].name).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert_eq!(e.http_status(), Some(404));
    assert_eq!(g.batch_list().await.unwrap().len(), 2);
    run.stop().await;
}

#[tokio::test]
async fn requests_inside_a_job_get_the_errors_an_interactive_call_would() {
    // A pool with no entitlement: each request is answered with the limit-0 429.
    let run = start(&pool("rpd = 0\nbatch_turnaround = \"0s\"")).await;
    let g = gemini(&run);
    let job = g
        .batch_create(GEMINI_MODEL, "free", &requests(&["a", "b"]))
        .await
        .unwrap();
    let done = g.batch_get(&job.name).await.unwrap();
    assert_eq!(done.stats.failed, 2);
    for r in g.batch_results(&done).await.unwrap() {
        let e = r.outcome.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BillingRequired, "{e}");
    }
    run.stop().await;

    // Overload, seeded: some requests of a job get 503 UNAVAILABLE.
    let run = start(&format!(
        "seed = 5\n[upstream]\nlatency = \"0s\"\nreject_latency = \"0s\"\noverload_rate = 0.5\n[[upstream.pool]]\nprovider = \"gemini\"\nproject = \"p\"\nmodels = [\"{GEMINI_MODEL}\"]\nbatch_turnaround = \"0s\"\n"
    ))
    .await;
    let g = gemini(&run);
    let keys: Vec<String> = (0..12).map(|i| format!("k{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let job = g
        .batch_create(GEMINI_MODEL, "busy", &requests(&refs))
        .await
        .unwrap();
    let done = g.batch_get(&job.name).await.unwrap();
    let results = g.batch_results(&done).await.unwrap();
    let failed: Vec<_> = results
        .iter()
        .filter_map(|r| r.outcome.as_ref().err())
        .collect();
    assert!(!failed.is_empty() && failed.len() < 12, "{}", failed.len());
    assert!(failed.iter().all(|e| e.kind() == ErrorKind::Unavailable));
    assert_eq!(done.stats.failed, failed.len() as u64);
    run.stop().await;
}

#[tokio::test]
async fn a_pool_without_a_batch_api_refuses_jobs() {
    let run = start(&pool("")).await;
    let e = gemini(&run)
        .batch_create(GEMINI_MODEL, "x", &requests(&["a"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("batch_turnaround"), "{}", e.message());
    run.stop().await;
}

#[tokio::test]
async fn a_create_held_after_its_work_has_made_the_job_the_client_never_heard_of() {
    let run = start(&pool("batch_turnaround = \"10m\"")).await;
    run.emulator
        .hold_batch(BatchEndpoint::Create, HoldPhase::After);
    let g = gemini(&run);
    let client = tokio::spawn({
        let g = g.clone();
        async move {
            g.batch_create(GEMINI_MODEL, "held-1", &requests(&["a"]))
                .await
        }
    });
    run.emulator.batch_waiting(BatchEndpoint::Create).await;
    // The job exists; the client is killed before it hears so.
    assert_eq!(stats(&run).await["batch"]["jobs_created"], 1);
    client.abort();
    assert!(client.await.unwrap_err().is_cancelled());
    run.emulator.release_batch(None);
    // A client starting again finds it by its display name.
    let jobs = g.batch_list().await.unwrap();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].display_name, "held-1");
    let found = g.batch_find("held-1").await.unwrap().unwrap();
    assert_eq!(found.name, jobs[0].name);
    assert!(g.batch_find("never-made").await.unwrap().is_none());
    run.stop().await;
}

#[tokio::test]
async fn holds_are_driven_over_http_too() {
    let run = start(&pool("batch_turnaround = \"0s\"")).await;
    let http = reqwest::Client::new();
    let g = gemini(&run);
    let job = g
        .batch_create(GEMINI_MODEL, "h", &requests(&["a"]))
        .await
        .unwrap();
    let held: Value = http
        .post(format!("{}/emulator/batch/hold", run.url))
        .json(&json!({"endpoint": "get", "phase": "before"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        held["holds"],
        json!([{"endpoint": "get", "phase": "before"}])
    );
    let poll = tokio::spawn({
        let g = g.clone();
        let name = job.name.clone();
        async move { g.batch_get(&name).await }
    });
    let waiting: Value = http
        .get(format!("{}/emulator/batch/hold?until_waiting=get", run.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(waiting["waiting"]["get"], 1);
    let released = http
        .post(format!("{}/emulator/batch/release", run.url))
        .json(&json!({"endpoint": "get"}))
        .send()
        .await
        .unwrap();
    assert_eq!(released.status(), 200);
    assert_eq!(poll.await.unwrap().unwrap().state, BatchState::Succeeded);
    let bad = http
        .post(format!("{}/emulator/batch/hold", run.url))
        .json(&json!({"endpoint": "nowhere"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    run.stop().await;
}

#[tokio::test]
async fn batch_calls_need_a_key_of_the_project() {
    let run = start(&pool(&format!(
        "batch_turnaround = \"0s\"\n[[upstream.key]]\nprovider = \"gemini\"\nproject = \"proj-a\"\nkey = \"{KEY}\""
    )))
    .await;
    let job = gemini(&run)
        .batch_create(GEMINI_MODEL, "k", &requests(&["a"]))
        .await
        .unwrap();
    let stranger = GeminiProvider::new(ApiKey::new("someone-else"))
        .with_base_url(&run.url)
        .unwrap();
    let e = stranger.batch_get(&job.name).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    run.stop().await;
}

#[test]
fn batch_settings_are_checked_with_the_key_named() {
    let parse = |extra: &str| EmulatorConfig::parse(std::path::Path::new("b.toml"), &pool(extra));
    let c = parse("batch_turnaround = \"2m..10m\"\nbatch_enqueued_tokens = 5000").unwrap();
    let b = c.pools[0].batch.unwrap();
    assert_eq!(b.turnaround.min, Duration::from_secs(120));
    assert_eq!(b.turnaround.max, Duration::from_secs(600));
    assert_eq!(b.enqueued_tokens, Some(5000));
    assert!(parse("").unwrap().pools[0].batch.is_none());
    let e = parse("batch_enqueued_tokens = 5").unwrap_err();
    assert_eq!(e.key, "upstream.pool[0].batch_enqueued_tokens");
    let e = parse("batch_turnaround = \"soon\"").unwrap_err();
    assert_eq!(e.key, "upstream.pool[0].batch_turnaround");
    let e = parse("batch_turnaround = \"1m\"\nbatch_enqueued_tokens = 0").unwrap_err();
    assert!(e.expected.contains("at least 1"), "{e}");
    let e = EmulatorConfig::parse(
        std::path::Path::new("b.toml"),
        &config("[[upstream.pool]]\nprovider = \"openrouter\"\nproject = \"x\"\nmodels = [\"m\"]\nbatch_turnaround = \"1m\"\n"),
    )
    .unwrap_err();
    assert!(e.expected.contains("gemini"), "{e}");
}

#[tokio::test]
async fn retrying_a_key_its_job_answered_with_an_error_is_not_a_duplicate() {
    let run = start(&pool("rpd = 0\nbatch_turnaround = \"0s\"")).await;
    let g = gemini(&run);
    let job = g
        .batch_create(GEMINI_MODEL, "first", &requests(&["a", "b"]))
        .await
        .unwrap();
    // Succeeded, but unread: nobody knows yet that its requests failed.
    g.batch_create(GEMINI_MODEL, "early", &requests(&["a"]))
        .await
        .unwrap();
    let s = stats(&run).await;
    assert_eq!(s["batch"]["duplicate_submissions"], 1);
    // Read: every request was answered with an error, so retrying "b" pays nothing twice.
    let done = g.batch_get(&job.name).await.unwrap();
    assert_eq!(done.stats.failed, 2);
    g.batch_create(GEMINI_MODEL, "retry", &requests(&["b"]))
        .await
        .unwrap();
    let s = stats(&run).await;
    assert_eq!(s["batch"]["duplicate_submissions"], 1);
    assert_eq!(s["batch"]["resubmissions"], 1);
    run.stop().await;
}

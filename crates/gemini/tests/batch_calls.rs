//! The Batch API calls against a wiremock server per test: what each sends (method, path,
//! headers, body; the key only in its header) and what it makes of each answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use imagegate_core::{ApiKey, ErrorKind, GenerateRequest, ManualClock};
use imagegate_gemini::GeminiProvider;
use imagegate_gemini::batch::{BatchOptions, BatchOutput, BatchRequest, BatchState};
use imagegate_testkit::Fixture;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "batch-test-credential-5d2e";

fn fixture(name: &str) -> Fixture {
    Fixture::by_id(&format!("gemini/batch/{name}")).unwrap()
}

fn answer(f: &Fixture) -> ResponseTemplate {
    ResponseTemplate::new(f.response.status)
        .insert_header("content-type", "application/json; charset=UTF-8")
        .set_body_bytes(f.body())
}

fn provider(server: &MockServer) -> GeminiProvider {
    GeminiProvider::new(ApiKey::new(KEY))
        .with_base_url(&server.uri())
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(
            "2026-01-15T12:00:00Z".parse().unwrap(),
        )))
}

fn requests(n: usize, prompt: &str) -> Vec<BatchRequest> {
    (0..n)
        .map(|i| BatchRequest::new(format!("k-{i:04}"), GenerateRequest::new(prompt)))
        .collect()
}

/// The upload command header, compared whole (wiremock's `header` matcher splits on commas).
fn command(expected: &'static str) -> impl Fn(&Request) -> bool + Send + Sync + 'static {
    move |r: &Request| {
        r.headers
            .get("x-goog-upload-command")
            .is_some_and(|v| v.as_bytes() == expected.as_bytes())
    }
}

/// Every request the server saw carried the key in its header and nowhere in its URL.
async fn key_only_in_headers(server: &MockServer) {
    let seen = server.received_requests().await.unwrap();
    assert!(!seen.is_empty());
    for r in seen {
        assert!(!r.url.as_str().contains(KEY), "{}", r.url);
        assert_eq!(
            r.headers.get("x-goog-api-key").map(|v| v.to_str().unwrap()),
            Some(KEY),
            "{}",
            r.url
        );
    }
}

#[tokio::test]
async fn a_small_job_is_created_inline() {
    let server = MockServer::start().await;
    let f = fixture("create-inline");
    Mock::given(method("POST"))
        .and(path(
            "/v1beta/models/gemini-2.5-flash-image:batchGenerateContent",
        ))
        .and(header("content-type", "application/json"))
        .and(body_partial_json(
            json!({"batch": {"display_name": "job-0001"}}),
        ))
        .respond_with(answer(&f))
        .expect(1)
        .mount(&server)
        .await;
    let job = provider(&server)
        .batch_create("gemini-2.5-flash-image", "job-0001", &requests(2, "a fox"))
        .await
        .unwrap();
    assert_eq!(job.state, BatchState::Pending);
    assert_eq!(job.name, "batches/4m855v7q30kc7gtzcigdg9m72o87s08w33vp");
    let sent: Value = server.received_requests().await.unwrap()[0]
        .body_json()
        .unwrap();
    let items = sent
        .pointer("/batch/input_config/requests/requests")
        .unwrap()
        .as_array()
        .unwrap();
    let keys: Vec<_> = items.iter().map(|i| i["metadata"]["key"].clone()).collect();
    assert_eq!(keys, [json!("k-0000"), json!("k-0001")]);
    assert_eq!(
        items[0].pointer("/request/generationConfig/responseModalities"),
        Some(&json!(["TEXT", "IMAGE"]))
    );
    key_only_in_headers(&server).await;
}

/// The resumable upload: start (answering the upload URL), chunks at increasing offsets, the
/// last one finalizing; then create names the uploaded file.
#[tokio::test]
async fn a_large_job_is_uploaded_in_chunks_and_created_from_the_file() {
    let server = MockServer::start().await;
    let upload_url = format!("{}/upload/v1beta/files?upload_id=up-1", server.uri());
    Mock::given(method("POST"))
        .and(path("/upload/v1beta/files"))
        .and(header("x-goog-upload-protocol", "resumable"))
        .and(header("x-goog-upload-command", "start"))
        .and(header(
            "x-goog-upload-header-content-type",
            "application/jsonl",
        ))
        .respond_with(
            ResponseTemplate::new(200).insert_header("x-goog-upload-url", upload_url.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/upload/v1beta/files"))
        .and(query_param("upload_id", "up-1"))
        .and(command("upload"))
        .respond_with(ResponseTemplate::new(200).insert_header("x-goog-upload-status", "active"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/upload/v1beta/files"))
        .and(query_param("upload_id", "up-1"))
        .and(command("upload, finalize"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"file": {"name": "files/uploaded-1", "mimeType": "application/jsonl"}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(
            "/v1beta/models/gemini-2.5-flash-image:batchGenerateContent",
        ))
        .and(body_partial_json(
            json!({"batch": {"display_name": "job-big",
            "input_config": {"file_name": "files/uploaded-1"}}}),
        ))
        .respond_with(answer(&fixture("get-pending")))
        .expect(1)
        .mount(&server)
        .await;

    // 300 requests of a long prompt: about 330 KB of JSONL, two 256 KiB chunks.
    let prompt = "a lighthouse at dawn, ".repeat(45);
    let gemini = provider(&server).with_batch_options(BatchOptions {
        upload_chunk_bytes: 256 * 1024,
        ..BatchOptions::default()
    });
    let job = gemini
        .batch_create("gemini-2.5-flash-image", "job-big", &requests(300, &prompt))
        .await;
    let job = job.unwrap();
    assert_eq!(job.state, BatchState::Pending);

    let seen = server.received_requests().await.unwrap();
    let start: &Request = &seen[0];
    let total: usize = start.headers["x-goog-upload-header-content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let chunks: Vec<&Request> = seen
        .iter()
        .filter(|r| r.url.query().is_some_and(|q| q.contains("upload_id")))
        .collect();
    assert_eq!(chunks.len(), 2, "two chunks");
    let mut file = Vec::new();
    for chunk in &chunks {
        let offset: usize = chunk.headers["x-goog-upload-offset"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(offset, file.len(), "chunks at increasing offsets, no gap");
        file.extend_from_slice(&chunk.body);
    }
    assert_eq!(chunks[0].body.len(), 256 * 1024);
    assert_eq!(file.len(), total);
    let text = String::from_utf8(file).unwrap();
    assert_eq!(text.lines().count(), 300);
    let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["key"], "k-0000");
    assert!(first["request"]["contents"].is_array());
    key_only_in_headers(&server).await;
}

#[tokio::test]
async fn an_upload_url_on_another_origin_gets_no_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/upload/v1beta/files"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-goog-upload-url", "https://elsewhere.invalid/upload?id=1"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let gemini = provider(&server).with_batch_options(BatchOptions {
        inline_max_result_bytes: 0,
        ..BatchOptions::default()
    });
    let e = gemini
        .batch_create("gemini-2.5-flash-image", "job", &requests(1, "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unexpected);
    assert!(e.message().contains("elsewhere.invalid"), "{}", e.message());
    assert!(!format!("{e} {e:?}").contains(KEY));
}

#[tokio::test]
async fn create_answered_429_is_classified_like_any_429_and_makes_no_job() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/v1beta/models/gemini-2.5-flash-image:batchGenerateContent",
        ))
        .respond_with(answer(&fixture("create-429")))
        .expect(1)
        .mount(&server)
        .await;
    let e = provider(&server)
        .with_project("proj-b")
        .batch_create("gemini-2.5-flash-image", "job", &requests(1, "x"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(30)));
    assert_eq!(e.http_status(), Some(429));
    assert_eq!(e.project(), Some("proj-b"));
    assert!(!format!("{e} {e:?}").contains(KEY));
}

#[tokio::test]
async fn bad_jobs_are_refused_before_anything_is_sent() {
    let server = MockServer::start().await;
    let gemini = provider(&server);
    let dup = [
        BatchRequest::new("a", GenerateRequest::new("x")),
        BatchRequest::new("a", GenerateRequest::new("y")),
    ];
    for (model, reqs) in [
        ("gemini-2.5-flash-image", &dup[..]),
        ("imagen-4.0-generate-001", &requests(1, "x")[..]),
        ("gemini-2.5-flash-image", &[][..]),
    ] {
        let e = gemini.batch_create(model, "job", reqs).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{model}: {e}");
    }
    // More images than the model returns per call: the same check as interactive calls.
    let four = [BatchRequest::new(
        "k",
        GenerateRequest::new("x").with_count(4),
    )];
    let e = gemini
        .batch_create("gemini-2.5-flash-image", "job", &four)
        .await
        .unwrap_err();
    assert!(e.message().contains("batch request `k`"), "{}", e.message());
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn get_polls_a_job_by_name_or_id() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1beta/batches/4m855v7q30kc7gtzcigdg9m72o87s08w33vp"))
        .respond_with(answer(&fixture("get-running")))
        .expect(2)
        .mount(&server)
        .await;
    let gemini = provider(&server);
    for name in [
        "batches/4m855v7q30kc7gtzcigdg9m72o87s08w33vp",
        "4m855v7q30kc7gtzcigdg9m72o87s08w33vp",
    ] {
        let job = gemini.batch_get(name).await.unwrap();
        assert_eq!(job.state, BatchState::Running);
        assert!(!job.is_finished());
    }
    key_only_in_headers(&server).await;
    // A name that would leave its path is refused unsent.
    let e = gemini.batch_get("batches/../models").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn a_job_that_is_gone_is_named_not_a_missing_model() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {
            "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}})))
        .mount(&server)
        .await;
    let gemini = provider(&server);
    let e = gemini.batch_get("batches/gone1").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert_eq!(e.http_status(), Some(404));
    assert!(e.message().contains("batches/gone1"), "{}", e.message());
    let e = gemini.download_file("files/gone2").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("files/gone2"), "{}", e.message());
}

#[tokio::test]
async fn list_follows_every_page() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1beta/batches"))
        .and(query_param("pageToken", "page-2-token"))
        .respond_with(answer(&fixture("list-last-page")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1beta/batches"))
        .and(query_param("pageSize", "100"))
        .respond_with(answer(&fixture("list-page")))
        .expect(1)
        .mount(&server)
        .await;
    let jobs = provider(&server).batch_list().await.unwrap();
    let names: Vec<_> = jobs.iter().map(|j| j.display_name.as_str()).collect();
    assert_eq!(
        names,
        [
            "test-batch-job",
            "imagegate-demo-0005",
            "imagegate-demo-0004"
        ]
    );
    key_only_in_headers(&server).await;
}

#[tokio::test]
async fn a_list_that_repeats_its_token_stops() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1beta/batches"))
        .respond_with(answer(&fixture("list-page")))
        .mount(&server)
        .await;
    let e = provider(&server).batch_list().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn cancel_and_delete() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1beta/batches/job7:cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v1beta/batches/job7"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    let gemini = provider(&server);
    gemini.batch_cancel("batches/job7").await.unwrap();
    gemini.batch_delete("batches/job7").await.unwrap();
    key_only_in_headers(&server).await;
}

#[tokio::test]
async fn results_come_from_the_operation_or_the_responses_file() {
    let server = MockServer::start().await;
    let gemini = provider(&server);
    // Inline: nothing more is fetched.
    let inline = imagegate_gemini::batch::parse_operation(
        &fixture("get-succeeded-per-request-errors").body(),
    )
    .unwrap();
    let results = gemini.batch_results(&inline).await.unwrap();
    assert_eq!(results.len(), 4);
    assert!(server.received_requests().await.unwrap().is_empty());

    // File: downloaded from /download/v1beta/files/{id}:download?alt=media.
    Mock::given(method("GET"))
        .and(path("/download/v1beta/files/batch-results-demo:download"))
        .and(query_param("alt", "media"))
        .respond_with(
            ResponseTemplate::new(200).set_body_bytes(fixture("download-results-file").body()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let file_job =
        imagegate_gemini::batch::parse_operation(&fixture("get-succeeded-responses-file").body())
            .unwrap();
    assert!(matches!(
        file_job.output,
        Some(BatchOutput::ResponsesFile(_))
    ));
    let results = gemini.batch_results(&file_job).await.unwrap();
    let keys: Vec<_> = results.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["request-1", "request-2"]);
    assert_eq!(results[0].outcome.as_ref().unwrap().images.len(), 1);
    assert_eq!(
        results[1].outcome.as_ref().unwrap_err().kind(),
        ErrorKind::RateLimited
    );
    key_only_in_headers(&server).await;
}

#[tokio::test]
async fn results_of_unfinished_and_empty_jobs() {
    let server = MockServer::start().await;
    let gemini = provider(&server);
    let running = imagegate_gemini::batch::parse_operation(&fixture("get-running").body()).unwrap();
    let e = gemini.batch_results(&running).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(
        e.message().contains("BATCH_STATE_RUNNING"),
        "{}",
        e.message()
    );
    for name in ["get-expired", "get-failed"] {
        let job = imagegate_gemini::batch::parse_operation(&fixture(name).body()).unwrap();
        assert!(
            gemini.batch_results(&job).await.unwrap().is_empty(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_responses_file_over_its_bound_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 5000]))
        .mount(&server)
        .await;
    let gemini = provider(&server).with_batch_options(BatchOptions {
        download_max_bytes: 1000,
        ..BatchOptions::default()
    });
    let e = gemini.download_file("files/big").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
}

#[tokio::test]
async fn a_responses_file_is_streamed_line_by_line() {
    let server = MockServer::start().await;
    // Three lines, the last without its newline, one of them not JSON.
    let line = |key: &str| {
        json!({"key": key, "response": {"candidates": [{"content": {"parts": [
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg=="}}]},
            "finishReason": "STOP"}]}})
        .to_string()
    };
    let body = format!("{}\n{{not json\n{}", line("s-1"), line("s-2"));
    Mock::given(method("GET"))
        .and(path("/download/v1beta/files/streamed:download"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(body.into_bytes()))
        .expect(1)
        .mount(&server)
        .await;
    let mut job =
        imagegate_gemini::batch::parse_operation(&fixture("get-succeeded-responses-file").body())
            .unwrap();
    job.output = Some(BatchOutput::ResponsesFile("files/streamed".into()));
    let mut keys = Vec::new();
    let handed = provider(&server)
        .batch_results_each(&job, |r| {
            assert!(r.outcome.is_ok());
            keys.push(r.key);
        })
        .await
        .unwrap();
    assert_eq!(handed, 2);
    assert_eq!(keys, ["s-1", "s-2"]);
    key_only_in_headers(&server).await;
}

#[tokio::test]
async fn a_responses_file_that_is_gone_is_named() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": {
            "code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}})))
        .mount(&server)
        .await;
    let job =
        imagegate_gemini::batch::parse_operation(&fixture("get-succeeded-responses-file").body())
            .unwrap();
    let e = provider(&server).batch_results(&job).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(
        e.message().contains("files/batch-results-demo"),
        "{}",
        e.message()
    );
}

/// Every call's future is `Send`, so a multi-threaded runtime (the CLI's) can spawn it.
#[test]
fn every_call_is_send() {
    fn send<T: Send>(_: T) {}
    let gemini = GeminiProvider::new(ApiKey::new(KEY));
    let job = imagegate_gemini::batch::parse_operation(&fixture("get-pending").body()).unwrap();
    let reqs = requests(1, "x");
    send(gemini.batch_create("gemini-2.5-flash-image", "n", &reqs));
    send(gemini.batch_get("batches/x"));
    send(gemini.batch_list());
    send(gemini.batch_find("n"));
    send(gemini.batch_cancel("batches/x"));
    send(gemini.batch_delete("batches/x"));
    send(gemini.batch_results(&job));
    send(gemini.batch_results_each(&job, |_| {}));
    send(gemini.upload_file("n", "application/jsonl", Vec::new()));
    send(gemini.download_file("files/x"));
}

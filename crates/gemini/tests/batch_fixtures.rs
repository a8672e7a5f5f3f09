//! Every `fixtures/gemini/batch` exchange through the batch parsers, checked against a table of
//! what each must become (state, counts, output, every key's outcome), and snapshots of the
//! create bodies we send.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests: a failed unwrap is a failed test

use imagegate_core::{ErrorKind, GenerateRequest, ImageSize};
use imagegate_gemini::batch::{
    self, BatchInput, BatchJob, BatchOptions, BatchOutput, BatchRequest, BatchResult, BatchState,
    BatchStats,
};
use imagegate_testkit::{Fixture, Origin};

fn fixture(name: &str) -> Fixture {
    Fixture::by_id(&format!("gemini/batch/{name}")).unwrap_or_else(|e| panic!("{e}"))
}

fn job(name: &str) -> BatchJob {
    batch::parse_operation(&fixture(name).body()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A result's outcome in one word: `image` or the error kind.
fn outcome(r: &BatchResult) -> String {
    match &r.outcome {
        Ok(response) => format!("image x{}", response.images.len()),
        Err(e) => e.kind().to_string(),
    }
}

fn outcomes(results: &[BatchResult]) -> Vec<(String, String)> {
    results
        .iter()
        .map(|r| (r.key.clone(), outcome(r)))
        .collect()
}

fn now() -> jiff::Timestamp {
    "2026-01-15T12:00:00Z".parse().unwrap()
}

fn stats(requests: u64, pending: u64, succeeded: u64, failed: u64) -> BatchStats {
    BatchStats {
        requests,
        pending,
        succeeded,
        failed,
    }
}

#[test]
fn operations_parse_to_their_state_counts_and_output() {
    // (fixture, name, display name, state, done, stats, output)
    #[allow(clippy::type_complexity)]
    let table: [(&str, &str, &str, BatchState, bool, BatchStats, Option<&str>); 8] = [
        (
            "create-inline",
            "batches/4m855v7q30kc7gtzcigdg9m72o87s08w33vp",
            "test-batch-job",
            BatchState::Pending,
            false,
            stats(3, 3, 0, 0),
            None,
        ),
        (
            "get-pending",
            "batches/4m855v7q30kc7gtzcigdg9m72o87s08w33vp",
            "test-batch-job",
            BatchState::Pending,
            false,
            stats(3, 3, 0, 0),
            None,
        ),
        (
            "get-running",
            "batches/4m855v7q30kc7gtzcigdg9m72o87s08w33vp",
            "test-batch-job",
            BatchState::Running,
            false,
            stats(3, 3, 0, 0),
            None,
        ),
        (
            "get-succeeded-inline",
            "batches/4m855v7q30kc7gtzcigdg9m72o87s08w33vp",
            "test-batch-job",
            BatchState::Succeeded,
            true,
            stats(3, 0, 3, 0),
            Some("inline 3"),
        ),
        (
            "get-succeeded-per-request-errors",
            "batches/synthimagejob0001",
            "imagegate-demo-0001",
            BatchState::Succeeded,
            true,
            stats(4, 0, 2, 2),
            Some("inline 4"),
        ),
        (
            "get-succeeded-responses-file",
            "batches/synthfilejob0002",
            "imagegate-demo-0002",
            BatchState::Succeeded,
            true,
            stats(2, 0, 1, 1),
            Some("file files/batch-results-demo"),
        ),
        (
            "get-failed",
            "batches/synthfailed0003",
            "imagegate-demo-0003",
            BatchState::Failed,
            true,
            stats(3, 3, 0, 0),
            None,
        ),
        (
            "get-expired",
            "batches/synthexpired0004",
            "imagegate-demo-0004",
            BatchState::Expired,
            true,
            stats(5, 5, 0, 0),
            None,
        ),
    ];
    for (name, job_name, display, state, done, counts, output) in table {
        let job = job(name);
        assert_eq!(job.name, job_name, "{name}");
        assert_eq!(job.display_name, display, "{name}");
        assert_eq!(job.state, state, "{name}");
        assert_eq!(job.done, done, "{name}");
        assert_eq!(job.stats, counts, "{name}");
        assert!(job.is_finished() == done, "{name}");
        let got = job.output.as_ref().map(|o| match o {
            BatchOutput::Inline(items) => format!("inline {}", items.len()),
            BatchOutput::ResponsesFile(f) => format!("file {f}"),
        });
        assert_eq!(got.as_deref(), output, "{name}");
    }
}

#[test]
fn the_recorded_job_reports_its_model_and_times() {
    let job = job("get-succeeded-inline");
    assert_eq!(job.model, "models/gemini-2.5-flash");
    assert_eq!(job.model_id(), "gemini-2.5-flash");
    assert_eq!(job.id(), "4m855v7q30kc7gtzcigdg9m72o87s08w33vp");
    assert_eq!(
        job.create_time.unwrap().to_string(),
        "2025-12-10T18:27:01.407650525Z"
    );
    assert_eq!(
        job.end_time.unwrap().to_string(),
        "2025-12-10T18:28:31.548158795Z"
    );
    assert_eq!(job.stats.done(), 3);
}

#[test]
fn a_failed_job_says_why() {
    let failure = job("get-failed").failure.unwrap();
    assert_eq!(failure.code, Some(3));
    assert!(failure.message.contains("not valid JSONL"), "{failure:?}");
    assert!(job("get-expired").failure.is_none());
}

#[test]
fn inline_results_are_read_once_by_key_from_the_double_nesting() {
    // The recorded job answered text (a text model): for an image client each is no_image,
    // and each key appears once although the Operation carries every result twice.
    let recorded = job("get-succeeded-inline");
    let Some(BatchOutput::Inline(items)) = &recorded.output else {
        panic!("inline output expected")
    };
    let results = batch::inline_results(items, recorded.model_id(), now());
    assert_eq!(
        outcomes(&results),
        [
            ("req_1".into(), "no_image".into()),
            ("req_2".into(), "no_image".into()),
            ("req_3".into(), "no_image".into()),
        ]
    );

    let synth = job("get-succeeded-per-request-errors");
    let Some(BatchOutput::Inline(items)) = &synth.output else {
        panic!("inline output expected")
    };
    let results = batch::inline_results(items, synth.model_id(), now());
    assert_eq!(
        outcomes(&results),
        [
            ("p-0001".into(), "image x1".into()),
            ("p-0002".into(), "rate_limited".into()),
            ("p-0003".into(), "content_blocked".into()),
            ("p-0004".into(), "invalid_request".into()),
        ]
    );
    let image = results[0].outcome.as_ref().unwrap();
    assert_eq!(image.images[0].mime_type, "image/png");
    assert_eq!(image.served_by.model, "gemini-2.5-flash-image");
    assert_eq!(image.served_by.provider, "gemini");
    let limited = results[1].outcome.as_ref().unwrap_err();
    assert_eq!(limited.http_status(), Some(429));
    assert_eq!(limited.provider(), Some("gemini"));
}

#[test]
fn only_one_level_of_nesting_is_read_too() {
    let body = serde_json::json!({
        "name": "batches/x1", "done": true,
        "metadata": {"state": "JOB_STATE_SUCCEEDED", "model": "models/gemini-2.5-flash-image"},
        "response": {"inlinedResponses": [{"error": {"code": 503, "message": "overloaded"}, "metadata": {"key": "k"}}]}
    });
    let job = batch::operation_from_value(&body).unwrap();
    assert_eq!(job.state, BatchState::Succeeded);
    let Some(BatchOutput::Inline(items)) = &job.output else {
        panic!("inline output expected")
    };
    let results = batch::inline_results(items, job.model_id(), now());
    assert_eq!(outcomes(&results), [("k".into(), "unavailable".into())]);
}

#[test]
fn the_responses_file_is_read_line_by_line_by_key() {
    let f = fixture("download-results-file");
    let results = batch::parse_results_jsonl(&f.body(), "gemini-2.5-flash-image", now());
    assert_eq!(
        outcomes(&results),
        [
            ("request-1".into(), "image x1".into()),
            ("request-2".into(), "rate_limited".into()),
        ]
    );
}

#[test]
fn unreadable_lines_leave_their_requests_unfinished_and_keep_the_rest() {
    let f = fixture("download-results-file-error-lines");
    let results = batch::parse_results_jsonl(&f.body(), "gemini-2.5-flash-image", now());
    assert_eq!(
        outcomes(&results),
        [
            ("f-0001".into(), "image x1".into()),
            ("f-0002".into(), "quota_exhausted".into()),
            ("f-0005".into(), "no_image".into()),
        ]
    );
    // The per-day 429 inside the file is dated like an interactive one: next Pacific midnight.
    let per_day = results[1].outcome.as_ref().unwrap_err();
    assert_eq!(
        per_day.quota().reset_at.map(|t| t.to_string()).as_deref(),
        Some("2026-01-16T08:00:00Z")
    );
    assert_eq!(per_day.quota().quota_value, Some(2000));
}

#[test]
fn list_pages_carry_jobs_in_both_state_spellings_and_the_next_token() {
    let page = batch::parse_list(&fixture("list-page").body()).unwrap();
    let states: Vec<_> = page.jobs.iter().map(|j| j.state).collect();
    assert_eq!(states, [BatchState::Running, BatchState::Cancelled]);
    assert_eq!(page.next_page_token.as_deref(), Some("page-2-token"));
    let last = batch::parse_list(&fixture("list-last-page").body()).unwrap();
    assert_eq!(last.jobs.len(), 1);
    assert_eq!(last.jobs[0].state, BatchState::Expired);
    assert_eq!(last.next_page_token, None);
    // An empty list is an empty page, not an error.
    let empty = batch::parse_list(b"{}").unwrap();
    assert!(empty.jobs.is_empty() && empty.next_page_token.is_none());
}

#[test]
fn both_state_spellings_and_unknown_states() {
    for (text, state) in [
        ("BATCH_STATE_UNSPECIFIED", BatchState::Unspecified),
        ("BATCH_STATE_PENDING", BatchState::Pending),
        ("JOB_STATE_PENDING", BatchState::Pending),
        ("JOB_STATE_QUEUED", BatchState::Pending),
        ("BATCH_STATE_RUNNING", BatchState::Running),
        ("JOB_STATE_RUNNING", BatchState::Running),
        ("BATCH_STATE_SUCCEEDED", BatchState::Succeeded),
        ("JOB_STATE_SUCCEEDED", BatchState::Succeeded),
        ("BATCH_STATE_FAILED", BatchState::Failed),
        ("JOB_STATE_FAILED", BatchState::Failed),
        ("BATCH_STATE_CANCELLED", BatchState::Cancelled),
        ("JOB_STATE_CANCELLED", BatchState::Cancelled),
        ("JOB_STATE_CANCELLING", BatchState::Running),
        ("BATCH_STATE_EXPIRED", BatchState::Expired),
        ("JOB_STATE_EXPIRED", BatchState::Expired),
        ("BATCH_STATE_SOMETHING_NEW", BatchState::Unspecified),
        ("", BatchState::Unspecified),
    ] {
        assert_eq!(BatchState::parse(text), state, "{text}");
    }
    let terminal: Vec<_> = [
        BatchState::Unspecified,
        BatchState::Pending,
        BatchState::Running,
        BatchState::Succeeded,
        BatchState::Failed,
        BatchState::Cancelled,
        BatchState::Expired,
    ]
    .into_iter()
    .filter(|s| s.is_terminal())
    .collect();
    assert_eq!(
        terminal,
        [
            BatchState::Succeeded,
            BatchState::Failed,
            BatchState::Cancelled,
            BatchState::Expired
        ]
    );
    // The REST spelling round-trips.
    assert_eq!(
        BatchState::parse(BatchState::Expired.as_str()),
        BatchState::Expired
    );
}

#[test]
fn counts_arrive_as_strings_or_numbers() {
    let job = batch::operation_from_value(&serde_json::json!({
        "name": "batches/n1",
        "metadata": {"batchStats": {"requestCount": "10", "pendingRequestCount": 4,
                                    "successfulRequestCount": "5", "failedRequestCount": "1"}}
    }))
    .unwrap();
    assert_eq!(job.stats, stats(10, 4, 5, 1));
    assert_eq!(job.state, BatchState::Unspecified);
    assert!(!job.is_finished());
}

#[test]
fn answers_that_are_not_jobs_are_invalid_responses() {
    for body in [&b"<html>"[..], b"{}", b"{\"metadata\": {}}", b"[1,2]"] {
        let e = batch::parse_operation(body).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{body:?}");
        assert_eq!(e.provider(), Some("gemini"));
    }
    assert_eq!(
        batch::parse_list(b"not json").unwrap_err().kind(),
        ErrorKind::InvalidResponse
    );
}

#[test]
fn every_batch_fixture_names_its_origin_and_is_in_this_table() {
    let all: Vec<Fixture> = Fixture::load_dir("gemini/batch").unwrap();
    assert_eq!(
        all.len(),
        13,
        "a new batch fixture needs its row in these tests"
    );
    for f in &all {
        match f.origin {
            Origin::Recorded => assert!(
                f.source.contains("VERBATIM") || f.source.contains("RECONSTRUCTED"),
                "{}",
                f.id
            ),
            Origin::Synthesized => assert!(f.source.contains("ai.google.dev"), "{}", f.id),
        }
    }
}

fn image_request(key: &str, prompt: &str) -> BatchRequest {
    BatchRequest::new(
        key,
        GenerateRequest::new(prompt).with_aspect_ratio("1:1".parse().unwrap()),
    )
}

#[test]
fn the_inline_create_body_matches_the_guides_shape() {
    let requests = [
        image_request("request-1", "A big letter A surrounded by animals"),
        image_request("request-2", "A big letter B surrounded by animals"),
    ];
    let body = batch::inline_body("gemini-2.5-flash-image", "imagegate-demo-0001", &requests);
    // What the recorded create sends, key for key (the request bodies are ours, a superset).
    let sent = fixture("create-inline").request.unwrap().body_json.unwrap();
    let items = body
        .pointer("/batch/input_config/requests/requests")
        .unwrap();
    let guide = sent
        .pointer("/batch/input_config/requests/requests")
        .unwrap();
    assert_eq!(
        items.as_array().unwrap().len(),
        guide.as_array().unwrap().len()
    );
    for (ours, theirs) in items
        .as_array()
        .unwrap()
        .iter()
        .zip(guide.as_array().unwrap())
    {
        assert_eq!(ours["metadata"], theirs["metadata"]);
        assert_eq!(
            ours.pointer("/request/contents/0/parts/0/text"),
            theirs.pointer("/request/contents/0/parts/0/text")
        );
    }
    insta::assert_json_snapshot!("batch_create_inline", body);
}

#[test]
fn the_file_create_body_and_the_jsonl_input() {
    insta::assert_json_snapshot!(
        "batch_create_file",
        batch::file_body("imagegate-demo-0002", "files/abc-123")
    );
    let requests = [
        image_request("f-0001", "a red fox"),
        BatchRequest::new(
            "f-0002",
            GenerateRequest::new("a blue heron").with_size(ImageSize::TwoK),
        ),
    ];
    let jsonl = batch::jsonl_input("gemini-3-pro-image-preview", &requests);
    let text = String::from_utf8(jsonl).unwrap();
    assert!(text.ends_with('\n'));
    assert_eq!(text.lines().count(), 2);
    insta::assert_snapshot!("batch_input_jsonl", text);
}

#[test]
fn small_jobs_go_inline_and_large_ones_by_file() {
    let options = BatchOptions::default();
    let model = "gemini-3-pro-image-preview";
    let one_k = |n: usize| -> Vec<BatchRequest> {
        (0..n)
            .map(|i| image_request(&format!("k{i}"), "a lighthouse"))
            .collect()
    };
    // 1K images: ~3 MiB each, counted twice: two fit under 16 MiB, three do not.
    assert_eq!(
        batch::choose_input(model, &one_k(2), &options),
        BatchInput::Inline
    );
    assert_eq!(
        batch::choose_input(model, &one_k(3), &options),
        BatchInput::File
    );
    // A single 4K image is already too much for a poll.
    let four_k = [BatchRequest::new(
        "big",
        GenerateRequest::new("a lighthouse").with_size(ImageSize::FourK),
    )];
    assert_eq!(
        batch::choose_input(model, &four_k, &options),
        BatchInput::File
    );
    // A body over its bound goes by file whatever the result size.
    let tight = BatchOptions {
        inline_max_body_bytes: 200,
        ..options
    };
    assert_eq!(
        batch::choose_input(model, &one_k(1), &tight),
        BatchInput::File
    );
    assert_eq!(
        batch::expected_inline_result_bytes(&one_k(2)),
        2 * 2 * batch::expected_image_bytes(None)
    );
}

#[test]
fn requests_are_checked_before_anything_is_sent() {
    let ok = [image_request("a", "x"), image_request("b", "y")];
    batch::check_requests("gemini-2.5-flash-image", &ok).unwrap();
    let dup = [image_request("a", "x"), image_request("a", "y")];
    let e = batch::check_requests("gemini-2.5-flash-image", &dup).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("`a`"), "{}", e.message());
    let e =
        batch::check_requests("gemini-2.5-flash-image", &[image_request(" ", "x")]).unwrap_err();
    assert!(e.message().contains("non-empty key"), "{}", e.message());
    let e = batch::check_requests("gemini-2.5-flash-image", &[]).unwrap_err();
    assert!(e.message().contains("at least one"), "{}", e.message());
    let other = [BatchRequest::new(
        "m",
        GenerateRequest::new("x").with_model("gemini-3-pro-image-preview"),
    )];
    let e = batch::check_requests("gemini-2.5-flash-image", &other).unwrap_err();
    assert!(e.message().contains("one model"), "{}", e.message());
    let same = [BatchRequest::new(
        "m",
        GenerateRequest::new("x").with_model("models/gemini-2.5-flash-image"),
    )];
    batch::check_requests("gemini-2.5-flash-image", &same).unwrap();
    let e = batch::check_requests("imagen-4.0-generate-001", &ok).unwrap_err();
    assert!(e.message().contains(":predict"), "{}", e.message());
}

#[test]
fn per_request_errors_are_classified_like_interactive_answers() {
    let e = batch::classify_request_error(
        &serde_json::json!({"code": 429, "message": "x, limit: 0, model: gemini-2.5-flash-image", "status": "RESOURCE_EXHAUSTED"}),
        now(),
    );
    assert_eq!(e.kind(), ErrorKind::BillingRequired);
    let e = batch::classify_request_error(&serde_json::json!({"message": "no code"}), now());
    assert_eq!(
        e.kind(),
        ErrorKind::Unavailable,
        "a status without a code is a server error"
    );
    let e = batch::classify_request_error(
        &serde_json::json!({"code": 3, "message": "bad", "status": "INVALID_ARGUMENT"}),
        now(),
    );
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert_eq!(e.http_status(), Some(400));
    // google.rpc codes (what long-running operations carry) and bare status names.
    for (status, kind) in [
        (
            serde_json::json!({"code": 8, "message": "quota"}),
            ErrorKind::RateLimited,
        ),
        (
            serde_json::json!({"code": 14, "message": "down"}),
            ErrorKind::Unavailable,
        ),
        (
            serde_json::json!({"code": 16, "message": "who"}),
            ErrorKind::Unauthorized,
        ),
        (
            serde_json::json!({"status": "RESOURCE_EXHAUSTED", "message": "q"}),
            ErrorKind::RateLimited,
        ),
        (
            serde_json::json!({"status": "NOT_FOUND", "message": "models/x is not found"}),
            ErrorKind::ModelNotFound,
        ),
    ] {
        assert_eq!(
            batch::classify_request_error(&status, now()).kind(),
            kind,
            "{status}"
        );
    }
}

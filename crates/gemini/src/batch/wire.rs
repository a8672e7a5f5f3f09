//! Pure build and parse functions for the Batch API: no HTTP, so every shape is table-tested
//! and snapshot-tested (fixtures under `fixtures/gemini/batch`).
//!
//! Shapes follow Google's Batch API guide (ai.google.dev/gemini-api/docs/batch-mode): create
//! takes `{"batch": {"display_name", "input_config": {"requests": {"requests": [...]}}}}` or
//! `{"input_config": {"file_name": "files/..."}}`; a poll answers a long-running Operation
//! whose finished form carries the results twice, double-nested
//! (`metadata.output.inlinedResponses.inlinedResponses` and
//! `response.inlinedResponses.inlinedResponses`), or a `responsesFile` to download.

use std::collections::HashSet;

use http::{HeaderMap, StatusCode};
use imagegate_core::{Error, ErrorKind, ImageSize};
use imagegate_gemini_wire::{Endpoint, build_request, endpoint_for, normalize_model};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::batch::types::{
    BatchInput, BatchJob, BatchOptions, BatchOutput, BatchPage, BatchRequest, BatchResult,
    BatchState, BatchStats, InlineResponses, JobFailure,
};
use crate::response::{PROVIDER, parse_success};

/// The API's own cap on an inline create body.
pub const INLINE_BODY_LIMIT_BYTES: u64 = 20_000_000;

/// Checks a job's requests before anything is sent: at least one, every key non-empty and
/// unique, none naming another model, and a model that `batchGenerateContent` serves (Gemini image models, not Imagen).
///
/// # Errors
/// [`ErrorKind::InvalidRequest`] naming the first problem (the duplicate key, the model).
pub fn check_requests(model: &str, requests: &[BatchRequest]) -> Result<(), Error> {
    let model = normalize_model(model);
    if endpoint_for(model) == Endpoint::Predict {
        return Err(invalid(format!(
            "{model} is served by :predict, which the Batch API does not cover: batch jobs run \
             generateContent models only (e.g. gemini-2.5-flash-image)"
        )));
    }
    if requests.is_empty() {
        return Err(invalid("a batch job needs at least one request".to_owned()));
    }
    let mut seen = HashSet::new();
    for r in requests {
        if r.key.trim().is_empty() {
            return Err(invalid(
                "every batch request needs a non-empty key: results come back by key".to_owned(),
            ));
        }
        if let Some(other) = r.request.model.as_deref()
            && normalize_model(other) != model
        {
            return Err(invalid(format!(
                "batch request `{}` names the model {other}, but the job runs {model}: a batch \
                 job has one model",
                r.key
            )));
        }
        if !seen.insert(r.key.as_str()) {
            return Err(invalid(format!(
                "the key `{}` appears twice in one batch job: results come back by key, so keys \
                 must be unique",
                r.key
            )));
        }
    }
    Ok(())
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidRequest, message).with_provider(PROVIDER)
}

/// The create body with the requests inline (snake_case, as the Batch guide sends it).
pub fn inline_body(model: &str, display_name: &str, requests: &[BatchRequest]) -> Value {
    let model = normalize_model(model);
    let items: Vec<Value> = requests
        .iter()
        .map(|r| {
            json!({
                "request": build_request(&r.request, model),
                "metadata": { "key": r.key },
            })
        })
        .collect();
    json!({
        "batch": {
            "display_name": display_name,
            "input_config": { "requests": { "requests": items } },
        }
    })
}

/// The create body for requests uploaded as a file (`files/...`, from the Files API).
pub fn file_body(display_name: &str, file_name: &str) -> Value {
    json!({
        "batch": {
            "display_name": display_name,
            "input_config": { "file_name": file_name },
        }
    })
}

/// The JSONL input file: one `{"key": ..., "request": <GenerateContentRequest>}` per line,
/// each line ending in `\n`.
pub fn jsonl_input(model: &str, requests: &[BatchRequest]) -> Vec<u8> {
    let model = normalize_model(model);
    let mut out = Vec::new();
    for r in requests {
        let line = json!({ "key": r.key, "request": build_request(&r.request, model) });
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// The base64 bytes one image of `size` is expected to take in an answer (a 2K image is about
/// 8 MB of base64); a request that names no size gets 1K.
pub const fn expected_image_bytes(size: Option<ImageSize>) -> u64 {
    const MIB: u64 = 1024 * 1024;
    match size {
        Some(ImageSize::Half) => MIB,
        None | Some(ImageSize::OneK) => 3 * MIB,
        Some(ImageSize::TwoK) => 8 * MIB,
        Some(ImageSize::FourK) => 24 * MIB,
    }
}

/// What a finished inline job's poll is expected to weigh: every image, twice (a finished
/// Operation carries each result under `metadata.output` and again under `response`).
pub fn expected_inline_result_bytes(requests: &[BatchRequest]) -> u64 {
    requests
        .iter()
        .map(|r| {
            expected_image_bytes(r.request.size).saturating_mul(u64::from(r.request.count.max(1)))
        })
        .fold(0u64, u64::saturating_add)
        .saturating_mul(2)
}

/// Inline or file input for `requests`: inline only when the create body is under
/// `inline_max_body_bytes` and the expected result under `inline_max_result_bytes`; file input
/// otherwise (results then come as a responses file, never inside a poll).
pub fn choose_input(model: &str, requests: &[BatchRequest], options: &BatchOptions) -> BatchInput {
    if expected_inline_result_bytes(requests) > options.inline_max_result_bytes {
        return BatchInput::File;
    }
    let body = inline_body(model, "", requests).to_string().len();
    let limit = options.inline_max_body_bytes.min(INLINE_BODY_LIMIT_BYTES);
    if u64::try_from(body).unwrap_or(u64::MAX) > limit {
        BatchInput::File
    } else {
        BatchInput::Inline
    }
}

/// Reads an Operation (the answer to create and get, and each item of a list).
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] when the body is not JSON or names no `batches/...` job.
pub fn parse_operation(body: &[u8]) -> Result<BatchJob, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        bad_answer(format!(
            "the batch job answer is not JSON ({e}); {} bytes",
            body.len()
        ))
    })?;
    operation_from_value(&value)
}

/// [`parse_operation`] for an already-parsed value.
///
/// # Errors
/// As [`parse_operation`].
pub fn operation_from_value(value: &Value) -> Result<BatchJob, Error> {
    // A GenerateContentBatch may also arrive bare (not wrapped in an Operation): then it is
    // its own metadata.
    let metadata = value
        .get("metadata")
        .filter(|m| m.is_object())
        .unwrap_or(value);
    let name = value
        .get("name")
        .and_then(Value::as_str)
        .or_else(|| metadata.get("name").and_then(Value::as_str))
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| bad_answer("the batch job answer names no job (`name` is missing)".into()))?
        .to_owned();
    let text = |v: &Value, camel: &str, snake: &str| -> Option<String> {
        v.get(camel)
            .or_else(|| v.get(snake))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let state = text(metadata, "state", "state")
        .map(|s| BatchState::parse(&s))
        .unwrap_or(BatchState::Unspecified);
    let stats = metadata
        .get("batchStats")
        .or_else(|| metadata.get("batch_stats"))
        .map(parse_stats)
        .unwrap_or_default();
    let time = |camel: &str, snake: &str| {
        text(metadata, camel, snake).and_then(|t| t.parse::<Timestamp>().ok())
    };
    let failure = value
        .get("error")
        .or_else(|| metadata.get("error"))
        .filter(|e| e.is_object())
        .map(|e| JobFailure {
            code: e
                .get("code")
                .and_then(as_u64)
                .and_then(|c| u16::try_from(c).ok()),
            message: e
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        });
    Ok(BatchJob {
        name,
        display_name: text(metadata, "displayName", "display_name").unwrap_or_default(),
        model: text(metadata, "model", "model").unwrap_or_default(),
        state,
        done: value.get("done").and_then(Value::as_bool).unwrap_or(false),
        stats,
        output: parse_output(value, metadata),
        failure,
        create_time: time("createTime", "create_time"),
        update_time: time("updateTime", "update_time"),
        end_time: time("endTime", "end_time"),
    })
}

/// Counts are int64 strings on the wire; numbers are accepted too.
fn parse_stats(v: &Value) -> BatchStats {
    let count = |camel: &str, snake: &str| {
        v.get(camel)
            .or_else(|| v.get(snake))
            .and_then(as_u64)
            .unwrap_or(0)
    };
    BatchStats {
        requests: count("requestCount", "request_count"),
        pending: count("pendingRequestCount", "pending_request_count"),
        succeeded: count("successfulRequestCount", "successful_request_count"),
        failed: count("failedRequestCount", "failed_request_count"),
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        other => other.as_u64(),
    }
}

/// The results, from `response` first (the Operation's result proper), else
/// `metadata.output`; each holds `inlinedResponses.inlinedResponses` (double-nested) or
/// `responsesFile`. A single level of nesting is accepted too.
fn parse_output(op: &Value, metadata: &Value) -> Option<BatchOutput> {
    let candidates = [op.get("response"), metadata.get("output"), op.get("output")];
    for holder in candidates.into_iter().flatten() {
        if let Some(file) = holder
            .get("responsesFile")
            .or_else(|| holder.get("responses_file"))
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty())
        {
            return Some(BatchOutput::ResponsesFile(file.to_owned()));
        }
        let inlined = holder
            .get("inlinedResponses")
            .or_else(|| holder.get("inlined_responses"));
        if let Some(inlined) = inlined {
            let items = inlined
                .get("inlinedResponses")
                .or_else(|| inlined.get("inlined_responses"))
                .unwrap_or(inlined);
            if let Some(items) = items.as_array() {
                return Some(BatchOutput::Inline(InlineResponses(items.clone())));
            }
        }
    }
    None
}

/// Reads one page of `GET /v1beta/batches` (`operations` or `batches`, and `nextPageToken`).
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] when the body is not JSON or an item is not a job.
pub fn parse_list(body: &[u8]) -> Result<BatchPage, Error> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad_answer(format!("the batch list answer is not JSON ({e})")))?;
    let items = value
        .get("operations")
        .or_else(|| value.get("batches"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let jobs = items
        .iter()
        .map(operation_from_value)
        .collect::<Result<Vec<_>, _>>()?;
    let next_page_token = value
        .get("nextPageToken")
        .or_else(|| value.get("next_page_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    Ok(BatchPage {
        jobs,
        next_page_token,
    })
}

/// The results of an inline job, one per keyed item. `model` names the model on each response
/// (the job's [`BatchJob::model_id`]); `now` dates per-request quota errors. Items without a
/// key are skipped (logged): their requests count as unfinished.
pub fn inline_results(
    responses: &InlineResponses,
    model: &str,
    now: Timestamp,
) -> Vec<BatchResult> {
    responses
        .0
        .iter()
        .enumerate()
        .filter_map(|(i, item)| result_from_item(item, model, now, &format!("inline item {i}")))
        .collect()
}

/// The results in a downloaded responses file: one JSON object per line, each either
/// `{"key", "response": <GenerateContentResponse>}` or `{"key", "error"|"status": <Status>}`.
/// Blank lines are ignored; a line that is not JSON or has no key is skipped (logged), so its
/// request counts as unfinished rather than losing the lines around it.
pub fn parse_results_jsonl(body: &[u8], model: &str, now: Timestamp) -> Vec<BatchResult> {
    body.split(|b| *b == b'\n')
        .enumerate()
        .filter_map(|(n, line)| result_from_line(line, n + 1, model, now))
        .collect()
}

/// One line (numbered from 1) of a responses file: `None` when blank, not JSON or keyless.
pub fn result_from_line(
    line: &[u8],
    number: usize,
    model: &str,
    now: Timestamp,
) -> Option<BatchResult> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match serde_json::from_slice::<Value>(line) {
        Ok(item) => result_from_item(&item, model, now, &format!("line {number}")),
        Err(e) => {
            tracing::warn!(line = number, error = %e, "batch responses file: a line is not JSON; its request stays unfinished");
            None
        }
    }
}

/// One result item (inline or JSONL): its key and outcome.
pub fn result_from_item(
    item: &Value,
    model: &str,
    now: Timestamp,
    where_: &str,
) -> Option<BatchResult> {
    let key = item
        .pointer("/metadata/key")
        .or_else(|| item.get("key"))
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty());
    let Some(key) = key else {
        tracing::warn!(
            at = where_,
            "batch result without a key; its request stays unfinished"
        );
        return None;
    };
    let outcome = if let Some(error) = item.get("error").or_else(|| item.get("status")) {
        Err(classify_request_error(error, now))
    } else if let Some(response) = item.get("response") {
        let bytes = serde_json::to_vec(response).unwrap_or_default();
        parse_success(&bytes, model)
    } else {
        Err(bad_answer(format!(
            "the batch result for key `{key}` holds neither a response nor an error"
        )))
    };
    Some(BatchResult {
        key: key.to_owned(),
        outcome,
    })
}

/// A per-request error (a google.rpc Status: `{code, message, status, details}`), classified by
/// the classifier interactive answers go through, as if it had come back with the matching
/// HTTP status. `code` may be an HTTP status (`429`) or a google.rpc code (`8`, what
/// long-running operations carry); the `status` name decides when the code is missing.
pub fn classify_request_error(status: &Value, now: Timestamp) -> Error {
    let code = status.get("code").and_then(as_u64);
    let named = status.get("status").and_then(Value::as_str);
    let http = match code {
        Some(c @ 100..=599) => u16::try_from(c).ok(),
        Some(c) => rpc_code_name(c).and_then(http_for_rpc),
        None => named.and_then(http_for_rpc),
    }
    .and_then(|c| StatusCode::from_u16(c).ok())
    .filter(|c| !c.is_success())
    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut envelope = status.clone();
    if let Some(map) = envelope.as_object_mut() {
        map.insert("code".into(), json!(http.as_u16()));
        if named.is_none()
            && let Some(name) = code.and_then(rpc_code_name)
        {
            map.insert("status".into(), json!(name));
        }
    }
    let body = json!({ "error": envelope }).to_string();
    imagegate_google_rpc::classify(http, &HeaderMap::new(), body.as_bytes(), now, PROVIDER)
}

/// The name of a google.rpc code (google/rpc/code.proto).
fn rpc_code_name(code: u64) -> Option<&'static str> {
    Some(match code {
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => return None,
    })
}

/// The HTTP status google.rpc maps a code name to (google/rpc/code.proto's comments).
fn http_for_rpc(name: &str) -> Option<u16> {
    Some(match name {
        "CANCELLED" => 499,
        "UNKNOWN" | "INTERNAL" | "DATA_LOSS" => 500,
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "DEADLINE_EXCEEDED" => 504,
        "NOT_FOUND" => 404,
        "ALREADY_EXISTS" | "ABORTED" => 409,
        "PERMISSION_DENIED" => 403,
        "RESOURCE_EXHAUSTED" => 429,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "UNAUTHENTICATED" => 401,
        _ => return None,
    })
}

fn bad_answer(message: String) -> Error {
    Error::new(ErrorKind::InvalidResponse, message).with_provider(PROVIDER)
}

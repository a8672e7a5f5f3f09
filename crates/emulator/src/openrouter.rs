//! The OpenRouter dialect: `POST /api/v1/chat/completions` with image output, and
//! `GET /api/v1/key`, answering as OpenRouter does.
//!
//! Bodies follow the fixtures: fixtures/openrouter/chat-completions/200-success.json for an
//! image, 401-no-auth.json for a missing key, 400-invalid-request.json for a bad body,
//! fixtures/openrouter/key/200-current-shape.json for the key endpoint. The 429 (with its
//! `X-RateLimit-*` headers), the 402 for a limit of 0 and the 503 come from the simulated
//! upstream; the emulator adds `Retry-After` (whole seconds, rounded up) to a 429 whose reset it
//! knows, as OpenRouter does when it has a retry hint.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::Response;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode};
use imagegate_core::Image;
use imagegate_mock::OUTPUT_TOKENS_PER_IMAGE;
use imagegate_mock::sim::{usage_of, wire::UpstreamKind, wire::WireAnswer, wire::model_not_found};
use serde_json::{Value, json};

use crate::book::Outcome;
use crate::emulator::{Called, Caller, Shared};
use crate::http_util::{self, BodyProblem, PLAIN_JSON};
use crate::parse::{self, Invalid};

const KIND: UpstreamKind = UpstreamKind::OpenRouter;

fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {"message": message, "code": status.as_u16()}});
    http_util::json(status, PLAIN_JSON, &body, false)
}

/// The key of `Authorization: Bearer KEY`.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim().to_owned())
}

fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    model: Option<&str>,
) -> Result<usize, Box<Response>> {
    let caller = shared.caller(KIND, bearer(headers).as_deref());
    match caller {
        Caller::Project(project) => Ok(project),
        Caller::Missing => {
            shared.refuse(KIND, caller, model, Outcome::BadKey, 401);
            Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "No auth credentials found",
            )))
        }
        Caller::Unknown => {
            // OpenRouter's answer to a revoked or unknown key, as its users capture it.
            shared.refuse(KIND, caller, model, Outcome::BadKey, 401);
            Err(Box::new(error(StatusCode::UNAUTHORIZED, "User not found.")))
        }
        Caller::Nowhere => {
            shared.refuse(KIND, caller, model, Outcome::NotFound, 404);
            Err(Box::new(http_util::wire(model_not_found(
                KIND,
                model.unwrap_or(""),
            ))))
        }
    }
}

/// Adds `Retry-After` to a 429 that carries `X-RateLimit-Reset` (epoch milliseconds).
fn with_retry_after(mut answer: WireAnswer, now_ms: i64) -> WireAnswer {
    if answer.status != StatusCode::TOO_MANY_REQUESTS {
        return answer;
    }
    let reset = answer
        .headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    if let Some(reset) = reset {
        let seconds = (reset - now_ms).max(0).div_euclid(1_000)
            + i64::from((reset - now_ms).max(0).rem_euclid(1_000) > 0);
        if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
            answer.headers.insert(http::header::RETRY_AFTER, value);
        }
    }
    answer
}

/// `POST /api/v1/chat/completions`.
pub(crate) async fn chat(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match http_util::body(body) {
        Ok(body) => body,
        Err(problem) => {
            let caller = shared.caller(KIND, bearer(&headers).as_deref());
            return match problem {
                BodyProblem::TooLarge => {
                    shared.refuse(KIND, caller, None, Outcome::TooLarge, 413);
                    error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        &format!(
                            "Request body too large: the limit is {} bytes",
                            crate::MAX_BODY_BYTES
                        ),
                    )
                }
                BodyProblem::Unreadable(why) => {
                    shared.refuse(KIND, caller, None, Outcome::BadRequest, 400);
                    error(
                        StatusCode::BAD_REQUEST,
                        &format!("The request body could not be read: {why}"),
                    )
                }
            };
        }
    };
    // The model, when the body names one, for the log and for a 404 of an account-less key.
    let raw = serde_json::from_slice::<Value>(&body).ok();
    let named = raw
        .as_ref()
        .and_then(|v| v.get("model").and_then(Value::as_str).map(str::to_owned));
    let stream = raw.as_ref().and_then(|v| v.get("stream")) == Some(&Value::Bool(true));
    let project = match authenticate(&shared, &headers, named.as_deref()) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    let (model, parsed) = match parse::openrouter_chat(&body) {
        Ok(parsed) => parsed,
        Err(Invalid(message)) => {
            shared.refuse(
                KIND,
                Caller::Project(project),
                None,
                Outcome::BadRequest,
                400,
            );
            return error(StatusCode::BAD_REQUEST, &message);
        }
    };
    let images = match shared.call(project, &model, &parsed).await {
        Called::Served(images) => images,
        Called::Rejected(answer) => {
            let now = shared.clock.now().as_millisecond();
            return http_util::wire(with_retry_after(answer, now));
        }
    };
    let created = shared.clock.now().as_second();
    let usage = usage_of(&parsed.request);
    let image_tokens = images.len() as u64 * OUTPUT_TOKENS_PER_IMAGE;
    let prompt = usage
        .tokens
        .saturating_sub(usage.images * OUTPUT_TOKENS_PER_IMAGE);
    let mut message = json!({
        "role": "assistant",
        "content": if images.is_empty() {
            "This is imagegate emulate: ask for \"modalities\": [\"image\", \"text\"] to get an image."
        } else {
            ""
        },
        "refusal": null,
        "reasoning": null,
    });
    if !images.is_empty()
        && let Some(object) = message.as_object_mut()
    {
        let urls: Vec<Value> = images.iter().map(data_url).collect();
        object.insert("images".to_owned(), Value::Array(urls));
    }
    let id = format!("gen-{created}-emulator{:011x}", shared.next_response());
    let usage = json!({
        "prompt_tokens": prompt,
        "completion_tokens": image_tokens,
        "total_tokens": prompt + image_tokens,
        "cost": 0,
        "is_byok": false,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0,
                                  "audio_tokens": 0, "video_tokens": 0},
        "cost_details": {"upstream_inference_cost": 0, "upstream_inference_prompt_cost": 0,
                         "upstream_inference_completions_cost": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": image_tokens,
                                      "audio_tokens": 0},
    });
    if stream {
        return stream_chunks(&id, &model, created, message, usage);
    }
    let body = json!({
        "id": id,
        "provider": "Google AI Studio",
        "model": model,
        "object": "chat.completion",
        "created": created,
        "choices": [{
            "logprobs": null,
            "finish_reason": "stop",
            "native_finish_reason": "STOP",
            "index": 0,
            "message": message,
        }],
        "usage": usage,
    });
    http_util::json(StatusCode::OK, PLAIN_JSON, &body, false)
}

/// The same answer as OpenRouter streams it (`stream: true`): a chunk whose `delta` carries
/// the content and the images, a last chunk with `finish_reason` and `usage`, then
/// `data: [DONE]`. Refusals arrive before any chunk, as plain HTTP errors.
fn stream_chunks(id: &str, model: &str, created: i64, message: Value, usage: Value) -> Response {
    let chunk = |delta: Value, finish: Value, native: Value, usage: Option<&Value>| {
        let mut chunk = json!({
            "id": id,
            "provider": "Google AI Studio",
            "model": model,
            "object": "chat.completion.chunk",
            "created": created,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                         "native_finish_reason": native, "logprobs": null}],
        });
        if let (Some(usage), Some(object)) = (usage, chunk.as_object_mut()) {
            object.insert("usage".to_owned(), usage.clone());
        }
        chunk
    };
    let first = chunk(message, Value::Null, Value::Null, None);
    let last = chunk(
        json!({"role": "assistant", "content": ""}),
        json!("stop"),
        json!("STOP"),
        Some(&usage),
    );
    let body = format!("data: {first}\n\ndata: {last}\n\ndata: [DONE]\n\n");
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    http_util::raw(StatusCode::OK, headers, body)
}

fn data_url(image: &Image) -> Value {
    let data = base64::engine::general_purpose::STANDARD.encode(&image.bytes);
    json!({"type": "image_url", "image_url": {"url": format!("data:{};base64,{data}", image.mime_type)}})
}

/// `GET /api/v1/key` (and its older alias `/api/v1/auth/key`): the current shape, with no
/// credit limit and `is_free_tier` true when the account's pools have a limit of 0.
pub(crate) async fn key(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let project = match authenticate(&shared, &headers, None) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    let Some(p) = shared.projects.get(project) else {
        return error(StatusCode::UNAUTHORIZED, "User not found.");
    };
    let free = p
        .upstream
        .config()
        .pools
        .iter()
        .all(|pool| pool.is_unentitled());
    let body = json!({"data": {
        "label": format!("imagegate emulate key of {}", p.name),
        "limit": null,
        "limit_remaining": null,
        "limit_reset": null,
        "include_byok_in_limit": false,
        "usage": 0,
        "usage_daily": 0,
        "usage_weekly": 0,
        "usage_monthly": 0,
        "byok_usage": 0,
        "byok_usage_daily": 0,
        "byok_usage_weekly": 0,
        "byok_usage_monthly": 0,
        "is_free_tier": free,
        "is_management_key": false,
        "is_provisioning_key": false,
        "creator_user_id": format!("user_emulator_{}", p.name),
        "expires_at": null,
        "rate_limit": {"requests": -1, "interval": "10s",
                       "note": "This field is deprecated and safe to ignore."},
    }});
    http_util::json(StatusCode::OK, PLAIN_JSON, &body, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_the_reset_up_to_whole_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert("x-ratelimit-reset", HeaderValue::from_static("10001"));
        let answer = WireAnswer {
            status: StatusCode::TOO_MANY_REQUESTS,
            headers,
            body: Vec::new(),
        };
        let with = with_retry_after(answer.clone(), 0);
        assert_eq!(with.headers[http::header::RETRY_AFTER], "11");
        assert_eq!(
            with_retry_after(answer.clone(), 1_001).headers[http::header::RETRY_AFTER],
            "9"
        );
        assert_eq!(
            with_retry_after(answer, 20_000).headers[http::header::RETRY_AFTER],
            "0"
        );
        let mut bearer_headers = HeaderMap::new();
        bearer_headers.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  k-1 "),
        );
        assert_eq!(bearer(&bearer_headers).as_deref(), Some("k-1"));
    }
}

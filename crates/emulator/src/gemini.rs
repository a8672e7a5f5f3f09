//! The Gemini API dialect: `generateContent`, `streamGenerateContent`, Imagen `predict`, and the
//! model list, under `/v1beta` and `/v1`, answering as the real service does.
//!
//! Error bodies the emulator produces itself (the simulated upstream renders the 429, 503 and
//! 404 answers) follow the recorded ones: fixtures/gemini/generate-content/400-api-key-invalid.json
//! for an unknown key, 400-invalid-argument.json for a bad body. A request without any key gets
//! the 403 `PERMISSION_DENIED` that Google's API front end sends to "unregistered callers".

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use imagegate_core::Image;
use imagegate_mock::OUTPUT_TOKENS_PER_IMAGE;
use imagegate_mock::sim::{usage_of, wire::UpstreamKind, wire::model_not_found};
use serde_json::{Value, json};

use crate::book::Outcome;
use crate::emulator::{Called, Caller, Shared};
use crate::http_util::{self, BodyProblem, GOOGLE_JSON};
use crate::parse::{self, Invalid, Parsed};

const KIND: UpstreamKind = UpstreamKind::Gemini;

/// The text part an answer carries when text was asked for.
const TEXT: &str = "Here is the image you asked for, drawn by imagegate emulate.";

pub(crate) fn error(status: StatusCode, code_name: &str, message: &str) -> Response {
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": code_name,
    }});
    http_util::json(status, GOOGLE_JSON, &body, true)
}

/// 403 for a request with no key: the Google API front end's standard wording.
fn missing_key() -> Response {
    error(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
    )
}

/// 400 `API_KEY_INVALID`, as recorded (fixtures/gemini/generate-content/400-api-key-invalid.json).
fn invalid_key() -> Response {
    let message = "API key not valid. Please pass a valid API key.";
    let body = json!({"error": {
        "code": 400,
        "message": message,
        "status": "INVALID_ARGUMENT",
        "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
             "domain": "googleapis.com",
             "metadata": {"service": "generativelanguage.googleapis.com"}},
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US",
             "message": message},
        ],
    }});
    http_util::json(StatusCode::BAD_REQUEST, GOOGLE_JSON, &body, true)
}

fn bad_request(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message)
}

fn too_large() -> Response {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "INVALID_ARGUMENT",
        &format!(
            "Request payload size exceeds the limit: {} bytes.",
            crate::MAX_BODY_BYTES
        ),
    )
}

fn version_of(uri: &Uri) -> &'static str {
    if uri.path().starts_with("/v1/") || uri.path() == "/v1/models" {
        "v1"
    } else {
        "v1beta"
    }
}

/// The query parameters, percent-decoded (`+` as a space, as forms do).
pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// The key, from `x-goog-api-key` or else `?key=`, both as Google accepts them.
fn key_of(headers: &HeaderMap, query: &[(String, String)]) -> Option<String> {
    headers
        .get("x-goog-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            query
                .iter()
                .find(|(k, _)| k == "key")
                .map(|(_, v)| v.clone())
        })
}

/// Resolves the caller, or the answer for a missing or unknown key (recorded as such).
pub(crate) fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    query: &[(String, String)],
    model: Option<&str>,
) -> Result<usize, Box<Response>> {
    let caller = shared.caller(KIND, key_of(headers, query).as_deref());
    match caller {
        Caller::Project(project) => Ok(project),
        Caller::Missing => {
            shared.refuse(KIND, caller, model, Outcome::BadKey, 403);
            Err(Box::new(missing_key()))
        }
        Caller::Unknown => {
            shared.refuse(KIND, caller, model, Outcome::BadKey, 400);
            Err(Box::new(invalid_key()))
        }
        Caller::Nowhere => {
            shared.refuse(KIND, caller, model, Outcome::NotFound, 404);
            Err(Box::new(http_util::google_wire(model_not_found(
                KIND,
                model.unwrap_or(""),
            ))))
        }
    }
}

/// `POST /{v}/models/{model}:{method}`.
pub(crate) async fn call(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let query = query_pairs(query.as_deref());
    let Some((model, method)) = target.rsplit_once(':') else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!(
                "Method not found: `{target}` names no method (expected MODEL:generateContent)."
            ),
        );
    };
    let model = model.strip_prefix("models/").unwrap_or(model);
    let body = match http_util::body(body) {
        Ok(body) => body,
        Err(BodyProblem::TooLarge) => {
            let caller = shared.caller(KIND, key_of(&headers, &query).as_deref());
            shared.refuse(KIND, caller, Some(model), Outcome::TooLarge, 413);
            return too_large();
        }
        Err(BodyProblem::Unreadable(why)) => {
            let caller = shared.caller(KIND, key_of(&headers, &query).as_deref());
            shared.refuse(KIND, caller, Some(model), Outcome::BadRequest, 400);
            return bad_request(&format!("The request body could not be read: {why}"));
        }
    };
    let project = match authenticate(&shared, &headers, &query, Some(model)) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    if method == "batchGenerateContent" {
        return crate::batch::create(&shared, project, model, &body).await;
    }
    let sse = query.iter().any(|(k, v)| k == "alt" && v == "sse");
    let id = format!("emulator-{:016x}", shared.next_response());
    serve_generation(&shared, KIND, project, model, method, &body, sse, &id).await
}

/// Serves one method of the Gemini protocol (`generateContent`, `streamGenerateContent`,
/// `predict`) for `project`'s pool, as Gemini and Vertex AI both speak it: parses the body,
/// asks the pool, answers in the method's shape or with the refusal's wire answer. `kind` is
/// whose books a refusal goes in; `id` the answer's `responseId`.
#[allow(clippy::too_many_arguments)] // the request's parts, each used once
pub(crate) async fn serve_generation(
    shared: &Shared,
    kind: UpstreamKind,
    project: usize,
    model: &str,
    method: &str,
    body: &[u8],
    sse: bool,
    id: &str,
) -> Response {
    let parsed = match method {
        "generateContent" | "streamGenerateContent" => parse::gemini_generate(body),
        "predict" => parse::imagen_predict(body),
        _ => {
            shared.refuse(
                kind,
                Caller::Project(project),
                Some(model),
                Outcome::NotFound,
                404,
            );
            return error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                &format!("Method not found: the emulator does not serve `{method}`."),
            );
        }
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(Invalid(message)) => {
            shared.refuse(
                kind,
                Caller::Project(project),
                Some(model),
                Outcome::BadRequest,
                400,
            );
            return bad_request(&message);
        }
    };
    let images = match shared.call(project, model, &parsed).await {
        Called::Served(images) => images,
        Called::Rejected(answer) => return http_util::google_wire(answer),
    };
    match method {
        "predict" => {
            let predictions: Vec<Value> = images
                .iter()
                .map(|i| json!({"mimeType": i.mime_type, "bytesBase64Encoded": base64_of(i)}))
                .collect();
            http_util::json(
                StatusCode::OK,
                GOOGLE_JSON,
                &json!({"predictions": predictions}),
                true,
            )
        }
        "streamGenerateContent" => stream(model, &parsed, &images, id, sse),
        _ => http_util::json(
            StatusCode::OK,
            GOOGLE_JSON,
            &content_response(model, &parsed, &images, id),
            true,
        ),
    }
}

pub(crate) fn base64_of(image: &Image) -> String {
    base64::engine::general_purpose::STANDARD.encode(&image.bytes)
}

/// `(promptTokenCount, image tokens, text tokens)` of an answer.
fn tokens(parsed: &Parsed, images: usize) -> (u64, u64, u64) {
    let usage = usage_of(&parsed.request);
    let prompt = usage
        .tokens
        .saturating_sub(usage.images * OUTPUT_TOKENS_PER_IMAGE);
    let text = if parsed.wants_text {
        (TEXT.len() as u64).div_ceil(4)
    } else {
        0
    };
    (prompt, images as u64 * OUTPUT_TOKENS_PER_IMAGE, text)
}

fn usage_metadata(parsed: &Parsed, images: usize) -> Value {
    let (prompt, image, text) = tokens(parsed, images);
    let mut details = Vec::new();
    if image > 0 {
        details.push(json!({"modality": "IMAGE", "tokenCount": image}));
    }
    if text > 0 {
        details.push(json!({"modality": "TEXT", "tokenCount": text}));
    }
    json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": image + text,
        "totalTokenCount": prompt + image + text,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
        "candidatesTokensDetails": details,
    })
}

fn parts(parsed: &Parsed, images: &[Image]) -> Vec<Value> {
    let mut parts = Vec::new();
    if parsed.wants_text {
        parts.push(json!({"text": TEXT}));
    }
    parts.extend(
        images
            .iter()
            .map(|i| json!({"inlineData": {"mimeType": i.mime_type, "data": base64_of(i)}})),
    );
    parts
}

/// A `GenerateContentResponse` as gemini-2.5-flash-image sends it: the text part first (when
/// asked for), the PNG in `inlineData`, `usageMetadata`, `modelVersion`, `responseId`.
pub(crate) fn content_response(model: &str, parsed: &Parsed, images: &[Image], id: &str) -> Value {
    json!({
        "candidates": [{
            "content": {"parts": parts(parsed, images), "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }],
        "usageMetadata": usage_metadata(parsed, images.len()),
        "modelVersion": model,
        "responseId": id,
    })
}

/// The same answer as a stream, in two chunks as the service sends it: the parts (no
/// `finishReason`), then an empty text part with `finishReason: STOP`. With `alt=sse` as
/// `data:` events, else as one JSON array.
pub(crate) fn stream(
    model: &str,
    parsed: &Parsed,
    images: &[Image],
    id: &str,
    sse: bool,
) -> Response {
    let usage = usage_metadata(parsed, images.len());
    let first = json!({
        "candidates": [{"content": {"parts": parts(parsed, images), "role": "model"}, "index": 0}],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": id,
    });
    let last = json!({
        "candidates": [{"content": {"parts": [{"text": ""}], "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": id,
    });
    if !sse {
        return http_util::json(StatusCode::OK, GOOGLE_JSON, &json!([first, last]), true);
    }
    let body = format!("data: {first}\r\n\r\ndata: {last}\r\n\r\n");
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    http_util::raw(StatusCode::OK, headers, body)
}

fn model_entry(name: &str) -> Value {
    let methods: &[&str] = if name.starts_with("imagen-") {
        &["predict"]
    } else {
        &["generateContent", "streamGenerateContent", "countTokens"]
    };
    json!({
        "name": format!("models/{name}"),
        "version": "001",
        "displayName": name,
        "description": "Served by imagegate emulate with the configured quota pool.",
        "inputTokenLimit": 32768,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": methods,
    })
}

fn models_of(shared: &Shared, project: usize) -> Vec<String> {
    shared
        .projects
        .get(project)
        .map(|p| {
            p.upstream
                .config()
                .pools
                .iter()
                .flat_map(|pool| pool.models.iter().cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /{v}/models`: the models of the key's project.
pub(crate) async fn list_models(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query_pairs(query.as_deref());
    let project = match authenticate(&shared, &headers, &query, None) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    let models: Vec<Value> = models_of(&shared, project)
        .iter()
        .map(|m| model_entry(m))
        .collect();
    http_util::json(
        StatusCode::OK,
        GOOGLE_JSON,
        &json!({"models": models}),
        true,
    )
}

/// `GET /{v}/models/{model}`: one model of the key's project, or Google's 404.
pub(crate) async fn get_model(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = query_pairs(query.as_deref());
    let model = target.strip_prefix("models/").unwrap_or(&target);
    let project = match authenticate(&shared, &headers, &query, Some(model)) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    if models_of(&shared, project).iter().any(|m| m == model) {
        return http_util::json(StatusCode::OK, GOOGLE_JSON, &model_entry(model), true);
    }
    error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!(
            "models/{model} is not found for API version {}, or is not supported for generateContent. Call ListModels to see the list of available models and their supported methods.",
            version_of(&uri)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode_percent_and_plus_and_survive_junk() {
        assert_eq!(
            query_pairs(Some("key=a%2Bb&alt=sse&x")),
            [
                ("key".to_owned(), "a+b".to_owned()),
                ("alt".to_owned(), "sse".to_owned()),
                ("x".to_owned(), String::new())
            ]
        );
        assert_eq!(
            query_pairs(Some("k=%zz%")),
            [("k".to_owned(), "%zz%".to_owned())]
        );
        assert_eq!(
            query_pairs(Some("k=%4")),
            [("k".to_owned(), "%4".to_owned())]
        );
        assert!(query_pairs(None).is_empty());
    }
}

//! The OpenAI Images dialect: `POST /v1/images/generations` (JSON) and `POST /v1/images/edits`
//! (multipart, reference images as `image[]` or `image`), answering as OpenAI does.
//!
//! Every answer of a pool (200 and refusals alike) carries `x-ratelimit-limit-*`,
//! `-remaining-*` and `-reset-*` for the pool's per-minute limits (`requests` for RPM, `tokens`
//! for TPM, `images` for IPM; resets as Go durations), as the OpenAI rate-limit guide documents
//! them. The 429 (`rate_limit_exceeded`, with "Limit: 5/1min" or "Limit 100000, Used ...,
//! Requested ..." and "Please try again in 1.896s"), the `insufficient_quota` 429 of a pool
//! with a limit of 0, the 503 and the 404 come from the simulated upstream. Bodies the emulator
//! produces itself follow the fixtures: fixtures/openai/images-generations/401-no-key.json and
//! 401-invalid-api-key.json for keys, 400-invalid-size.json for a bad body,
//! 200-success-gpt-image-1.json and 200-url-answer.json for an image.
//!
//! `response_format: "url"` is honoured: the image is kept (the last
//! [`KEPT_IMAGES`] of them) and linked at `/emulator/openai/images/{id}.png` on the host the
//! request came to.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use base64::Engine as _;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use imagegate_core::{AspectRatio, GenerateRequest, Image, ImageSize, ReferenceImage};
use imagegate_mock::OUTPUT_TOKENS_PER_IMAGE;
use imagegate_mock::sim::usage_of;
use imagegate_mock::sim::wire::{UpstreamKind, WireAnswer};
use imagegate_mock::sim::wire::{model_not_found, openai_error, openai_rate_limit_headers};
use serde_json::{Value, json};

use crate::book::Outcome;
use crate::emulator::{Called, Caller, Shared};
use crate::http_util::{self, BodyProblem, PLAIN_JSON};
use crate::parse::{Invalid, Parsed};

const KIND: UpstreamKind = UpstreamKind::OpenAi;

/// How many images answered as links are kept for download; older ones are dropped first.
pub(crate) const KEPT_IMAGES: usize = 64;

/// The most images one call may ask for (`n`), as the API reference states.
const MAX_N: u64 = 10;

/// The dialect's state: the emulator's, and the images answered as links.
#[derive(Debug)]
pub(crate) struct OpenAi {
    shared: Arc<Shared>,
    links: Mutex<VecDeque<(String, Image)>>,
}

/// The routes of this dialect, with their own body limit (merged into the emulator's router).
pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    let state = Arc::new(OpenAi {
        shared,
        links: Mutex::new(VecDeque::new()),
    });
    Router::new()
        .route("/v1/images/generations", post(generations))
        .route("/v1/images/edits", post(edits))
        .route("/emulator/openai/images/{file}", get(download))
        .layer(DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        .with_state(state)
}

fn error(status: StatusCode, message: &str, param: Option<&str>, code: Option<&str>) -> Response {
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let mut answer = openai_error(status, message, kind, code);
    if let Some(param) = param
        && let Ok(mut body) = serde_json::from_slice::<Value>(&answer.body)
    {
        body["error"]["param"] = json!(param);
        answer.body = body.to_string().into_bytes();
    }
    http_util::wire(answer)
}

/// The key of `Authorization: Bearer KEY`.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| key.trim().to_owned())
}

/// A key as OpenAI's 401 shows it: the first three and last four characters of a long key,
/// nothing of a short one (so a test key is never echoed whole).
fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 20 {
        return "****".to_owned();
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// Resolves the caller, or OpenAI's answer for a missing or unknown key (recorded as such).
fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    model: Option<&str>,
) -> Result<usize, Box<Response>> {
    let key = bearer(headers);
    let caller = shared.caller(KIND, key.as_deref());
    match caller {
        Caller::Project(project) => Ok(project),
        Caller::Missing => {
            shared.refuse(KIND, caller, model, Outcome::BadKey, 401);
            Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API from your browser and are prompted for a username and password. You can obtain an API key from https://platform.openai.com/account/api-keys.",
                None,
                None,
            )))
        }
        Caller::Unknown => {
            shared.refuse(KIND, caller, model, Outcome::BadKey, 401);
            let shown = masked(key.as_deref().unwrap_or_default());
            Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                &format!(
                    "Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
                ),
                None,
                Some("invalid_api_key"),
            )))
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

/// What a body asked for besides the image itself.
#[derive(Debug)]
struct Asked {
    model: Option<String>,
    parsed: Parsed,
    /// `response_format: "url"`.
    as_link: bool,
    /// The `size` as written (`1536x1024`, `auto`), echoed in the answer.
    size: Option<String>,
}

/// The request fields both endpoints share, from `(name, value)` pairs whatever their
/// encoding. Errors are OpenAI's 400 message and the parameter it names.
fn asked(
    field: impl Fn(&str) -> Option<Value>,
    references: Vec<ReferenceImage>,
) -> Result<Asked, (Invalid, &'static str)> {
    let text = |name: &'static str| -> Result<Option<String>, (Invalid, &'static str)> {
        match field(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err((
                Invalid(format!(
                    "Invalid type for '{name}': expected a string, but got {}.",
                    kind_of(&other)
                )),
                name,
            )),
        }
    };
    let prompt = text("prompt")?
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| {
            (
                Invalid("Missing required parameter: 'prompt'.".to_owned()),
                "prompt",
            )
        })?;
    let model = text("model")?
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty());
    let n = match field("n") {
        None | Some(Value::Null) => 1,
        Some(value) => {
            let n = match &value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            match n {
                Some(n @ 1..=MAX_N) => u32::try_from(n).unwrap_or(1),
                _ => {
                    return Err((
                        Invalid(format!(
                            "Invalid value: {value}. Expected an integer between 1 and {MAX_N}."
                        )),
                        "n",
                    ));
                }
            }
        }
    };
    let size = text("size")?;
    let shape = match size.as_deref() {
        None | Some("auto") => None,
        Some(written) => Some(shape_of(written).ok_or_else(|| {
            (
                Invalid(format!(
                    "Invalid value: '{written}'. Supported values are: 'auto' and WIDTHxHEIGHT with sides of 256 to 4096 pixels, such as '1024x1024', '1536x1024' and '1024x1536'."
                )),
                "size",
            )
        })?),
    };
    let as_link = match text("response_format")?.as_deref() {
        None | Some("b64_json") => false,
        Some("url") => true,
        Some(other) => {
            return Err((
                Invalid(format!(
                    "Invalid value: '{other}'. Supported values are: 'url' and 'b64_json'."
                )),
                "response_format",
            ));
        }
    };
    let mut request = GenerateRequest::new(prompt).with_count(n);
    request.reference_images = references;
    if let Some((ratio, image_size)) = shape {
        request.aspect_ratio = Some(ratio);
        request.size = Some(image_size);
    }
    Ok(Asked {
        model,
        parsed: Parsed {
            request,
            wants_image: true,
            wants_text: false,
        },
        as_link,
        size,
    })
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `WIDTHxHEIGHT` as the aspect ratio it has and the nearest size the renderer draws (the
/// image keeps the shape; its long side is 512, 1024, 2048 or 4096 pixels).
fn shape_of(written: &str) -> Option<(AspectRatio, ImageSize)> {
    let (w, h) = written.trim().split_once('x')?;
    let (w, h): (u32, u32) = (w.parse().ok()?, h.parse().ok()?);
    if !(256..=4096).contains(&w) || !(256..=4096).contains(&h) {
        return None;
    }
    let gcd = {
        let (mut a, mut b) = (w, h);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    let ratio = AspectRatio::new(u16::try_from(w / gcd).ok()?, u16::try_from(h / gcd).ok()?)?;
    let size = match w.max(h) {
        0..=512 => ImageSize::Half,
        513..=1536 => ImageSize::OneK,
        1537..=3072 => ImageSize::TwoK,
        _ => ImageSize::FourK,
    };
    Some((ratio, size))
}

/// Reads the body, or answers a body problem in OpenAI's shape (recorded).
fn read_body(
    shared: &Shared,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, Box<Response>> {
    http_util::body(body).map_err(|problem| {
        let caller = shared.caller(KIND, bearer(headers).as_deref());
        Box::new(match problem {
            BodyProblem::TooLarge => {
                shared.refuse(KIND, caller, None, Outcome::TooLarge, 413);
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!(
                        "The request body must be less than {} bytes.",
                        crate::MAX_BODY_BYTES
                    ),
                    None,
                    None,
                )
            }
            BodyProblem::Unreadable(why) => {
                shared.refuse(KIND, caller, None, Outcome::BadRequest, 400);
                error(
                    StatusCode::BAD_REQUEST,
                    &format!("The request body could not be read: {why}"),
                    None,
                    None,
                )
            }
        })
    })
}

/// `POST /v1/images/generations`.
async fn generations(
    State(state): State<Arc<OpenAi>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let shared = &state.shared;
    let body = match read_body(shared, &headers, body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let value = serde_json::from_slice::<Value>(&body).ok();
    let named = value
        .as_ref()
        .and_then(|v| v.get("model").and_then(Value::as_str).map(str::to_owned));
    let project = match authenticate(shared, &headers, named.as_deref()) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    let Some(object) = value.filter(Value::is_object) else {
        shared.refuse(
            KIND,
            Caller::Project(project),
            None,
            Outcome::BadRequest,
            400,
        );
        return error(
            StatusCode::BAD_REQUEST,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.",
            None,
            None,
        );
    };
    let asked = asked(|name| object.get(name).cloned(), Vec::new());
    answer(&state, &headers, project, named, asked).await
}

/// `POST /v1/images/edits`: multipart with `prompt`, the images as `image[]` (or `image`),
/// and the generation fields; a `mask` is read and ignored.
async fn edits(
    State(state): State<Arc<OpenAi>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let shared = &state.shared;
    let body = match read_body(shared, &headers, body) {
        Ok(body) => body,
        Err(response) => return *response,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let form = multipart(body, &content_type).await;
    let named = form
        .as_ref()
        .ok()
        .and_then(|f| f.text("model"))
        .map(str::to_owned);
    let project = match authenticate(shared, &headers, named.as_deref()) {
        Ok(project) => project,
        Err(response) => return *response,
    };
    let refuse = |message: String, param: &str| {
        shared.refuse(
            KIND,
            Caller::Project(project),
            named.as_deref(),
            Outcome::BadRequest,
            400,
        );
        error(StatusCode::BAD_REQUEST, &message, Some(param), None)
    };
    let form = match form {
        Ok(form) => form,
        Err(message) => return refuse(message, "body"),
    };
    let mut references = Vec::new();
    for (i, bytes) in form.images.iter().enumerate() {
        match ReferenceImage::sniffed(bytes.clone()) {
            Ok(image) => references.push(image),
            Err(_) => {
                return refuse(
                    format!(
                        "Invalid input image {}: the file ({} bytes) is not a PNG, JPEG, WebP or GIF image.",
                        i + 1,
                        bytes.len()
                    ),
                    "image",
                );
            }
        }
    }
    if references.is_empty() {
        return refuse("Missing required parameter: 'image'.".to_owned(), "image");
    }
    let asked = asked(
        |name| form.text(name).map(|t| Value::String(t.to_owned())),
        references,
    );
    answer(&state, &headers, project, named, asked).await
}

/// A multipart form: its text fields and its images, in order.
#[derive(Debug, Default)]
struct Form {
    fields: Vec<(String, String)>,
    images: Vec<Bytes>,
}

impl Form {
    fn text(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn multipart(body: Bytes, content_type: &str) -> Result<Form, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        "Invalid Content-Type header: the body must be multipart/form-data with a boundary."
            .to_owned()
    })?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut form = Form::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(form),
            Err(e) => return Err(format!("The multipart body could not be read: {e}")),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let data = field
            .bytes()
            .await
            .map_err(|e| format!("The multipart field '{name}' could not be read: {e}"))?;
        match name.as_str() {
            "image" | "image[]" => form.images.push(data),
            "mask" => {}
            _ => form
                .fields
                .push((name, String::from_utf8_lossy(&data).into_owned())),
        }
    }
}

/// Sends what was asked to the key's project and answers as OpenAI does.
async fn answer(
    state: &OpenAi,
    headers: &HeaderMap,
    project: usize,
    named: Option<String>,
    asked: Result<Asked, (Invalid, &'static str)>,
) -> Response {
    let shared = &state.shared;
    let asked = match asked {
        Ok(asked) => asked,
        Err((Invalid(message), param)) => {
            shared.refuse(
                KIND,
                Caller::Project(project),
                named.as_deref(),
                Outcome::BadRequest,
                400,
            );
            return error(StatusCode::BAD_REQUEST, &message, Some(param), None);
        }
    };
    // No model: the project's first, as a server hosting one model answers.
    let model = match asked.model.clone().or_else(|| first_model(shared, project)) {
        Some(model) => model,
        None => return http_util::wire(model_not_found(KIND, "")),
    };
    let called = shared.call(project, &model, &asked.parsed).await;
    let now = shared.clock.now();
    let headroom = shared
        .projects
        .get(project)
        .map(|p| p.upstream.headroom(&model))
        .unwrap_or_default();
    let mut response_headers = HeaderMap::new();
    openai_rate_limit_headers(&mut response_headers, &headroom, now);
    let id = shared.next_response();
    if let Ok(value) = HeaderValue::from_str(&format!("req_emulator{id:021x}")) {
        response_headers.insert("x-request-id", value);
    }
    let images = match called {
        Called::Served(images) => images,
        Called::Rejected(answer) => {
            let mut answer: WireAnswer = answer;
            answer.headers.extend(response_headers);
            return http_util::wire(answer);
        }
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let revised = model.to_ascii_lowercase().starts_with("dall-e-3");
    let data: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            let mut entry = if asked.as_link {
                let file = format!("{id:016x}-{i}.png");
                state.keep(&file, image.clone());
                json!({"url": format!("http://{host}/emulator/openai/images/{file}")})
            } else {
                json!({"b64_json": base64::engine::general_purpose::STANDARD.encode(&image.bytes)})
            };
            if revised && let Some(object) = entry.as_object_mut() {
                object.insert(
                    "revised_prompt".to_owned(),
                    json!(asked.parsed.request.prompt),
                );
            }
            entry
        })
        .collect();
    let usage = usage_of(&asked.parsed.request);
    let output = images.len() as u64 * OUTPUT_TOKENS_PER_IMAGE;
    let input = usage
        .tokens
        .saturating_sub(usage.images * OUTPUT_TOKENS_PER_IMAGE);
    let references = asked.parsed.request.reference_images.len() as u64;
    let body = json!({
        "created": now.as_second(),
        "background": "opaque",
        "data": data,
        "output_format": "png",
        "quality": "medium",
        "size": asked.size.as_deref().unwrap_or("auto"),
        "usage": {
            "total_tokens": input + output,
            "input_tokens": input,
            "output_tokens": output,
            "input_tokens_details": {"text_tokens": input, "image_tokens": references * OUTPUT_TOKENS_PER_IMAGE},
        },
    });
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PLAIN_JSON));
    http_util::raw(StatusCode::OK, response_headers, body.to_string())
}

pub(crate) fn first_model(shared: &Shared, project: usize) -> Option<String> {
    shared
        .projects
        .get(project)?
        .upstream
        .config()
        .pools
        .first()?
        .models
        .first()
        .cloned()
}

impl OpenAi {
    fn keep(&self, file: &str, image: Image) {
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        if links.len() == KEPT_IMAGES {
            links.pop_front();
        }
        links.push_back((file.to_owned(), image));
    }
}

/// `GET /emulator/openai/images/{file}`: an image answered as a link, without a key (OpenAI's
/// links are signed URLs that need none).
async fn download(State(state): State<Arc<OpenAi>>, Path(file): Path<String>) -> Response {
    let found = state
        .links
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, image)| image.clone());
    match found {
        Some(image) => {
            let mut headers = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(&image.mime_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            http_util::raw(StatusCode::OK, headers, image.bytes)
        }
        None => error(
            StatusCode::NOT_FOUND,
            &format!(
                "No image `{file}`: the emulator keeps the last {KEPT_IMAGES} images answered as links."
            ),
            None,
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_their_shape_and_keys_are_masked() {
        let (ratio, size) = shape_of("1536x1024").unwrap();
        assert_eq!(
            (ratio.width(), ratio.height(), size),
            (3, 2, ImageSize::OneK)
        );
        let (ratio, size) = shape_of("1024x1792").unwrap();
        assert_eq!(
            (ratio.width(), ratio.height(), size),
            (4, 7, ImageSize::TwoK)
        );
        assert_eq!(shape_of("256x256").unwrap().1, ImageSize::Half);
        for bad in ["512", "0x512", "100x100", "5000x1024", "axb", ""] {
            assert!(shape_of(bad).is_none(), "{bad}");
        }
        assert_eq!(masked("short-key"), "****");
        assert_eq!(masked("sk-proj-0123456789abcdef"), "sk-****cdef");
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer  k-1 "),
        );
        assert_eq!(bearer(&headers).as_deref(), Some("k-1"));
    }
}

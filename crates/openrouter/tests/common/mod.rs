//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use imagegate_core::{
    Error, GenerateRequest, GenerateResponse, ImageProvider, ServedBy, clock::ManualClock,
    secret::ApiKey,
};
use imagegate_openrouter::{OpenRouterProvider, parse_error, parse_key_info, parse_response};
use imagegate_testkit::Fixture;
use jiff::Timestamp;

/// The prompt sent when a fixture does not name one.
pub const PROMPT: &str = "a watercolor lighthouse at dawn";

/// Runs a fixture through the pure parser of its endpoint. Key-endpoint answers parse into
/// `KeyInfo`; a success is reported as a response with no images (the table checks
/// `images: 0`, the key test checks the values).
pub fn parse_fixture(fixture: &Fixture) -> Result<GenerateResponse, Error> {
    let (status, headers, body, now) = (
        fixture.status(),
        fixture.headers(),
        fixture.body(),
        fixture.now(),
    );
    if fixture.id.starts_with("openrouter/key/") {
        if !status.is_success() {
            return Err(parse_error(status, &headers, &body, now));
        }
        parse_key_info(&body)?;
        return Ok(GenerateResponse::new(
            Vec::new(),
            ServedBy::new("openrouter", "key", None),
        ));
    }
    parse_response(status, &headers, &body, now)
}

/// The provider under test, pointed at `base_url`, with a clock frozen at `now`.
pub fn provider(base_url: &str, now: Timestamp, key: ApiKey) -> OpenRouterProvider {
    OpenRouterProvider::new(key)
        .with_base_url(base_url)
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(now)))
}

/// The request a chat-completions fixture expects us to send, rebuilt as a `GenerateRequest`
/// from its `request.body_json` (model, prompt, image_config); `None` for other endpoints.
pub fn request_for(fixture: &Fixture) -> Option<GenerateRequest> {
    if !fixture.id.starts_with("openrouter/chat-completions/") {
        return None;
    }
    let body = fixture
        .request
        .as_ref()
        .and_then(|r| r.body_json.clone())
        .unwrap_or_default();
    let prompt = body["messages"][0]["content"].as_str().unwrap_or(PROMPT);
    let mut request = GenerateRequest::new(prompt);
    if let Some(model) = body["model"].as_str() {
        request = request.with_model(model);
    }
    if let Some(ratio) = body["image_config"]["aspect_ratio"].as_str() {
        request = request.with_aspect_ratio(ratio.parse().unwrap());
    }
    if let Some(size) = body["image_config"]["image_size"].as_str() {
        request = request.with_size(size.parse().unwrap());
    }
    Some(request)
}

/// A provider as the conformance suite wants it.
pub fn dyn_provider(base_url: &str, now: Timestamp, key: ApiKey) -> Arc<dyn ImageProvider> {
    Arc::new(provider(base_url, now, key))
}

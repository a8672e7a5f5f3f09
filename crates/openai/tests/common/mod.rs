//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use imagegate_core::{
    Error, GenerateRequest, GenerateResponse, ImageProvider, ReferenceImage, clock::ManualClock,
    secret::ApiKey,
};
use imagegate_openai::{OpenAiProvider, parse_response};
use imagegate_testkit::Fixture;
use jiff::Timestamp;

/// The prompt sent when a fixture does not name one.
pub const PROMPT: &str = "a watercolor lighthouse at dawn";

/// A 1x1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Runs a fixture through the pure parser.
pub fn parse_fixture(fixture: &Fixture) -> Result<GenerateResponse, Error> {
    let model = fixture
        .request
        .as_ref()
        .and_then(|r| r.body_json.as_ref())
        .and_then(|b| b["model"].as_str())
        .unwrap_or(imagegate_openai::DEFAULT_MODEL)
        .to_owned();
    parse_response(
        fixture.status(),
        &fixture.headers(),
        &fixture.body(),
        &model,
        fixture.now(),
    )
}

/// The provider under test, pointed at `server` (the API root is `{server}/v1`), with a clock
/// frozen at `now`.
pub fn provider(server: &str, now: Timestamp, key: ApiKey) -> OpenAiProvider {
    OpenAiProvider::new(key)
        .with_base_url(&format!("{server}/v1"))
        .unwrap()
        .with_clock(Arc::new(ManualClock::new(now)))
}

/// The request a fixture expects us to send, rebuilt from its `request.body_json` (model,
/// prompt, n, size as an aspect ratio); edits get one reference image. `None` for fixtures
/// without a request (the link answer, which costs a second request: tests/http.rs).
pub fn request_for(fixture: &Fixture) -> Option<GenerateRequest> {
    let expected = fixture.request.as_ref()?;
    let body = expected.body_json.clone().unwrap_or_default();
    let mut request = GenerateRequest::new(body["prompt"].as_str().unwrap_or(PROMPT));
    if let Some(model) = body["model"].as_str() {
        request = request.with_model(model);
    }
    if let Some(n) = body["n"].as_u64() {
        request = request.with_count(u32::try_from(n).unwrap());
    }
    if let Some(size) = body["size"].as_str() {
        let (w, h) = size.split_once('x').unwrap();
        let (w, h): (u32, u32) = (w.parse().unwrap(), h.parse().unwrap());
        let ratio = if w > h {
            "16:9"
        } else if w < h {
            "9:16"
        } else {
            "1:1"
        };
        request = request.with_aspect_ratio(ratio.parse().unwrap());
    }
    if fixture.id.starts_with("openai/images-edits/") {
        request = request.with_reference_image(ReferenceImage::new(PNG.to_vec(), "image/png"));
    }
    Some(request)
}

/// A provider as the conformance suite wants it.
pub fn dyn_provider(server: &str, now: Timestamp, key: ApiKey) -> Arc<dyn ImageProvider> {
    Arc::new(provider(server, now, key))
}

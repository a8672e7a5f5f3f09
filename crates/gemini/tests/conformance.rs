//! The testkit's conformance suite: every `fixtures/gemini` exchange served by a fresh wiremock
//! server to the real provider, checking the outcome, one request per call, the request's
//! method, path and body, and that the key travels only in a header.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use base64::Engine as _;
use imagegate_core::{GenerateRequest, ImageProvider, ManualClock, ReferenceImage};
use imagegate_gemini::GeminiProvider;
use imagegate_testkit::Fixture;
use imagegate_testkit::conformance::Suite;
use serde_json::Value;

/// The request a fixture's exchange answers: the model from its path, and the prompt, options
/// and reference images read back from the body it says we send.
fn request_for(fixture: &Fixture) -> Option<GenerateRequest> {
    if fixture.id.starts_with("gemini/batch/") {
        return None; // the Batch API's calls: tests/batch_calls.rs
    }
    let expected = fixture.request.as_ref()?;
    let path = expected.path.as_deref()?;
    let model = path.strip_prefix("/v1beta/models/")?.split(':').next()?;
    let mut request = GenerateRequest::new("a watercolor lighthouse at dawn").with_model(model);
    let Some(body) = &expected.body_json else {
        return Some(request);
    };
    if let Some(parts) = body.pointer("/contents/0/parts").and_then(Value::as_array) {
        let text: Vec<&str> = parts.iter().filter_map(|p| p["text"].as_str()).collect();
        request.prompt = text.join("\n");
        for inline in parts.iter().filter_map(|p| p.get("inlineData")) {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(inline["data"].as_str().unwrap())
                .unwrap();
            request = request.with_reference_image(ReferenceImage::new(
                bytes,
                inline["mimeType"].as_str().unwrap(),
            ));
        }
    }
    if let Some(prompt) = body.pointer("/instances/0/prompt").and_then(Value::as_str) {
        request.prompt = prompt.to_owned();
    }
    let config = body
        .pointer("/generationConfig/imageConfig")
        .or_else(|| body.get("parameters"));
    if let Some(config) = config {
        if let Some(ratio) = config["aspectRatio"].as_str() {
            request = request.with_aspect_ratio(ratio.parse().unwrap());
        }
        if let Some(size) = config["imageSize"]
            .as_str()
            .or(config["sampleImageSize"].as_str())
        {
            request = request.with_size(size.parse().unwrap());
        }
        if let Some(count) = config["sampleCount"].as_u64() {
            request = request.with_count(u32::try_from(count).unwrap());
        }
    }
    Some(request)
}

#[tokio::test]
async fn every_fixture_conforms_over_http() {
    let suite = Suite {
        provider_dir: "gemini",
        make_provider: Box::new(|base, now, key| {
            Arc::new(
                GeminiProvider::new(key)
                    .with_base_url(base)
                    .unwrap()
                    .with_clock(Arc::new(ManualClock::new(now))),
            ) as Arc<dyn ImageProvider>
        }),
        request_for: Box::new(request_for),
    };
    let ran = suite
        .run()
        .await
        .unwrap_or_else(|report| panic!("{report}"));
    let all = Fixture::load_dir("gemini")
        .unwrap()
        .iter()
        .filter(|f| !f.id.starts_with("gemini/batch/"))
        .count();
    assert_eq!(ran, all, "every gemini fixture names its request");
}

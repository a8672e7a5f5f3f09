//! Request bodies pinned by snapshot: what OpenRouter receives for text-to-image and editing;
//! and how every error fixture renders (kind, facts and message), so a change in wording or
//! classification shows up in review.
#![allow(clippy::unwrap_used)] // test helpers, like test functions, may unwrap

mod common;

use imagegate_core::{GenerateRequest, ImageSize, ReferenceImage};
use imagegate_openrouter::build_request;
use imagegate_testkit::Fixture;

const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

#[test]
fn text_to_image_request_body() {
    let request = GenerateRequest::new("A watercolor lighthouse at dawn")
        .with_aspect_ratio("16:9".parse().unwrap())
        .with_size(ImageSize::TwoK);
    insta::assert_json_snapshot!(build_request(&request, "google/gemini-3-pro-image-preview"));
}

#[test]
fn editing_request_body_with_a_reference_image() {
    let request = GenerateRequest::new("Make it night, keep the lighthouse")
        .with_reference_image(ReferenceImage::new(PNG, "image/png"))
        .with_seed(7);
    insta::assert_json_snapshot!(build_request(&request, "google/gemini-2.5-flash-image"));
}

#[test]
fn the_documented_request_is_what_we_send() {
    // the documented image request (fixture openrouter/chat-completions/200-success-pro-4k), without the `models` and `provider`
    // routing fields (fallback is the router's job).
    let request = GenerateRequest::new(
        "Create a picture of a nano banana dish in a fancy restaurant with a Gemini theme",
    )
    .with_aspect_ratio("16:9".parse().unwrap())
    .with_size(ImageSize::FourK);
    let expected = serde_json::json!({
        "model": "google/gemini-3-pro-image-preview",
        "messages": [{"role": "user", "content": "Create a picture of a nano banana dish in a fancy restaurant with a Gemini theme"}],
        "modalities": ["image", "text"],
        "image_config": {"aspect_ratio": "16:9", "image_size": "4K"}
    });
    assert_eq!(
        build_request(&request, "google/gemini-3-pro-image-preview"),
        expected
    );
}

#[test]
fn error_renderings() {
    let mut lines = Vec::new();
    for fixture in Fixture::load_dir("openrouter").unwrap() {
        let Err(error) = common::parse_fixture(&fixture) else {
            continue;
        };
        let id = fixture.id.trim_start_matches("openrouter/");
        let q = error.quota();
        lines.push(format!(
            "{id}\n  {kind} temporary={temporary} http={http:?} code={code:?} retry_after={retry:?}\n  \
             quota: dimension={dim:?} id={qid:?} value={value:?} model={model:?} reset_at={reset:?}\n  \
             message: {message}",
            kind = error.kind(),
            temporary = error.is_temporary(),
            http = error.http_status(),
            code = error.upstream_code(),
            retry = error.retry_after(),
            dim = q.dimension,
            qid = q.quota_id,
            value = q.quota_value,
            model = q.model,
            reset = q.reset_at,
            message = error.message(),
        ));
    }
    insta::assert_snapshot!(lines.join("\n"));
}

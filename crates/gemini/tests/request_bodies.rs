//! Snapshots of the bodies we send: a change to what goes on the wire shows up in review.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use imagegate_core::{GenerateRequest, ImageSize, ReferenceImage};
use imagegate_gemini::{build_request, parse_response};
use imagegate_testkit::Fixture;

/// The 1x1 PNG used in fixtures, as bytes.
fn tiny_png() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==")
        .unwrap()
}

#[test]
fn text_to_image_on_a_gemini_3_model() {
    let request = GenerateRequest::new("A watercolor lighthouse at dawn")
        .with_aspect_ratio("16:9".parse().unwrap())
        .with_size(ImageSize::TwoK);
    insta::assert_json_snapshot!(build_request(&request, "gemini-3-pro-image-preview"));
}

#[test]
fn text_to_image_on_gemini_2_5_drops_the_size() {
    let request = GenerateRequest::new("A watercolor lighthouse at dawn")
        .with_aspect_ratio("1:1".parse().unwrap())
        .with_size(ImageSize::FourK)
        .with_seed(42);
    insta::assert_json_snapshot!(build_request(&request, "gemini-2.5-flash-image"));
}

#[test]
fn editing_with_a_reference_image() {
    let request = GenerateRequest::new("Make the sky purple")
        .with_reference_image(ReferenceImage::new(tiny_png(), "image/png"));
    insta::assert_json_snapshot!(build_request(&request, "gemini-2.5-flash-image"));
}

#[test]
fn imagen_predict() {
    let request = GenerateRequest::new("a hamster in a hat")
        .with_count(4)
        .with_aspect_ratio("4:3".parse().unwrap())
        .with_size(ImageSize::TwoK);
    insta::assert_json_snapshot!(build_request(&request, "imagen-4.0-generate-001"));
}

/// What each error fixture becomes, one line each (kind, temporary, retry, quota, message):
/// the wording a person reads, pinned so a change in it is reviewed.
#[test]
fn error_renderings() {
    let mut lines = Vec::new();
    for f in Fixture::load_dir("gemini").unwrap() {
        if f.id.starts_with("gemini/batch/") {
            continue; // the Batch API's answers: tests/batch_fixtures.rs
        }
        if let Err(e) = parse_response(f.status(), &f.headers(), &f.body(), f.now()) {
            let q = e.quota();
            lines.push(format!(
                "{}: {} temporary={} retry_after={:?} dimension={:?} value={:?} model={:?} | {}",
                f.id,
                e.kind(),
                e.is_temporary(),
                e.retry_after(),
                q.dimension,
                q.quota_value,
                q.model,
                e.message()
            ));
        }
    }
    insta::assert_snapshot!(lines.join("\n"));
}

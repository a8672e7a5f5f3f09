//! Snapshots of what is sent: the URL per location and the bodies (the shared Gemini wire
//! format, so these match the Gemini API's bodies by construction).
#![allow(clippy::unwrap_used)]

mod common;

use imagegate_core::{GenerateRequest, secret::ApiKey};
use imagegate_vertex::{Credentials, VertexProvider};

fn at(location: &str) -> VertexProvider {
    VertexProvider::new(
        Credentials::AccessToken(ApiKey::new("t")),
        "my-project",
        location,
    )
    .unwrap()
}

#[test]
fn urls_per_location() {
    insta::assert_json_snapshot!([
        at("us-central1").url_for("gemini-2.5-flash-image"),
        at("europe-west4").url_for("imagen-4.0-generate-001"),
        at("global").url_for("gemini-3-pro-image-preview"),
    ]);
}

#[test]
fn gemini_and_imagen_bodies() {
    let request = GenerateRequest::new(common::PROMPT).with_aspect_ratio("16:9".parse().unwrap());
    insta::assert_json_snapshot!([
        imagegate_gemini_wire_body(&request, "gemini-2.5-flash-image"),
        imagegate_gemini_wire_body(&request.clone().with_count(2), "imagen-4.0-generate-001"),
    ]);
}

fn imagegate_gemini_wire_body(request: &GenerateRequest, model: &str) -> serde_json::Value {
    imagegate_gemini_wire::build_request(request, model)
}

//! The JSON bodies we send: `generateContent` for Gemini image models, `:predict` for Imagen.
//!
//! Pure functions of the request and the model, so the bodies can be snapshot-tested and shown
//! by `imagegate diagnose` without any HTTP.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imagegate_core::GenerateRequest;
use serde_json::{Map, Value, json};

use crate::models::{
    Endpoint, IMAGEN_MAX_SAMPLES, endpoint_for, imagen_takes_size, normalize_model,
    takes_image_size,
};

/// The body for `request` sent to `model`, in the shape `model`'s endpoint expects, on the
/// Gemini API and on Vertex AI alike (see
/// [`endpoint_for`]).
///
/// - `generateContent`: one user turn with the prompt as a text part and each reference image
///   as an `inlineData` part; `responseModalities: ["TEXT", "IMAGE"]` (the text is kept as the
///   model's note); `imageConfig.aspectRatio`, and `imageSize` only for models that accept it
///   (gemini-2.5-flash-image rejects nothing but ignores it, the docs say it takes only the
///   ratio). No `candidateCount`: image models refuse values above 1, and 1 is the default.
/// - `:predict` (Imagen): `instances[0].prompt`, `parameters.sampleCount` (the request's count,
///   at most 4), `aspectRatio`, and `sampleImageSize` on Imagen 4 Standard and Ultra.
pub fn build_request(request: &GenerateRequest, model: &str) -> Value {
    let model = normalize_model(model);
    match endpoint_for(model) {
        Endpoint::GenerateContent => generate_content_body(request, model),
        Endpoint::Predict => predict_body(request, model),
    }
}

fn generate_content_body(request: &GenerateRequest, model: &str) -> Value {
    let mut parts = Vec::new();
    if !request.prompt.trim().is_empty() {
        parts.push(json!({ "text": request.prompt }));
    }
    for image in &request.reference_images {
        parts.push(json!({
            "inlineData": { "mimeType": image.mime_type, "data": STANDARD.encode(&image.bytes) }
        }));
    }

    let mut image_config = Map::new();
    if let Some(ratio) = request.aspect_ratio {
        image_config.insert("aspectRatio".into(), Value::String(ratio.to_string()));
    }
    if let Some(size) = request.size
        && takes_image_size(model)
    {
        image_config.insert("imageSize".into(), Value::String(size.as_str().into()));
    }

    let mut config = Map::new();
    config.insert("responseModalities".into(), json!(["TEXT", "IMAGE"]));
    if !image_config.is_empty() {
        config.insert("imageConfig".into(), Value::Object(image_config));
    }
    if let Some(seed) = request.seed {
        // generationConfig.seed is an int32 on the wire; larger seeds are folded into range
        // rather than rejected, so the same seed always sends the same value.
        config.insert("seed".into(), json!((seed % (i32::MAX as u64)) as i64));
    }

    json!({
        "contents": [{ "role": "user", "parts": parts }],
        "generationConfig": Value::Object(config),
    })
}

fn predict_body(request: &GenerateRequest, model: &str) -> Value {
    let mut parameters = Map::new();
    parameters.insert(
        "sampleCount".into(),
        json!(request.count.clamp(1, IMAGEN_MAX_SAMPLES)),
    );
    if let Some(ratio) = request.aspect_ratio {
        parameters.insert("aspectRatio".into(), Value::String(ratio.to_string()));
    }
    if let Some(size) = request.size
        && imagen_takes_size(model)
    {
        parameters.insert(
            "sampleImageSize".into(),
            Value::String(size.as_str().into()),
        );
    }
    json!({
        "instances": [{ "prompt": request.prompt }],
        "parameters": Value::Object(parameters),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegate_core::{ImageSize, ReferenceImage};

    #[test]
    fn image_size_only_for_models_that_take_it() {
        let request = GenerateRequest::new("a lighthouse")
            .with_size(ImageSize::TwoK)
            .with_aspect_ratio("16:9".parse().unwrap());
        let old = build_request(&request, "gemini-2.5-flash-image");
        assert_eq!(
            old["generationConfig"]["imageConfig"],
            json!({"aspectRatio": "16:9"})
        );
        let new = build_request(&request, "gemini-3-pro-image-preview");
        assert_eq!(
            new["generationConfig"]["imageConfig"],
            json!({"aspectRatio": "16:9", "imageSize": "2K"})
        );
        assert!(new["generationConfig"].get("candidateCount").is_none());
    }

    #[test]
    fn reference_images_follow_the_prompt_as_inline_data() {
        let request = GenerateRequest::new("make it blue")
            .with_reference_image(ReferenceImage::new(vec![1u8, 2, 3], "image/png"));
        let body = build_request(&request, "gemini-2.5-flash-image");
        assert_eq!(
            body["contents"][0]["parts"],
            json!([{"text": "make it blue"}, {"inlineData": {"mimeType": "image/png", "data": "AQID"}}])
        );
    }

    #[test]
    fn imagen_sample_count_is_capped_at_four() {
        let body = build_request(
            &GenerateRequest::new("x").with_count(9),
            "imagen-4.0-generate-001",
        );
        assert_eq!(body["parameters"]["sampleCount"], 4);
        assert_eq!(body["instances"][0]["prompt"], "x");
    }
}

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

/// [`build_request`]'s body as the bytes to send, written straight into one buffer of the right
/// size: each reference image is base64-encoded into its place in the body, never into a
/// string of its own first. With ten 10 MB references that saves the 133 MB of strings the
/// JSON tree would hold beside the body while it is serialized (docs/performance.md,
/// "Memory"). The bytes parse to exactly the JSON [`build_request`] returns.
pub fn request_bytes(request: &GenerateRequest, model: &str) -> Vec<u8> {
    let model = normalize_model(model);
    if endpoint_for(model) == Endpoint::Predict || request.reference_images.is_empty() {
        return serde_json::to_vec(&build_request(request, model)).unwrap_or_default();
    }
    let images: usize = request
        .reference_images
        .iter()
        .map(|i| i.bytes.len().div_ceil(3) * 4 + i.mime_type.len() + 48)
        .sum();
    let mut out = Vec::with_capacity(images + request.prompt.len() * 2 + 512);
    // Keys in the order serde_json writes a `Value` (sorted), so both forms read the same.
    out.extend_from_slice(b"{\"contents\":[{\"parts\":[");
    let mut first = true;
    if let Some(text) = text_part(request) {
        out.extend_from_slice(text.to_string().as_bytes());
        first = false;
    }
    for image in &request.reference_images {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(b"{\"inlineData\":{\"data\":\"");
        let start = out.len();
        out.resize(start + image.bytes.len().div_ceil(3) * 4, 0);
        // The buffer was sized for padded base64, so this cannot fail; the standard alphabet
        // needs no JSON escaping.
        let written = out.get_mut(start..).map_or(0, |slot| {
            STANDARD.encode_slice(&image.bytes, slot).unwrap_or(0)
        });
        out.truncate(start + written);
        out.extend_from_slice(b"\",\"mimeType\":");
        out.extend_from_slice(
            Value::String(image.mime_type.clone())
                .to_string()
                .as_bytes(),
        );
        out.extend_from_slice(b"}}");
    }
    out.extend_from_slice(b"],\"role\":\"user\"}],\"generationConfig\":");
    out.extend_from_slice(generation_config(request, model).to_string().as_bytes());
    out.push(b'}');
    out
}

fn text_part(request: &GenerateRequest) -> Option<Value> {
    (!request.prompt.trim().is_empty()).then(|| json!({ "text": request.prompt }))
}

fn generate_content_body(request: &GenerateRequest, model: &str) -> Value {
    let mut parts = Vec::new();
    if let Some(text) = text_part(request) {
        parts.push(text);
    }
    for image in &request.reference_images {
        parts.push(json!({
            "inlineData": { "mimeType": image.mime_type, "data": STANDARD.encode(&image.bytes) }
        }));
    }
    json!({
        "contents": [{ "role": "user", "parts": parts }],
        "generationConfig": generation_config(request, model),
    })
}

fn generation_config(request: &GenerateRequest, model: &str) -> Value {
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
    Value::Object(config)
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
    fn request_bytes_are_the_built_body_whatever_the_request() {
        let png = |n: usize| (0..n).map(|i| (i * 7 % 256) as u8).collect::<Vec<u8>>();
        let requests = [
            GenerateRequest::new("a \"quoted\" prompt\nwith a newline and ünïcode")
                .with_reference_image(ReferenceImage::new(png(1), "image/png"))
                .with_reference_image(ReferenceImage::new(png(2), "image/jpeg"))
                .with_reference_image(ReferenceImage::new(png(300_001), "image/webp"))
                .with_size(ImageSize::FourK)
                .with_aspect_ratio("16:9".parse().unwrap())
                .with_seed(u64::MAX),
            GenerateRequest::new("   ")
                .with_reference_image(ReferenceImage::new(png(3), "image/png")),
            GenerateRequest::new("no references"),
        ];
        for request in &requests {
            for model in [
                "gemini-2.5-flash-image",
                "models/gemini-3-pro-image-preview",
                "imagen-4.0-generate-001",
            ] {
                let bytes = request_bytes(request, model);
                let parsed: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(parsed, build_request(request, model), "{model}");
                let compact = serde_json::to_vec(&build_request(request, model)).unwrap();
                assert_eq!(
                    bytes, compact,
                    "{model}: byte for byte what serde_json writes"
                );
            }
        }
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

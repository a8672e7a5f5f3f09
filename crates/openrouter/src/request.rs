//! The chat-completions body for an image request, and what each model accepts.
//!
//! Built as a `serde_json::Value` by a pure function so the exact bytes sent are pinned by
//! snapshot tests and can be compared with the documented request
//! (`samples/openrouter-image-request.json`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use imagegate_core::{AspectRatio, Capabilities, GenerateRequest, ImageSize};
use serde_json::{Value, json};

/// The chat-completions request body for `request` sent to `model`.
///
/// - `modalities: ["image", "text"]`: without it OpenRouter answers with text only.
/// - `image_config`: `aspect_ratio` and `image_size` (`1K`/`2K`/`4K`, `0.5K`) when the request
///   sets them.
/// - Reference images (editing) go in the user message as `image_url` parts holding data URLs,
///   after the text part; a request without them sends the prompt as a plain string.
/// - `seed` when the request sets one. `count` is not sent: image models answer one image per
///   call, and the router splits larger requests (see [`capabilities`]).
pub fn build_request(request: &GenerateRequest, model: &str) -> Value {
    let content = if request.reference_images.is_empty() {
        Value::String(request.prompt.clone())
    } else {
        let mut parts = vec![json!({"type": "text", "text": request.prompt})];
        parts.extend(request.reference_images.iter().map(|image| {
            json!({
                "type": "image_url",
                "image_url": {
                    "url": format!("data:{};base64,{}", image.mime_type, STANDARD.encode(&image.bytes))
                }
            })
        }));
        Value::Array(parts)
    };
    let mut body = json!({
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "modalities": ["image", "text"],
    });
    let mut image_config = serde_json::Map::new();
    if let Some(ratio) = request.aspect_ratio {
        image_config.insert("aspect_ratio".into(), Value::String(ratio.to_string()));
    }
    if let Some(size) = request.size {
        image_config.insert("image_size".into(), Value::String(size.as_str().to_owned()));
    }
    if let Some(object) = body.as_object_mut() {
        if !image_config.is_empty() {
            object.insert("image_config".into(), Value::Object(image_config));
        }
        if let Some(seed) = request.seed {
            object.insert("seed".into(), json!(seed));
        }
    }
    body
}

/// The aspect ratios OpenRouter documents for Gemini image models (openrouter.ai/docs/features/multimodal/image-generation).
const GEMINI_RATIOS: [(u16, u16); 10] = [
    (1, 1),
    (2, 3),
    (3, 2),
    (3, 4),
    (4, 3),
    (4, 5),
    (5, 4),
    (9, 16),
    (16, 9),
    (21, 9),
];

/// The extra ratios only `google/gemini-3.1-flash-image-preview` accepts.
const EXTENDED_RATIOS: [(u16, u16); 4] = [(1, 4), (4, 1), (1, 8), (8, 1)];

/// What `model` can do through OpenRouter.
///
/// Google's image models are known (ratios, sizes, editing); any other model is assumed to
/// take any ratio and size and to accept reference images, and OpenRouter's 400 says otherwise.
/// Every model answers one image per call.
pub fn capabilities(model: &str) -> Capabilities {
    let mut caps = Capabilities::new(1);
    caps.editing = true;
    caps.seed = false;
    let id = model.trim().to_ascii_lowercase();
    let id = id.split(':').next().unwrap_or_default();
    let ratios = |extra: bool| {
        GEMINI_RATIOS
            .iter()
            .chain(if extra { &EXTENDED_RATIOS[..] } else { &[] })
            .filter_map(|(w, h)| AspectRatio::new(*w, *h))
            .collect::<Vec<_>>()
    };
    match id {
        "google/gemini-2.5-flash-image" | "google/gemini-2.5-flash-image-preview" => {
            caps.aspect_ratios = ratios(false);
            caps.sizes = vec![ImageSize::OneK];
        }
        "google/gemini-3-pro-image-preview" => {
            caps.aspect_ratios = ratios(false);
            caps.sizes = vec![ImageSize::OneK, ImageSize::TwoK, ImageSize::FourK];
        }
        "google/gemini-3.1-flash-image-preview" => {
            caps.aspect_ratios = ratios(true);
            caps.sizes = ImageSize::ALL.to_vec();
        }
        _ => {}
    }
    caps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_only_requests_send_the_prompt_as_a_string() {
        let body = build_request(&GenerateRequest::new("a lighthouse"), "m/x");
        assert_eq!(body["messages"][0]["content"], "a lighthouse");
        assert_eq!(body["modalities"], json!(["image", "text"]));
        assert!(body.get("image_config").is_none());
        assert!(body.get("seed").is_none());
    }

    #[test]
    fn known_models_list_their_sizes_and_ratios() {
        let flash = capabilities("google/gemini-2.5-flash-image");
        assert_eq!(flash.sizes, vec![ImageSize::OneK]);
        assert_eq!(flash.aspect_ratios.len(), 10);
        let newest = capabilities("google/gemini-3.1-flash-image-preview");
        assert!(newest.sizes.contains(&ImageSize::Half));
        assert!(
            newest
                .aspect_ratios
                .contains(&AspectRatio::new(8, 1).unwrap())
        );
        let other = capabilities("black-forest-labs/flux.2-pro");
        assert!(other.sizes.is_empty() && other.aspect_ratios.is_empty());
        assert_eq!(other.max_images_per_call, 1);
    }
}

//! The request parsers: request bodies as the real services accept them, into what the
//! emulator needs (a [`GenerateRequest`] for the quota and the renderer, and which parts the
//! answer should have). Pure functions over bytes, so they are fuzzed directly; every failure
//! is a message for the service's 400 body, never a panic.
//!
//! Field names follow proto-JSON: camelCase, and snake_case accepted too, as Google does
//! (docs/emulate.md, "What is honoured").

use base64::Engine as _;
use imagegate_core::{AspectRatio, GenerateRequest, ImageSize, ReferenceImage};
use serde_json::Value;

/// The aspect ratios the Gemini image models document (the last four only on 3.1 Flash Image;
/// the emulator accepts them for every model).
pub(crate) const ASPECT_RATIOS: [&str; 14] = [
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8",
    "8:1",
];

/// The most images one Imagen `:predict` call returns (`sampleCount` 1-4).
pub(crate) const MAX_SAMPLES: u32 = 4;

/// A request the emulator can answer.
#[derive(Clone, Debug)]
pub(crate) struct Parsed {
    /// What counts against the quota and what the renderer draws (model not set).
    pub(crate) request: GenerateRequest,
    /// Whether the answer carries images (`responseModalities`/`modalities` allow them).
    pub(crate) wants_image: bool,
    /// Whether the answer carries a text part too.
    pub(crate) wants_text: bool,
}

/// Why a body was refused: the message of the service's 400.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Invalid(pub(crate) String);

fn invalid(message: impl Into<String>) -> Invalid {
    Invalid(message.into())
}

/// The value at `camel` or `snake`, whichever is present.
fn field<'a>(object: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    object.get(camel).or_else(|| object.get(snake))
}

fn json(body: &[u8]) -> Result<Value, Invalid> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "Invalid JSON payload received. {}",
            e.to_string().replace('\n', " ")
        ))
    })?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(invalid(
            "Invalid JSON payload received. Expected an object at the top level.",
        ))
    }
}

fn aspect_ratio(value: Option<&Value>, at: &str) -> Result<Option<AspectRatio>, Invalid> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value
        .as_str()
        .ok_or_else(|| invalid(format!("Invalid value at '{at}' (TYPE_STRING), {value}")))?;
    if !ASPECT_RATIOS.contains(&text) {
        return Err(invalid(format!(
            "Unsupported aspect ratio '{text}' at '{at}'. Supported: {}.",
            ASPECT_RATIOS.join(", ")
        )));
    }
    text.parse()
        .map(Some)
        .map_err(|_| invalid(format!("Unsupported aspect ratio '{text}' at '{at}'.")))
}

fn image_size(value: Option<&Value>, at: &str) -> Result<Option<ImageSize>, Invalid> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value
        .as_str()
        .ok_or_else(|| invalid(format!("Invalid value at '{at}' (TYPE_STRING), {value}")))?;
    // The service wants the K in upper case; the core parser is more forgiving.
    match text {
        "0.5K" => Ok(Some(ImageSize::Half)),
        "1K" => Ok(Some(ImageSize::OneK)),
        "2K" => Ok(Some(ImageSize::TwoK)),
        "4K" => Ok(Some(ImageSize::FourK)),
        _ => Err(invalid(format!(
            "Unsupported image size '{text}' at '{at}'. Supported: 0.5K, 1K, 2K, 4K."
        ))),
    }
}

/// Decodes an inline image (`data` in standard base64).
fn inline_image(part: &Value, at: &str) -> Result<Option<ReferenceImage>, Invalid> {
    let Some(inline) = field(part, "inlineData", "inline_data") else {
        return Ok(None);
    };
    let mime = field(inline, "mimeType", "mime_type")
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream");
    let data = inline.get("data").and_then(Value::as_str).ok_or_else(|| {
        invalid(format!(
            "* GenerateContentRequest.{at}.inline_data.data: required field is not set"
        ))
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| {
            invalid(format!(
                "Invalid value at '{at}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"
            ))
        })?;
    Ok(Some(ReferenceImage::new(bytes, mime)))
}

/// A Gemini `generateContent` (or `streamGenerateContent`) body: the text parts of every
/// content make the prompt, inline images are references, `generationConfig` gives
/// `responseModalities` and `imageConfig.{aspectRatio,imageSize}`.
pub(crate) fn gemini_generate(body: &[u8]) -> Result<Parsed, Invalid> {
    let value = json(body)?;
    let contents = value
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid("* GenerateContentRequest.contents: contents is not specified"))?;
    let mut texts = Vec::new();
    let mut references = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        let parts = content
            .get("parts")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                invalid(format!(
                    "* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
                ))
            })?;
        for (j, part) in parts.iter().enumerate() {
            let at = format!("contents[{i}].parts[{j}]");
            if let Some(text) = part.get("text") {
                let text = text.as_str().ok_or_else(|| {
                    invalid(format!(
                        "Invalid value at '{at}.text' (TYPE_STRING), {text}"
                    ))
                })?;
                texts.push(text.to_owned());
            } else if let Some(image) = inline_image(part, &at)? {
                references.push(image);
            }
        }
    }
    let prompt = texts.join("\n");
    if prompt.trim().is_empty() {
        return Err(invalid(
            "* GenerateContentRequest.contents: the request has no text prompt",
        ));
    }
    let config = field(&value, "generationConfig", "generation_config");
    let (wants_image, wants_text) = match config
        .and_then(|c| field(c, "responseModalities", "response_modalities"))
    {
        None => (true, true),
        Some(modalities) => {
            let list = modalities.as_array().ok_or_else(|| {
                invalid("Invalid value at 'generation_config.response_modalities', expected a list")
            })?;
            let mut image = false;
            let mut text = false;
            for m in list {
                match m.as_str().map(str::to_ascii_uppercase).as_deref() {
                    Some("IMAGE") => image = true,
                    Some("TEXT") => text = true,
                    _ => {
                        return Err(invalid(format!(
                            "Invalid value at 'generation_config.response_modalities' (type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), {m}"
                        )));
                    }
                }
            }
            (image, text || !image)
        }
    };
    let image_config = config.and_then(|c| field(c, "imageConfig", "image_config"));
    let ratio = aspect_ratio(
        image_config.and_then(|c| field(c, "aspectRatio", "aspect_ratio")),
        "generation_config.image_config.aspect_ratio",
    )?;
    let size = image_size(
        image_config.and_then(|c| field(c, "imageSize", "image_size")),
        "generation_config.image_config.image_size",
    )?;
    if let Some(n) = config.and_then(|c| field(c, "candidateCount", "candidate_count"))
        && n.as_u64() != Some(1)
    {
        return Err(invalid(
            "Multiple candidates is not enabled for this model: candidateCount must be 1.",
        ));
    }
    let mut request = GenerateRequest::new(prompt);
    request.reference_images = references;
    request.aspect_ratio = ratio;
    request.size = size;
    request.seed = config.and_then(|c| c.get("seed")).and_then(Value::as_u64);
    Ok(Parsed {
        request,
        wants_image,
        wants_text,
    })
}

/// An Imagen `predict` body: `instances[0].prompt`, `parameters.{sampleCount, aspectRatio,
/// sampleImageSize}`.
pub(crate) fn imagen_predict(body: &[u8]) -> Result<Parsed, Invalid> {
    let value = json(body)?;
    let instance = value
        .get("instances")
        .and_then(Value::as_array)
        .and_then(|i| i.first())
        .ok_or_else(|| invalid("* PredictRequest.instances: instances is not specified"))?;
    let prompt = instance
        .get("prompt")
        .and_then(Value::as_str)
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| invalid("* PredictRequest.instances[0].prompt: a prompt is required"))?;
    let parameters = value.get("parameters");
    let count = match parameters.and_then(|p| field(p, "sampleCount", "sample_count")) {
        None => 1,
        Some(n) => match n.as_u64() {
            Some(n @ 1..=4) => u32::try_from(n).unwrap_or(1),
            _ => {
                return Err(invalid(format!(
                    "Number of samples must be between 1 and {MAX_SAMPLES}, got {n}."
                )));
            }
        },
    };
    let ratio = aspect_ratio(
        parameters.and_then(|p| field(p, "aspectRatio", "aspect_ratio")),
        "parameters.aspect_ratio",
    )?;
    let size = image_size(
        parameters.and_then(|p| field(p, "sampleImageSize", "sample_image_size")),
        "parameters.sample_image_size",
    )?;
    let mut request = GenerateRequest::new(prompt).with_count(count);
    request.aspect_ratio = ratio;
    request.size = size;
    Ok(Parsed {
        request,
        wants_image: true,
        wants_text: false,
    })
}

/// An OpenRouter chat-completions body: the `model`, the last user message's text (a string
/// or `text` parts) as the prompt and its `image_url` data URLs as references, `modalities`
/// (images only when it names `image`), `image_config.{aspect_ratio,image_size}`.
pub(crate) fn openrouter_chat(body: &[u8]) -> Result<(String, Parsed), Invalid> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("Invalid JSON in request body: {e}")))?;
    if !value.is_object() {
        return Err(invalid("Invalid request body: expected a JSON object"));
    }
    let model = value
        .get("model")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| invalid("No model provided: `model` is required"))?;
    let messages = value
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| invalid("Input required: specify \"prompt\" or \"messages\""))?;
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .ok_or_else(|| invalid("messages: at least one message with role \"user\" is required"))?;
    let mut texts = Vec::new();
    let mut references = Vec::new();
    match last_user.get("content") {
        Some(Value::String(text)) => texts.push(text.clone()),
        Some(Value::Array(parts)) => {
            for (i, part) in parts.iter().enumerate() {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => texts.push(
                        part.get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                invalid(format!("messages content[{i}]: `text` must be a string"))
                            })?
                            .to_owned(),
                    ),
                    Some("image_url") => {
                        let url = part
                            .get("image_url")
                            .and_then(|u| u.get("url").or(Some(u)))
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                invalid(format!(
                                    "messages content[{i}]: `image_url.url` must be a string"
                                ))
                            })?;
                        references.push(data_url(url).ok_or_else(|| {
                            invalid(format!(
                                "messages content[{i}]: the emulator accepts images only as base64 data URLs"
                            ))
                        })?);
                    }
                    _ => {
                        return Err(invalid(format!(
                            "messages content[{i}]: expected a part of type \"text\" or \"image_url\""
                        )));
                    }
                }
            }
        }
        _ => {
            return Err(invalid(
                "messages: the user message's content must be a string or a list of parts",
            ));
        }
    }
    let prompt = texts.join("\n");
    if prompt.trim().is_empty() {
        return Err(invalid("messages: the user message has no text"));
    }
    let wants_image = match value.get("modalities") {
        None => false,
        Some(Value::Array(list)) => list.iter().any(|m| m.as_str() == Some("image")),
        Some(other) => {
            return Err(invalid(format!(
                "modalities: expected a list such as [\"image\", \"text\"], found {other}"
            )));
        }
    };
    let image_config = value.get("image_config");
    let ratio = aspect_ratio(
        image_config.and_then(|c| c.get("aspect_ratio")),
        "image_config.aspect_ratio",
    )
    .map_err(|Invalid(m)| invalid(m.replace("Unsupported", "image_config: unsupported")))?;
    let size = image_size(
        image_config.and_then(|c| c.get("image_size")),
        "image_config.image_size",
    )?;
    let mut request = GenerateRequest::new(prompt);
    request.reference_images = references;
    request.aspect_ratio = ratio;
    request.size = size;
    request.seed = value.get("seed").and_then(Value::as_u64);
    Ok((
        model.to_owned(),
        Parsed {
            request,
            wants_image,
            wants_text: true,
        },
    ))
}

/// The bytes of a `data:<mime>;base64,<data>` URL.
fn data_url(url: &str) -> Option<ReferenceImage> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .ok()?;
    Some(ReferenceImage::new(bytes, mime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn bytes(value: &Value) -> Vec<u8> {
        serde_json::to_vec(value).unwrap()
    }

    #[test]
    fn gemini_reads_prompt_references_modalities_and_image_config_in_both_spellings() {
        let camel = json!({
            "contents": [{"role": "user", "parts": [
                {"text": "a lighthouse"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
            ]}],
            "generationConfig": {"responseModalities": ["IMAGE"],
                "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"}}
        });
        let p = gemini_generate(&bytes(&camel)).unwrap();
        assert_eq!(p.request.prompt, "a lighthouse");
        assert_eq!(p.request.reference_images.len(), 1);
        assert_eq!(p.request.aspect_ratio, Some("16:9".parse().unwrap()));
        assert_eq!(p.request.size, Some(ImageSize::TwoK));
        assert!(p.wants_image && !p.wants_text);
        let snake = json!({
            "contents": [{"parts": [{"text": "x"}]}],
            "generation_config": {"response_modalities": ["TEXT", "IMAGE"],
                "image_config": {"aspect_ratio": "9:16"}}
        });
        let p = gemini_generate(&bytes(&snake)).unwrap();
        assert!(p.wants_image && p.wants_text);
        assert_eq!(p.request.aspect_ratio, Some("9:16".parse().unwrap()));
    }

    #[test]
    fn gemini_refusals_say_what_is_wrong() {
        let cases = [
            (json!({}), "contents is not specified"),
            (json!({"contents": [{"parts": []}]}), "must not be empty"),
            (
                json!({"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}]}),
                "no text prompt",
            ),
            (
                json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"imageConfig": {"imageSize": "3k"}}}),
                "Unsupported image size",
            ),
            (
                json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"imageConfig": {"aspectRatio": "7:3"}}}),
                "Unsupported aspect ratio",
            ),
            (
                json!({"contents": [{"parts": [{"text": "x"}, {"inlineData": {"data": "@@@"}}]}]}),
                "Base64 decoding failed",
            ),
            (
                json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}}),
                "Multiple candidates",
            ),
        ];
        for (body, expected) in cases {
            let Invalid(message) = gemini_generate(&bytes(&body)).unwrap_err();
            assert!(message.contains(expected), "{body}: {message}");
        }
        let Invalid(message) = gemini_generate(b"{not json").unwrap_err();
        assert!(
            message.starts_with("Invalid JSON payload received."),
            "{message}"
        );
    }

    #[test]
    fn imagen_and_openrouter_read_their_shapes() {
        let p = imagen_predict(&bytes(&json!({"instances": [{"prompt": "a hamster"}],
            "parameters": {"sampleCount": 3, "aspectRatio": "4:3"}})))
        .unwrap();
        assert_eq!(p.request.count, 3);
        assert!(
            imagen_predict(&bytes(&json!({"instances": [{"prompt": "x"}],
            "parameters": {"sampleCount": 5}})))
            .is_err()
        );
        let (model, p) = openrouter_chat(&bytes(&json!({
            "model": "google/gemini-2.5-flash-image",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "a cat"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}],
            "modalities": ["image", "text"],
            "image_config": {"aspect_ratio": "3:2", "image_size": "1K"}
        })))
        .unwrap();
        assert_eq!(model, "google/gemini-2.5-flash-image");
        assert_eq!(p.request.prompt, "a cat");
        assert_eq!(p.request.reference_images.len(), 1);
        assert!(p.wants_image);
        let (_, text_only) = openrouter_chat(&bytes(&json!({"model": "m",
            "messages": [{"role": "user", "content": "hi"}]})))
        .unwrap();
        assert!(
            !text_only.wants_image,
            "no modalities: text only, as OpenRouter does"
        );
        let Invalid(m) = openrouter_chat(&bytes(&json!({"messages": []}))).unwrap_err();
        assert!(m.contains("model"), "{m}");
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>().prop_map(|n| json!(n)),
            prop_oneof![
                Just("IMAGE".to_owned()),
                Just("16:9".to_owned()),
                Just("4K".to_owned()),
                Just("data:image/png;base64,AA==".to_owned()),
                ".*"
            ]
            .prop_map(Value::String),
        ];
        let keys = prop_oneof![
            Just("contents".to_owned()),
            Just("parts".to_owned()),
            Just("text".to_owned()),
            Just("inlineData".to_owned()),
            Just("data".to_owned()),
            Just("generationConfig".to_owned()),
            Just("imageConfig".to_owned()),
            Just("aspectRatio".to_owned()),
            Just("imageSize".to_owned()),
            Just("responseModalities".to_owned()),
            Just("instances".to_owned()),
            Just("prompt".to_owned()),
            Just("parameters".to_owned()),
            Just("sampleCount".to_owned()),
            Just("model".to_owned()),
            Just("messages".to_owned()),
            Just("role".to_owned()),
            Just("content".to_owned()),
            Just("type".to_owned()),
            Just("image_url".to_owned()),
            Just("url".to_owned()),
            Just("modalities".to_owned()),
            Just("image_config".to_owned()),
            "[a-z]{1,8}",
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(keys.clone(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn no_body_makes_a_parser_panic(raw in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = gemini_generate(&raw);
            let _ = imagen_predict(&raw);
            let _ = openrouter_chat(&raw);
        }

        #[test]
        fn no_json_shaped_like_a_request_makes_a_parser_panic(value in arbitrary_json()) {
            let raw = bytes(&value);
            for result in [gemini_generate(&raw).map(|_| ()), imagen_predict(&raw).map(|_| ()),
                           openrouter_chat(&raw).map(|_| ())] {
                if let Err(Invalid(message)) = result {
                    prop_assert!(!message.is_empty());
                }
            }
        }
    }
}

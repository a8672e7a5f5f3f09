//! The Gemini dialect: `generateContent`, `streamGenerateContent` (`alt=sse` or a JSON array),
//! Imagen `predict`, and the model list, answered as the Gemini API does. Pure parsers over
//! bytes, fuzzed; proto-JSON field names in camelCase, snake_case accepted too.

use base64::Engine as _;
use imagegate_core::{AspectRatio, GenerateRequest, GenerateResponse, ImageSize, ReferenceImage};
use serde_json::{Value, json};

use crate::failure::Failure;
use crate::openai::b64;

/// The aspect ratios Gemini's image models document.
const ASPECT_RATIOS: [&str; 14] = [
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9", "1:4", "4:1", "1:8",
    "8:1",
];

/// The most images one Imagen `predict` returns.
const MAX_SAMPLES: u64 = 4;

/// A parsed Gemini request.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) request: GenerateRequest,
    /// Whether the answer carries a text part too (`responseModalities` names TEXT, or is unset).
    pub(crate) wants_text: bool,
}

fn field<'a>(object: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    object.get(camel).or_else(|| object.get(snake))
}

fn object(body: &[u8]) -> Result<Value, Failure> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Failure::invalid("body", format!("Invalid JSON payload received. {e}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(Failure::invalid(
            "body",
            "Invalid JSON payload received. Expected an object at the top level.",
        ))
    }
}

fn ratio(value: Option<&Value>, at: &str) -> Result<Option<AspectRatio>, Failure> {
    let Some(value) = value else { return Ok(None) };
    let text = value
        .as_str()
        .filter(|t| ASPECT_RATIOS.contains(t))
        .ok_or_else(|| {
            Failure::invalid(
                at,
                format!(
                    "Unsupported aspect ratio {value} at '{at}'. Supported: {}.",
                    ASPECT_RATIOS.join(", ")
                ),
            )
        })?;
    text.parse()
        .map(Some)
        .map_err(|_| Failure::invalid(at, format!("Unsupported aspect ratio '{text}'.")))
}

fn image_size(value: Option<&Value>, at: &str) -> Result<Option<ImageSize>, Failure> {
    let Some(value) = value else { return Ok(None) };
    match value.as_str() {
        Some("0.5K" | "512") => Ok(Some(ImageSize::Half)),
        Some("1K") => Ok(Some(ImageSize::OneK)),
        Some("2K") => Ok(Some(ImageSize::TwoK)),
        Some("4K") => Ok(Some(ImageSize::FourK)),
        _ => Err(Failure::invalid(
            at,
            format!("Unsupported image size {value} at '{at}'. Supported: 0.5K, 1K, 2K, 4K."),
        )),
    }
}

/// `generateContent` / `streamGenerateContent`: text parts make the prompt, inline images
/// are references, `generationConfig.imageConfig` the ratio and size.
pub(crate) fn parse_generate(body: &[u8]) -> Result<Parsed, Failure> {
    let value = object(body)?;
    let contents = value
        .get("contents")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            Failure::invalid(
                "contents",
                "* GenerateContentRequest.contents: contents is not specified",
            )
        })?;
    let mut texts = Vec::new();
    let mut references = Vec::new();
    for (i, content) in contents.iter().enumerate() {
        let parts = content.get("parts").and_then(Value::as_array).ok_or_else(|| {
            Failure::invalid(format!("contents[{i}].parts"), format!("* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."))
        })?;
        for (j, part) in parts.iter().enumerate() {
            let at = format!("contents[{i}].parts[{j}]");
            if let Some(text) = part.get("text") {
                let text = text.as_str().ok_or_else(|| {
                    Failure::invalid(
                        format!("{at}.text"),
                        format!("Invalid value at '{at}.text' (TYPE_STRING), {text}"),
                    )
                })?;
                texts.push(text.to_owned());
            } else if let Some(inline) = field(part, "inlineData", "inline_data") {
                let data = inline.get("data").and_then(Value::as_str).ok_or_else(|| {
                    Failure::invalid(format!("{at}.inline_data.data"), format!("* GenerateContentRequest.{at}.inline_data.data: required field is not set"))
                })?;
                let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim()).map_err(|_| {
                    Failure::invalid(format!("{at}.inline_data.data"), format!("Invalid value at '{at}.inline_data.data' (TYPE_BYTES), Base64 decoding failed"))
                })?;
                let image = ReferenceImage::sniffed(bytes).map_err(|_| {
                    Failure::invalid(format!("{at}.inline_data"), format!("Unable to process input image at '{at}.inline_data': not a PNG, JPEG, WebP or GIF image"))
                })?;
                references.push(image);
            }
        }
    }
    let prompt = texts.join("\n");
    if prompt.trim().is_empty() {
        return Err(Failure::invalid(
            "contents",
            "* GenerateContentRequest.contents: the request has no text prompt",
        ));
    }
    let config = field(&value, "generationConfig", "generation_config");
    let wants_text =
        match config.and_then(|c| field(c, "responseModalities", "response_modalities")) {
            None => true,
            Some(list) => {
                let list = list.as_array().ok_or_else(|| {
                    Failure::invalid(
                        "generation_config.response_modalities",
                        "Invalid value at 'generation_config.response_modalities', expected a list",
                    )
                })?;
                let mut text = false;
                for m in list {
                    match m.as_str().map(str::to_ascii_uppercase).as_deref() {
                        Some("IMAGE") => {}
                        Some("TEXT") => text = true,
                        _ => {
                            return Err(Failure::invalid(
                                "generation_config.response_modalities",
                                format!(
                                    "Invalid value at 'generation_config.response_modalities', {m}"
                                ),
                            ));
                        }
                    }
                }
                text
            }
        };
    let image_config = config.and_then(|c| field(c, "imageConfig", "image_config"));
    let mut request = GenerateRequest::new(prompt);
    request.reference_images = references;
    request.aspect_ratio = ratio(
        image_config.and_then(|c| field(c, "aspectRatio", "aspect_ratio")),
        "generation_config.image_config.aspect_ratio",
    )?;
    request.size = image_size(
        image_config.and_then(|c| field(c, "imageSize", "image_size")),
        "generation_config.image_config.image_size",
    )?;
    request.seed = config.and_then(|c| c.get("seed")).and_then(Value::as_u64);
    Ok(Parsed {
        request,
        wants_text,
    })
}

/// Imagen `predict`: `instances[0].prompt`, `parameters.{sampleCount, aspectRatio, sampleImageSize}`.
pub(crate) fn parse_predict(body: &[u8]) -> Result<Parsed, Failure> {
    let value = object(body)?;
    let prompt = value
        .get("instances")
        .and_then(Value::as_array)
        .and_then(|i| i.first())
        .and_then(|i| i.get("prompt"))
        .and_then(Value::as_str)
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| {
            Failure::invalid(
                "instances[0].prompt",
                "* PredictRequest.instances[0].prompt: a prompt is required",
            )
        })?;
    let parameters = value.get("parameters");
    let count = match parameters.and_then(|p| field(p, "sampleCount", "sample_count")) {
        None => 1,
        Some(n) => match n.as_u64() {
            Some(n @ 1..=MAX_SAMPLES) => u32::try_from(n).unwrap_or(1),
            _ => {
                return Err(Failure::invalid(
                    "parameters.sample_count",
                    format!("Number of samples must be between 1 and {MAX_SAMPLES}, got {n}."),
                ));
            }
        },
    };
    let mut request = GenerateRequest::new(prompt).with_count(count);
    request.aspect_ratio = ratio(
        parameters.and_then(|p| field(p, "aspectRatio", "aspect_ratio")),
        "parameters.aspect_ratio",
    )?;
    request.size = image_size(
        parameters.and_then(|p| field(p, "sampleImageSize", "sample_image_size")),
        "parameters.sample_image_size",
    )?;
    Ok(Parsed {
        request,
        wants_text: false,
    })
}

fn parts(response: &GenerateResponse, wants_text: bool) -> Vec<Value> {
    let mut parts = Vec::new();
    if wants_text && let Some(note) = &response.note {
        parts.push(json!({"text": note}));
    }
    parts.extend(
        response
            .images
            .iter()
            .map(|i| json!({"inlineData": {"mimeType": i.mime_type, "data": b64(&i.bytes)}})),
    );
    parts
}

fn usage(response: &GenerateResponse) -> Value {
    response.usage.as_ref().map_or_else(
        || json!({}),
        |u| {
            json!({
                "promptTokenCount": u.input_tokens,
                "candidatesTokenCount": u.output_tokens,
                "totalTokenCount": u.total(),
            })
        },
    )
}

/// A `GenerateContentResponse`.
pub(crate) fn content_response(
    model: &str,
    response: &GenerateResponse,
    wants_text: bool,
    id: &str,
) -> Value {
    json!({
        "candidates": [{
            "content": {"parts": parts(response, wants_text), "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }],
        "usageMetadata": usage(response),
        "modelVersion": model,
        "responseId": id,
    })
}

/// The stream's two chunks: the parts, then an empty text part with `finishReason: STOP`.
pub(crate) fn stream_chunks(
    model: &str,
    response: &GenerateResponse,
    wants_text: bool,
    id: &str,
) -> [Value; 2] {
    let first = json!({
        "candidates": [{"content": {"parts": parts(response, wants_text), "role": "model"}, "index": 0}],
        "usageMetadata": usage(response),
        "modelVersion": model,
        "responseId": id,
    });
    let last = json!({
        "candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage(response),
        "modelVersion": model,
        "responseId": id,
    });
    [first, last]
}

/// Imagen's `predictions`.
pub(crate) fn predict_response(response: &GenerateResponse) -> Value {
    let predictions: Vec<Value> = response
        .images
        .iter()
        .map(|i| json!({"mimeType": i.mime_type, "bytesBase64Encoded": b64(&i.bytes)}))
        .collect();
    json!({"predictions": predictions})
}

/// One entry of `GET /{v}/models`.
pub(crate) fn model_entry(name: &str) -> Value {
    json!({
        "name": format!("models/{name}"),
        "version": "001",
        "displayName": name,
        "description": "Served by imagegate serve through its router.",
        "inputTokenLimit": 32768,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "predict"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_reads_prompt_ratio_size_and_modalities() {
        let body = br#"{"contents":[{"parts":[{"text":"a fox"}]}],"generationConfig":{"responseModalities":["IMAGE"],"imageConfig":{"aspectRatio":"16:9","imageSize":"2K"}}}"#;
        let p = parse_generate(body).unwrap();
        assert_eq!(p.request.prompt, "a fox");
        assert!(!p.wants_text);
        assert_eq!(p.request.size, Some(ImageSize::TwoK));
        let e = parse_generate(
            br#"{"contents":[{"parts":[{"inline_data":{"data":"aGVsbG8="}}, {"text":"x"}]}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("contents[0].parts[0].inline_data"),
            "{}",
            e.message
        );
        let e = parse_generate(br#"{"contents":[{"parts":[{"text":"x"}]}],"generationConfig":{"imageConfig":{"aspectRatio":"7:3"}}}"#).unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("generation_config.image_config.aspect_ratio")
        );
        let e = parse_predict(br#"{"instances":[{"prompt":"x"}],"parameters":{"sampleCount":9}}"#)
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("parameters.sample_count"));
    }
}

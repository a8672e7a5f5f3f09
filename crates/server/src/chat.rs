//! OpenRouter-style chat completions with image output (how the openai SDK is used with
//! OpenRouter): the last user message is the prompt, its `image_url` data URLs are reference
//! images, and the answer carries the images as data URLs in `choices[0].message.images`.

use base64::Engine as _;
use imagegate_core::{GenerateRequest, GenerateResponse, ReferenceImage};
use serde_json::{Value, json};

use crate::failure::Failure;
use crate::openai::b64;

/// A parsed chat request.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) model: String,
    pub(crate) request: GenerateRequest,
}

fn data_url(url: &str, at: &str) -> Result<ReferenceImage, Failure> {
    let bad = || {
        Failure::invalid(
            at,
            format!(
                "`{at}` must be a data URL of a PNG, JPEG, WebP or GIF image (data:image/png;base64,...)"
            ),
        )
    };
    let rest = url.strip_prefix("data:").ok_or_else(bad)?;
    let (_, data) = rest.split_once(";base64,").ok_or_else(bad)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|_| bad())?;
    ReferenceImage::sniffed(bytes).map_err(|_| bad())
}

/// The body of `POST /v1/chat/completions`.
pub(crate) fn parse(body: &[u8]) -> Result<Parsed, Failure> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Failure::invalid("body", format!("Invalid JSON in request body: {e}")))?;
    if !value.is_object() {
        return Err(Failure::invalid(
            "body",
            "Invalid request body: expected a JSON object",
        ));
    }
    let model = value
        .get("model")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| Failure::invalid("model", "`model` is required"))?
        .to_owned();
    if value.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(Failure::invalid(
            "stream",
            "`stream` is not supported for image output: leave it unset",
        ));
    }
    if let Some(modalities) = value.get("modalities") {
        let names: Option<Vec<&str>> = modalities
            .as_array()
            .map(|m| m.iter().filter_map(Value::as_str).collect());
        if !names.is_some_and(|n| n.contains(&"image")) {
            return Err(Failure::invalid(
                "modalities",
                "`modalities` must include \"image\": this gateway answers with images",
            ));
        }
    }
    let messages = value
        .get("messages")
        .and_then(Value::as_array)
        .filter(|m| !m.is_empty())
        .ok_or_else(|| {
            Failure::invalid("messages", "`messages` is required and must not be empty")
        })?;
    let (index, last) = messages
        .iter()
        .enumerate()
        .rev()
        .find(|(_, m)| m.get("role").and_then(Value::as_str) == Some("user"))
        .ok_or_else(|| Failure::invalid("messages", "`messages` has no user message"))?;
    let mut texts = Vec::new();
    let mut references = Vec::new();
    match last.get("content") {
        Some(Value::String(text)) => texts.push(text.clone()),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => texts.push(
                        part.get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    ),
                    Some("image_url") => {
                        let at = format!("messages[{index}].content[{j}].image_url.url");
                        let url = part
                            .get("image_url")
                            .and_then(|u| u.get("url").or(Some(u)))
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        references.push(data_url(url, &at)?);
                    }
                    _ => {}
                }
            }
        }
        _ => {
            return Err(Failure::invalid(
                format!("messages[{index}].content"),
                "the user message's `content` must be a string or a list of parts",
            ));
        }
    }
    let prompt = texts.join("\n");
    if prompt.trim().is_empty() {
        return Err(Failure::invalid(
            format!("messages[{index}].content"),
            "the user message has no text prompt",
        ));
    }
    let mut request = GenerateRequest::new(prompt);
    request.reference_images = references;
    if let Some(config) = value.get("image_config") {
        if let Some(r) = config.get("aspect_ratio") {
            let ratio = r.as_str().and_then(|r| r.parse().ok()).ok_or_else(|| {
                Failure::invalid(
                    "image_config.aspect_ratio",
                    format!(
                        "`image_config.aspect_ratio` must be WIDTH:HEIGHT such as 16:9, got {r}"
                    ),
                )
            })?;
            request.aspect_ratio = Some(ratio);
        }
        if let Some(s) = config.get("image_size") {
            let size = s.as_str().and_then(|s| s.parse().ok()).ok_or_else(|| {
                Failure::invalid(
                    "image_config.image_size",
                    format!("`image_config.image_size` must be 0.5K, 1K, 2K or 4K, got {s}"),
                )
            })?;
            request.size = Some(size);
        }
    }
    Ok(Parsed { model, request })
}

/// The `chat.completion` answer with the images as data URLs.
pub(crate) fn response(model: &str, response: &GenerateResponse, id: &str, created: i64) -> Value {
    let images: Vec<Value> = response
        .images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            json!({
                "type": "image_url",
                "image_url": {"url": format!("data:{};base64,{}", image.mime_type, b64(&image.bytes))},
                "index": i,
            })
        })
        .collect();
    let (prompt_tokens, completion_tokens) = response
        .usage
        .as_ref()
        .map_or((0, 0), |u| (u.input_tokens, u.output_tokens));
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "provider": "imagegate",
        "choices": [{
            "index": 0,
            "logprobs": null,
            "finish_reason": "stop",
            "native_finish_reason": "STOP",
            "message": {
                "role": "assistant",
                "content": response.note.clone().unwrap_or_default(),
                "refusal": null,
                "images": images,
            },
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": response.cost_usd.unwrap_or(0.0),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_reads_the_last_user_message_and_names_bad_fields() {
        let p = parse(br#"{"model":"m","modalities":["image","text"],"messages":[{"role":"user","content":"old"},{"role":"assistant","content":"x"},{"role":"user","content":[{"type":"text","text":"a fox"}]}],"image_config":{"aspect_ratio":"16:9"}}"#).unwrap();
        assert_eq!(p.request.prompt, "a fox");
        assert_eq!(p.request.aspect_ratio.unwrap().to_string(), "16:9");
        for (body, field) in [
            (&br#"{"messages":[]}"#[..], "model"),
            (br#"{"model":"m","messages":[]}"#, "messages"),
            (br#"{"model":"m","modalities":["text"],"messages":[{"role":"user","content":"x"}]}"#, "modalities"),
            (br#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}},{"type":"text","text":"x"}]}]}"#, "messages[0].content[0].image_url.url"),
        ] {
            assert_eq!(parse(body).unwrap_err().field.as_deref(), Some(field));
        }
    }
}

//! The OpenAI Images dialect: `POST /v1/images/generations` (JSON) and `POST /v1/images/edits`
//! (multipart, one or several `image`/`image[]` files as reference images), answered as
//! `{"created", "data": [{"b64_json"} | {"url"}], ...}`. Pure parsers over bytes, fuzzed.

use base64::Engine as _;
use bytes::Bytes;
use imagegate_core::{GenerateRequest, GenerateResponse, ReferenceImage};
use serde_json::{Value, json};

use crate::failure::Failure;
use crate::size;

/// The most images one request may ask for (OpenAI's own bound on `n`).
pub(crate) const MAX_N: u64 = 10;

/// How images come back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    /// Base64 in the body.
    B64Json,
    /// A URL on this gateway, valid for `server.files_ttl`.
    Url,
}

/// A parsed images request.
#[derive(Debug)]
pub(crate) struct ImagesRequest {
    pub(crate) model: Option<String>,
    pub(crate) request: GenerateRequest,
    pub(crate) format: Format,
}

/// The fields both endpoints share, as text (JSON values are read into text first).
#[derive(Default)]
struct Fields {
    prompt: Option<String>,
    model: Option<String>,
    n: Option<String>,
    size: Option<String>,
    quality: Option<String>,
    response_format: Option<String>,
    output_format: Option<String>,
}

fn text_field(object: &Value, name: &str) -> Result<Option<String>, Failure> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if name == "n" => Ok(Some(n.to_string())),
        Some(other) => Err(Failure::invalid(
            name,
            format!("`{name}` must be a string, got {}", kind_of(other)),
        )),
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `POST /v1/images/generations`.
pub(crate) fn parse_generation(body: &[u8]) -> Result<ImagesRequest, Failure> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Failure::invalid("body", format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Failure::invalid("body", "the body must be a JSON object"));
    }
    if value.get("stream").and_then(Value::as_bool) == Some(true) {
        return Err(Failure::invalid(
            "stream",
            "`stream` is not supported by this gateway: leave it unset",
        ));
    }
    let fields = Fields {
        prompt: text_field(&value, "prompt")?,
        model: text_field(&value, "model")?,
        n: text_field(&value, "n")?,
        size: text_field(&value, "size")?,
        quality: text_field(&value, "quality")?,
        response_format: text_field(&value, "response_format")?,
        output_format: text_field(&value, "output_format")?,
    };
    build(fields, Vec::new())
}

fn build(fields: Fields, references: Vec<ReferenceImage>) -> Result<ImagesRequest, Failure> {
    let prompt = fields
        .prompt
        .filter(|p| !p.trim().is_empty())
        .ok_or_else(|| Failure::invalid("prompt", "`prompt` is required and must not be empty"))?;
    let n = match fields.n.as_deref().map(str::trim) {
        None => 1,
        Some(text) => match text.parse::<u64>() {
            Ok(n @ 1..=MAX_N) => u32::try_from(n).unwrap_or(1),
            _ => {
                return Err(Failure::invalid(
                    "n",
                    format!(
                        "`n` must be an integer from 1 to {MAX_N}, got `{}`",
                        clip(text)
                    ),
                ));
            }
        },
    };
    let mut request = GenerateRequest::new(prompt).with_count(n);
    request.reference_images = references;
    if let Some(text) = &fields.size
        && let Some((ratio, class)) =
            size::parse(text).map_err(|why| Failure::invalid("size", why))?
    {
        request = request.with_aspect_ratio(ratio).with_size(class);
    }
    if let Some(q) = &fields.quality
        && !["auto", "low", "medium", "high", "standard", "hd"].contains(&q.as_str())
    {
        return Err(Failure::invalid(
            "quality",
            format!(
                "unknown quality `{}`: expected auto, low, medium, high, standard or hd",
                clip(q)
            ),
        ));
    }
    let format = match fields.response_format.as_deref() {
        None | Some("b64_json") => Format::B64Json,
        Some("url") => Format::Url,
        Some(other) => {
            return Err(Failure::invalid(
                "response_format",
                format!(
                    "unknown response_format `{}`: expected b64_json or url",
                    clip(other)
                ),
            ));
        }
    };
    if let Some(f) = &fields.output_format
        && !["png", "jpeg", "webp"].contains(&f.as_str())
    {
        return Err(Failure::invalid(
            "output_format",
            format!(
                "unknown output_format `{}`: expected png, jpeg or webp",
                clip(f)
            ),
        ));
    }
    Ok(ImagesRequest {
        model: fields.model.filter(|m| !m.trim().is_empty()),
        request,
        format,
    })
}

/// At most 40 characters of client text in a message.
fn clip(text: &str) -> String {
    text.chars().take(40).collect()
}

/// `POST /v1/images/edits`: multipart with `prompt`, `image` or `image[]` (one or several),
/// and the generation fields. A `mask` is refused: no target can apply one.
pub(crate) async fn parse_edit(body: Bytes, content_type: &str) -> Result<ImagesRequest, Failure> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| {
        Failure::invalid(
            "body",
            "the body must be multipart/form-data with a boundary",
        )
    })?;
    let stream = futures::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Fields::default();
    let mut references = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return Err(Failure::invalid(
                    "body",
                    format!("malformed multipart body: {e}"),
                ));
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let data = field.bytes().await.map_err(|e| {
            Failure::invalid(
                name.clone(),
                format!("malformed multipart field `{}`: {e}", clip(&name)),
            )
        })?;
        let text = || String::from_utf8_lossy(&data).into_owned();
        match name.as_str() {
            "image" | "image[]" => {
                let index = references.len();
                let image = ReferenceImage::sniffed(data.clone()).map_err(|_| {
                    Failure::invalid(
                        name.clone(),
                        format!(
                            "image {} ({} bytes) is not a readable PNG, JPEG, WebP or GIF image",
                            index + 1,
                            data.len()
                        ),
                    )
                })?;
                references.push(image);
            }
            "mask" => {
                return Err(Failure::invalid(
                    "mask",
                    "`mask` is not supported: the targets edit from the prompt and reference images, not a mask; describe the change in the prompt instead",
                ));
            }
            "prompt" => fields.prompt = Some(text()),
            "model" => fields.model = Some(text()),
            "n" => fields.n = Some(text()),
            "size" => fields.size = Some(text()),
            "quality" => fields.quality = Some(text()),
            "response_format" => fields.response_format = Some(text()),
            "output_format" => fields.output_format = Some(text()),
            "stream" if text() == "true" => {
                return Err(Failure::invalid(
                    "stream",
                    "`stream` is not supported by this gateway: leave it unset",
                ));
            }
            _ => {}
        }
    }
    if references.is_empty() {
        return Err(Failure::invalid(
            "image",
            "`image` is required: one or more image files to edit",
        ));
    }
    build(fields, references)
}

/// One image of the answer: its bytes (sent as base64) or a URL.
pub(crate) enum Item<'a> {
    B64(&'a [u8]),
    Url(String),
}

/// The answer: `created`, `data`, and what OpenAI's newer models report beside it.
///
/// Written by hand rather than through `serde_json::Value`: the base64 goes straight into the
/// body (its alphabet needs no JSON escaping), which saves a copy and an escaping scan of every
/// image on the hot path (docs/performance.md); the small fields still go through serde_json.
pub(crate) fn response_body(
    response: &GenerateResponse,
    items: &[Item<'_>],
    created: i64,
) -> Vec<u8> {
    use std::fmt::Write as _;
    let images: usize = items
        .iter()
        .map(|i| match i {
            Item::B64(bytes) => bytes.len() * 4 / 3 + 32,
            Item::Url(url) => url.len() + 16,
        })
        .sum();
    let mut out = String::with_capacity(images + 256);
    let _ = write!(out, "{{\"created\":{created},\"data\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            Item::B64(bytes) => {
                out.push_str("{\"b64_json\":\"");
                base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut out);
                out.push_str("\"}");
            }
            Item::Url(url) => {
                let _ = write!(out, "{{\"url\":{}}}", Value::String(url.clone()));
            }
        }
    }
    out.push(']');
    if let Some(first) = response.images.first() {
        let _ = write!(out, ",\"output_format\":{}", json!(first.extension()));
        if let (Some(w), Some(h)) = (first.width, first.height) {
            let _ = write!(out, ",\"size\":\"{w}x{h}\"");
        }
    }
    if let Some(usage) = &response.usage {
        let usage = json!({
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total(),
            "input_tokens_details": {"text_tokens": usage.input_tokens, "image_tokens": 0},
        });
        let _ = write!(out, ",\"usage\":{usage}");
    }
    out.push('}');
    out.into_bytes()
}

/// Standard base64 of image bytes.
pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generation_reads_every_field() {
        let body = br#"{"prompt":"a fox","model":"gpt-image-1","n":2,"size":"1536x1024","quality":"high","response_format":"url","output_format":"png","user":"u1"}"#;
        let r = parse_generation(body).unwrap();
        assert_eq!(r.model.as_deref(), Some("gpt-image-1"));
        assert_eq!(r.request.count, 2);
        assert_eq!(r.request.aspect_ratio.unwrap().to_string(), "3:2");
        assert_eq!(r.format, Format::Url);
    }

    #[test]
    fn the_hand_written_body_is_the_json_it_says() {
        let image = imagegate_core::Image::checked(
            bytes::Bytes::from_static(
                b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x02\0\0\0\x03\x08\x02\0\0\0",
            ),
            "image/png",
        )
        .unwrap();
        let mut response = GenerateResponse::new(
            vec![image.clone(), image],
            imagegate_core::ServedBy::new("p", "m", None),
        );
        response.usage =
            Some(serde_json::from_value(json!({"input_tokens": 3, "output_tokens": 4})).unwrap());
        let bytes = [1u8, 2, 3];
        let items = [
            Item::B64(&bytes),
            Item::Url("http://h/v1/images/files/\"x".to_owned()),
        ];
        let body: Value = serde_json::from_slice(&response_body(&response, &items, 7)).unwrap();
        assert_eq!(
            body,
            json!({"created": 7, "data": [{"b64_json": "AQID"}, {"url": "http://h/v1/images/files/\"x"}],
                   "output_format": "png", "size": "2x3",
                   "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7,
                             "input_tokens_details": {"text_tokens": 3, "image_tokens": 0}}})
        );
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: [(&[u8], &str); 8] = [
            (b"{", "body"),
            (b"[]", "body"),
            (br#"{"model":"x"}"#, "prompt"),
            (br#"{"prompt":"  "}"#, "prompt"),
            (br#"{"prompt":"a","n":11}"#, "n"),
            (br#"{"prompt":"a","n":0}"#, "n"),
            (br#"{"prompt":"a","size":"big"}"#, "size"),
            (
                br#"{"prompt":"a","response_format":"gif"}"#,
                "response_format",
            ),
        ];
        for (body, field) in cases {
            let e = parse_generation(body).unwrap_err();
            assert_eq!(
                e.field.as_deref(),
                Some(field),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let e = parse_generation(br#"{"prompt":5}"#).unwrap_err();
        assert!(
            e.message.contains("must be a string, got a number"),
            "{}",
            e.message
        );
    }
}

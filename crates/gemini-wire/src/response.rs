//! Reading a 200 from `generateContent` or Imagen `:predict`: the images, or why there are none.
//!
//! A 200 is not always a success: a prompt refused by a safety filter, an image filtered after
//! generation, or an answer with only text all come back as 200 (ai.google.dev/api/generate-content; the fixtures gemini/generate-content/200-*). Those
//! become `content_blocked` or `no_image` with the upstream's reason, so the router does not
//! mistake them for quota problems.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use imagegate_core::{Error, ErrorKind, GenerateResponse, Image, ServedBy, TokenUsage};
use serde_json::Value;

/// The most of the model's own text quoted in a `no_image` error.
const NOTE_CHARS: usize = 300;

/// `finishReason` and `blockReason` values that mean a safety or policy filter refused.
const BLOCKED: [&str; 8] = [
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_RECITATION",
];

/// Reads a 200 body from `generateContent` or Imagen `:predict` (recognised by its shape);
/// `provider` names who answered (`gemini`, `vertex`) on the response and on every error.
///
/// Images are taken from every part of every candidate (never from a fixed index: text can come
/// before or after), checked by their bytes, not their label. Text parts become the note;
/// `thoughtSignature` and thought parts are ignored.
///
/// # Errors
/// - [`ErrorKind::InvalidResponse`]: not JSON, truncated, or image data that is not an image.
/// - [`ErrorKind::ContentBlocked`]: `promptFeedback.blockReason`, or a candidate that finished
///   with `SAFETY`, `IMAGE_SAFETY`, `PROHIBITED_CONTENT`, ... (Imagen: every sample filtered).
/// - [`ErrorKind::NoImage`]: no image and no block (`NO_IMAGE`, text only).
pub fn parse_success(body: &[u8], model: &str, provider: &str) -> Result<GenerateResponse, Error> {
    if let Some(result) = borrowed::images(body, model, provider) {
        return result;
    }
    parse_tree(body, model, provider)
}

/// [`parse_success`] through a JSON tree: every answer the borrowed reading leaves (no image,
/// a block, Imagen, any shape it does not take). Kept whole so the two can be compared.
fn parse_tree(body: &[u8], model: &str, provider: &str) -> Result<GenerateResponse, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let what = if body.iter().all(u8::is_ascii_whitespace) {
            "an empty body".to_owned()
        } else if body.trim_ascii_start().starts_with(b"<") {
            "an HTML page".to_owned()
        } else {
            format!("JSON that does not parse ({e}; {} bytes)", body.len())
        };
        success_error(
            provider,
            ErrorKind::InvalidResponse,
            format!("a 200 answer with {what}"),
        )
    })?;
    if !value.is_object() {
        return Err(success_error(
            provider,
            ErrorKind::InvalidResponse,
            "a 200 answer whose JSON is not an object",
        ));
    }
    if value.get("predictions").is_some() {
        parse_predict(&value, model, provider)
    } else {
        parse_generate_content(&value, model, provider)
    }
}

fn success_error(provider: &str, kind: ErrorKind, message: impl Into<String>) -> Error {
    Error::new(kind, message)
        .with_provider(provider)
        .with_http_status(200)
}

fn parse_generate_content(
    value: &Value,
    model: &str,
    provider: &str,
) -> Result<GenerateResponse, Error> {
    let candidates = value
        .get("candidates")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut images = Vec::new();
    let mut texts = Vec::new();
    for part in candidates.iter().flat_map(parts) {
        // Thought parts (Gemini 3's interim drafts and reasoning) are not the answer.
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(inline) = part.get("inlineData").or_else(|| part.get("inline_data")) {
            images.push(decode_inline(inline, provider)?);
        } else if let Some(text) = part.get("text").and_then(Value::as_str)
            && !text.trim().is_empty()
        {
            texts.push(text.trim().to_owned());
        }
    }
    let note = (!texts.is_empty()).then(|| texts.join("\n"));
    let served_model = string(value, "modelVersion").unwrap_or_else(|| model.to_owned());

    if images.is_empty() {
        return Err(no_image_error(value, candidates, note.as_deref(), provider));
    }

    let mut response = GenerateResponse::new(images, ServedBy::new(provider, served_model, None));
    response.note = note;
    response.request_id = string(value, "responseId");
    response.usage = value.get("usageMetadata").map(usage);
    Ok(response)
}

fn parts(candidate: &Value) -> &[Value] {
    candidate
        .get("content")
        .and_then(|c| c.get("parts"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn decode_inline(inline: &Value, provider: &str) -> Result<Image, Error> {
    let mime = inline
        .get("mimeType")
        .or_else(|| inline.get("mime_type"))
        .and_then(Value::as_str)
        .unwrap_or("application/octet-stream");
    let data = inline.get("data").and_then(Value::as_str).unwrap_or("");
    decode_image(data, mime, provider)
}

fn decode_image(data: &str, mime: &str, provider: &str) -> Result<Image, Error> {
    let data = data.trim();
    let bytes = STANDARD
        .decode(data)
        .or_else(|_| STANDARD_NO_PAD.decode(data.trim_end_matches('=')))
        .map_err(|e| {
            success_error(
                provider,
                ErrorKind::InvalidResponse,
                format!("image data labelled `{mime}` is not base64 ({e})"),
            )
        })?;
    Image::checked(bytes, mime).map_err(|e| e.with_provider(provider).with_http_status(200))
}

/// Why a 200 holds no image: a block (prompt or output) or a plain absence.
fn no_image_error(
    value: &Value,
    candidates: &[Value],
    note: Option<&str>,
    provider: &str,
) -> Error {
    let feedback = value.get("promptFeedback");
    if let Some(reason) = feedback.and_then(|f| string(f, "blockReason")) {
        let mut message = format!("the prompt was blocked ({reason})");
        if let Some(detail) = feedback.and_then(|f| string(f, "blockReasonMessage")) {
            message.push_str(&format!(": {detail}"));
        }
        return success_error(provider, ErrorKind::ContentBlocked, message)
            .with_upstream_code(reason);
    }
    let finish = candidates.iter().find_map(|c| string(c, "finishReason"));
    let finish_message = candidates.iter().find_map(|c| string(c, "finishMessage"));
    let mut message = match &finish {
        Some(reason) => format!("the model finished with {reason} and no image"),
        None if candidates.is_empty() => "the answer has no candidates and no image".to_owned(),
        None => "the answer has no image".to_owned(),
    };
    if let Some(text) = &finish_message {
        message.push_str(&format!(": {text}"));
    }
    if let Some(text) = note {
        let quoted: String = text.chars().take(NOTE_CHARS).collect();
        message.push_str(&format!(" (the model said: {quoted})"));
    }
    let kind = match &finish {
        Some(reason) if BLOCKED.contains(&reason.as_str()) => ErrorKind::ContentBlocked,
        _ => ErrorKind::NoImage,
    };
    let error = success_error(provider, kind, message);
    match finish {
        Some(reason) => error.with_upstream_code(reason),
        None => error,
    }
}

/// `usageMetadata`: output counts candidates and thoughts (both billed as output and both
/// counted by TPM); image tokens are the `IMAGE` modality of the candidates.
fn usage(meta: &Value) -> TokenUsage {
    let count = |key: &str| meta.get(key).and_then(Value::as_u64).unwrap_or(0);
    let image_tokens = meta
        .get("candidatesTokensDetails")
        .and_then(Value::as_array)
        .map(|details| {
            details
                .iter()
                .filter(|d| d.get("modality").and_then(Value::as_str) == Some("IMAGE"))
                .filter_map(|d| d.get("tokenCount").and_then(Value::as_u64))
                .sum::<u64>()
        })
        .filter(|n| *n > 0);
    let mut usage = TokenUsage::default();
    usage.input_tokens = count("promptTokenCount");
    usage.output_tokens = count("candidatesTokenCount") + count("thoughtsTokenCount");
    usage.image_tokens = image_tokens;
    usage
}

/// Imagen `:predict`: `predictions[]` of `{bytesBase64Encoded, mimeType}`; filtered samples
/// come back as `raiFilteredReason` entries or are dropped.
fn parse_predict(value: &Value, model: &str, provider: &str) -> Result<GenerateResponse, Error> {
    let predictions = value
        .get("predictions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut images = Vec::new();
    let mut filtered = Vec::new();
    for prediction in predictions {
        match prediction.get("bytesBase64Encoded").and_then(Value::as_str) {
            Some(data) => {
                let mime = prediction
                    .get("mimeType")
                    .and_then(Value::as_str)
                    .unwrap_or("image/png");
                images.push(decode_image(data, mime, provider)?);
            }
            None => {
                if let Some(reason) = string(prediction, "raiFilteredReason") {
                    filtered.push(reason);
                }
            }
        }
    }
    if images.is_empty() {
        return Err(if filtered.is_empty() {
            success_error(
                provider,
                ErrorKind::NoImage,
                "the Imagen answer holds no image",
            )
        } else {
            success_error(
                provider,
                ErrorKind::ContentBlocked,
                format!("every sample was filtered: {}", filtered.join("; ")),
            )
            .with_upstream_code("RAI_FILTERED")
        });
    }
    Ok(GenerateResponse::new(
        images,
        ServedBy::new(provider, model, None),
    ))
}

fn string(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// The common answer, an image, read without a JSON tree: the base64 stays a slice of the
/// body (no escapes in base64, so serde borrows it) and is decoded once, straight into the
/// image's bytes. Reading into a `Value` would first copy every image's base64 into a
/// `String` (4/3 of the image) beside the body; with 50 4K answers in flight that is
/// hundreds of megabytes (docs/performance.md, "Memory").
///
/// Any shape it does not take exactly as the tree reading does (a field of another type, a
/// `null` where an object is, a duplicate key, `predictions`, no image at all) makes it step
/// aside (`None`) for [`parse_tree`], so the two always agree; the tests hold them to that.
mod borrowed {
    use std::borrow::Cow;

    use imagegate_core::{Error, GenerateResponse, ServedBy};
    use serde::de::IgnoredAny;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// A field that is present, whatever its value (`null` included), as `Some`: the tree
    /// reading's `get(key).is_some()`.
    fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        T::deserialize(d).map(Some)
    }

    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow, default, deserialize_with = "present")]
        candidates: Option<Vec<Candidate<'a>>>,
        #[serde(default, deserialize_with = "present")]
        predictions: Option<IgnoredAny>,
        #[serde(borrow, rename = "modelVersion", default, deserialize_with = "present")]
        model_version: Option<Cow<'a, str>>,
        #[serde(borrow, rename = "responseId", default, deserialize_with = "present")]
        response_id: Option<Cow<'a, str>>,
        #[serde(rename = "usageMetadata", default, deserialize_with = "present")]
        usage_metadata: Option<Value>,
    }

    #[derive(Deserialize)]
    struct Candidate<'a> {
        #[serde(borrow, default, deserialize_with = "present")]
        content: Option<Content<'a>>,
    }

    #[derive(Deserialize)]
    struct Content<'a> {
        #[serde(borrow, default, deserialize_with = "present")]
        parts: Option<Vec<Part<'a>>>,
    }

    #[derive(Deserialize)]
    struct Part<'a> {
        #[serde(default, deserialize_with = "present")]
        thought: Option<Value>,
        #[serde(borrow, rename = "inlineData", default, deserialize_with = "present")]
        inline_data: Option<Inline<'a>>,
        #[serde(borrow, rename = "inline_data", default, deserialize_with = "present")]
        inline_data_snake: Option<Inline<'a>>,
        #[serde(borrow, default, deserialize_with = "present")]
        text: Option<Cow<'a, str>>,
    }

    #[derive(Deserialize)]
    struct Inline<'a> {
        #[serde(borrow, rename = "mimeType", default, deserialize_with = "present")]
        mime_type: Option<Cow<'a, str>>,
        #[serde(borrow, rename = "mime_type", default, deserialize_with = "present")]
        mime_type_snake: Option<Cow<'a, str>>,
        #[serde(borrow, default, deserialize_with = "present")]
        data: Option<Cow<'a, str>>,
    }

    /// The answer when `body` is an image answer this reading takes, else `None`.
    pub(super) fn images(
        body: &[u8],
        model: &str,
        provider: &str,
    ) -> Option<Result<GenerateResponse, Error>> {
        let body: Body<'_> = serde_json::from_slice(body).ok()?;
        if body.predictions.is_some() {
            return None;
        }
        let mut images = Vec::new();
        let mut texts = Vec::new();
        let parts = body
            .candidates
            .iter()
            .flatten()
            .filter_map(|c| c.content.as_ref())
            .filter_map(|c| c.parts.as_ref())
            .flatten();
        for part in parts {
            if part.thought.as_ref().and_then(Value::as_bool) == Some(true) {
                continue;
            }
            if let Some(inline) = part
                .inline_data
                .as_ref()
                .or(part.inline_data_snake.as_ref())
            {
                let mime = inline
                    .mime_type
                    .as_deref()
                    .or(inline.mime_type_snake.as_deref())
                    .unwrap_or("application/octet-stream");
                let data = inline.data.as_deref().unwrap_or("");
                match super::decode_image(data, mime, provider) {
                    Ok(image) => images.push(image),
                    Err(e) => return Some(Err(e)),
                }
            } else if let Some(text) = part.text.as_deref()
                && !text.trim().is_empty()
            {
                texts.push(text.trim().to_owned());
            }
        }
        if images.is_empty() {
            return None;
        }
        let served_model = body
            .model_version
            .map_or_else(|| model.to_owned(), Cow::into_owned);
        let mut response =
            GenerateResponse::new(images, ServedBy::new(provider, served_model, None));
        response.note = (!texts.is_empty()).then(|| texts.join("\n"));
        response.request_id = body.response_id.map(Cow::into_owned);
        response.usage = body.usage_metadata.as_ref().map(super::usage);
        Some(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Both readings, as comparable text.
    fn both(body: &[u8]) -> (String, String) {
        let show = |r: Result<GenerateResponse, Error>| match r {
            Ok(r) => format!("{r:?}"),
            Err(e) => format!("{:?}: {}", e.kind(), e.message()),
        };
        (
            show(parse_success(body, "m", "gemini")),
            show(parse_tree(body, "m", "gemini")),
        )
    }

    #[test]
    fn the_borrowed_reading_agrees_with_the_tree_on_every_fixture_and_edge() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
        let mut bodies: Vec<Vec<u8>> = Vec::new();
        for dir in [
            "gemini/generate-content",
            "gemini/predict",
            "vertex/generate-content",
            "vertex/predict",
        ] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let fixture: Value =
                    serde_json::from_slice(&std::fs::read(entry.unwrap().path()).unwrap()).unwrap();
                let response = &fixture["response"];
                if response["status"] != 200 {
                    continue;
                }
                bodies.push(match (&response["body_json"], &response["body_text"]) {
                    (Value::Null, Value::String(text)) => text.clone().into_bytes(),
                    (json, _) => serde_json::to_vec(json).unwrap(),
                });
            }
        }
        assert!(bodies.len() >= 20, "found {} 200 fixtures", bodies.len());
        let part = |p: Value| json!({"candidates": [{"content": {"parts": [p]}}]});
        let inline = json!({"mimeType": "image/png", "data": PNG});
        for edge in [
            part(json!({"inlineData": null})),
            part(json!({"inlineData": inline, "text": "both"})),
            part(json!({"inline_data": {"mime_type": "image/png", "data": PNG}})),
            part(json!({"inlineData": {"mimeType": null, "mime_type": "image/png", "data": PNG}})),
            part(json!({"inlineData": {"data": PNG}})),
            part(json!({"inlineData": {"mimeType": "image/png", "data": 7}})),
            part(json!({"inlineData": {"mimeType": "image/png", "data": "@@@"}})),
            part(json!({"inlineData": inline, "thought": "yes"})),
            part(json!({"inlineData": inline, "thought": true})),
            json!({"candidates": [{"content": {"parts": [{"inlineData": inline}]}}], "modelVersion": 3}),
            json!({"candidates": [{"content": {"parts": [{"inlineData": inline}]}}], "usageMetadata": null, "responseId": "r"}),
            json!({"candidates": [{"content": {"parts": [{"inlineData": inline}]}}], "predictions": null}),
            json!({"candidates": [{"content": null}, {"content": {"parts": [{"inlineData": inline}]}}]}),
            json!({"candidates": [7, {"content": {"parts": [{"inlineData": inline}]}}]}),
            json!({"candidates": {"content": {}}}),
            json!([{"candidates": []}]),
        ] {
            bodies.push(serde_json::to_vec(&edge).unwrap());
        }
        // Escaped solidus in the base64 (some encoders write "\/"): not borrowable, still read.
        bodies.push(
            format!(r#"{{"candidates":[{{"content":{{"parts":[{{"inlineData":{{"mimeType":"image/png","data":"{}"}}}}]}}}}]}}"#,
                PNG.replace('/', "\\/"))
            .into_bytes(),
        );
        bodies
            .push(br#"{"candidates":[{"content":{"parts":[{"text":"a","text":"b"}]}}]}"#.to_vec());
        let mut borrowed = 0;
        for body in &bodies {
            let (fast, tree) = both(body);
            assert_eq!(fast, tree, "{}", String::from_utf8_lossy(body));
            borrowed += usize::from(borrowed::images(body, "m", "gemini").is_some());
        }
        // The borrowed reading really is the one image answers take.
        assert!(borrowed >= 10, "only {borrowed} bodies were read borrowed");
    }

    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";

    #[test]
    fn images_from_any_part_and_text_as_note() {
        let body = json!({"candidates": [{"content": {"parts": [
            {"text": "Here you go."},
            {"text": "draft", "thought": true},
            {"inlineData": {"mimeType": "image/png", "data": PNG}, "thoughtSignature": "sig"}
        ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 1219, "thoughtsTokenCount": 244,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}]},
        "modelVersion": "gemini-3-pro-image-preview", "responseId": "r1"});
        let response = parse_success(body.to_string().as_bytes(), "asked", "gemini").unwrap();
        assert_eq!(response.images.len(), 1);
        assert_eq!(response.note.as_deref(), Some("Here you go."));
        assert_eq!(response.served_by.model, "gemini-3-pro-image-preview");
        let usage = response.usage.unwrap();
        assert_eq!(
            (usage.input_tokens, usage.output_tokens, usage.image_tokens),
            (8, 1463, Some(1120))
        );
    }

    #[test]
    fn text_only_is_no_image_with_the_models_words() {
        let body = json!({"candidates": [{"content": {"parts": [{"text": "Here is an image of a cat"}]}, "finishReason": "STOP"}]});
        let e = parse_success(body.to_string().as_bytes(), "m", "vertex").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NoImage);
        assert!(
            e.message().contains("Here is an image of a cat"),
            "{}",
            e.message()
        );
        assert_eq!(e.upstream_code(), Some("STOP"));
        assert_eq!(
            e.provider(),
            Some("vertex"),
            "the caller names the provider"
        );
    }

    #[test]
    fn odd_success_bodies_are_invalid_responses() {
        for body in [
            &b""[..],
            b"<html>portal</html>",
            b"{\"candidates\": [",
            b"[1]",
            b"42",
        ] {
            let e = parse_success(body, "m", "gemini").unwrap_err();
            assert_eq!(
                e.kind(),
                ErrorKind::InvalidResponse,
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(e.http_status(), Some(200));
        }
        let bad = json!({"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "AA=="}}]}}]});
        assert_eq!(
            parse_success(bad.to_string().as_bytes(), "m", "gemini")
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidResponse
        );
    }
}

//! Decoding a chat-completions answer into images, or into the error hidden inside a 200.
//!
//! OpenRouter returns images as data URLs in `choices[].message.images[].image_url.url`. The
//! bytes are decoded and checked with [`Image::checked`] (the MIME type in the URL is a claim,
//! not a fact). A 200 can still be a failure: an `error` object at the top level (the shape of
//! a mid-stream error chunk), `choices[].error`, or `finish_reason: "error"`; and a 200 without
//! images is a refusal (`content_blocked`) or a text-only answer (`no_image`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::{HeaderMap, StatusCode};
use imagegate_core::{Error, ErrorKind, GenerateResponse, Image, ServedBy, TokenUsage};
use jiff::Timestamp;
use serde_json::Value;

use crate::DEFAULT_MODEL;
use crate::classify::{PROVIDER, classify_body, classify_envelope, one_line};
use crate::envelope::Envelope;

/// Gemini finish reasons (surfaced in `native_finish_reason`) that mean a safety refusal.
const BLOCKED_REASONS: [&str; 9] = [
    "SAFETY",
    "IMAGE_SAFETY",
    "PROHIBITED_CONTENT",
    "IMAGE_PROHIBITED_CONTENT",
    "BLOCKLIST",
    "SPII",
    "RECITATION",
    "IMAGE_RECITATION",
    "CONTENT_FILTER",
];

/// Decodes a successful (HTTP 2xx) chat-completions body.
///
/// `model` is the model that was asked for; the answer's own `model` field wins when present.
/// Errors inside the 200 are classified like any other OpenRouter error (without a clock, so a
/// daily reset is known only when the body stamps it; [`parse_response`] has the clock).
///
/// # Errors
/// - the classified error for `error` / `choices[].error` / `finish_reason: "error"`;
/// - [`ErrorKind::ContentBlocked`] for a refusal (`refusal`, `content_filter`, Gemini's
///   `IMAGE_SAFETY` and kin in `native_finish_reason`);
/// - [`ErrorKind::NoImage`] for an answer without images;
/// - [`ErrorKind::InvalidResponse`] for a body that is not a chat completion, or an image that
///   is not a base64 data URL of a PNG, JPEG, WebP or GIF image.
pub fn parse_success(body: &[u8], model: &str) -> Result<GenerateResponse, Error> {
    decode(StatusCode::OK, &HeaderMap::new(), body, model, None)
}

/// Decodes any chat-completions answer: [`parse_success`] for a 2xx, else
/// [`crate::parse_error`]. The table runner feeds every fixture through this.
///
/// # Errors
/// As [`parse_success`] and [`crate::parse_error`].
pub fn parse_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<GenerateResponse, Error> {
    respond(status, headers, body, DEFAULT_MODEL, Some(now))
}

/// [`parse_response`] for a known requested model.
pub(crate) fn respond(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
    now: Option<Timestamp>,
) -> Result<GenerateResponse, Error> {
    if !status.is_success() {
        return Err(classify_body(status, headers, body, now));
    }
    decode(status, headers, body, model, now)
}

fn decode(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
    now: Option<Timestamp>,
) -> Result<GenerateResponse, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "the {} answer is not JSON ({} bytes): {e}; starts with: {}",
            status.as_u16(),
            body.len(),
            one_line(&String::from_utf8_lossy(&body[..body.len().min(80)]))
        ))
    })?;
    if let Some(envelope) = value.get("error").and_then(Envelope::from_error_object) {
        return Err(classify_envelope(status, headers, &envelope, now));
    }
    let choices = value
        .get("choices")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| invalid("the answer has no `choices`: it is not a chat completion"))?;
    for choice in choices {
        if let Some(envelope) = choice.get("error").and_then(Envelope::from_error_object) {
            return Err(classify_envelope(status, headers, &envelope, now));
        }
        if choice.get("finish_reason").and_then(Value::as_str) == Some("error") {
            let envelope = Envelope {
                message: "the model failed while generating (finish_reason \"error\")".into(),
                ..Envelope::default()
            };
            return Err(classify_envelope(status, headers, &envelope, now));
        }
    }

    let mut images = Vec::new();
    let mut notes = Vec::new();
    for choice in choices {
        let message = choice.get("message").or_else(|| choice.get("delta"));
        let Some(message) = message else { continue };
        for entry in message
            .get("images")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            images.push(decode_entry(entry)?);
        }
        if let Some(text) = text_of(message.get("content")) {
            notes.push(text);
        }
    }

    if images.is_empty() {
        return Err(no_image(choices, &notes));
    }
    let served = value
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or(model);
    let mut response = GenerateResponse::new(images, ServedBy::new(PROVIDER, served, None));
    response.request_id = value.get("id").and_then(Value::as_str).map(str::to_owned);
    response.note = (!notes.is_empty()).then(|| notes.join("\n"));
    if let Some(usage) = value.get("usage") {
        response.usage = usage_of(usage);
        response.cost_usd = usage.get("cost").and_then(Value::as_f64);
    }
    Ok(response)
}

/// One `images[]` entry: `{"type": "image_url", "image_url": {"url": "data:..."}}` (a bare
/// string in `image_url` is accepted too).
fn decode_entry(entry: &Value) -> Result<Image, Error> {
    let url = entry
        .get("image_url")
        .and_then(|u| u.get("url").or(Some(u)))
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("an `images[]` entry has no `image_url.url`"))?;
    decode_data_url(url)
}

/// A `data:<mime>;base64,<data>` URL as a checked image. Remote URLs are refused: fetching
/// them would be a second request the router cannot see.
pub(crate) fn decode_data_url(url: &str) -> Result<Image, Error> {
    let rest = url.strip_prefix("data:").ok_or_else(|| {
        invalid("an image was sent as a link, not as a data URL; it was not fetched")
    })?;
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| invalid("an image data URL has no `,` before its data"))?;
    let mut params = meta.split(';');
    let mime = params.next().unwrap_or_default().trim().to_owned();
    if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return Err(invalid(format!(
            "an image data URL labelled `{mime}` is not base64-encoded"
        )));
    }
    // Line breaks inside the data are allowed; the copy without them is made only when there
    // are some (a 4K image's base64 is ~16 MB, docs/performance.md "Memory").
    let data: std::borrow::Cow<'_, str> = if data.bytes().any(|b| b.is_ascii_whitespace()) {
        data.chars().filter(|c| !c.is_ascii_whitespace()).collect()
    } else {
        data.into()
    };
    let bytes = STANDARD
        .decode(data.as_bytes())
        .or_else(|_| STANDARD_NO_PAD.decode(data.trim_end_matches('=').as_bytes()))
        .map_err(|e| {
            invalid(format!(
                "an image data URL labelled `{mime}` is not valid base64: {e}"
            ))
        })?;
    Image::checked(bytes, &mime).map_err(|e| e.with_provider(PROVIDER).with_http_status(200))
}

/// Why a 200 holds no image.
fn no_image(choices: &[Value], notes: &[String]) -> Error {
    let first = &choices[0];
    let native = first
        .get("native_finish_reason")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let finish = first
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let refusal = first
        .get("message")
        .and_then(|m| m.get("refusal"))
        .and_then(Value::as_str)
        .filter(|r| !r.trim().is_empty());
    let blocked_native = native
        .as_deref()
        .is_some_and(|n| BLOCKED_REASONS.contains(&n.to_ascii_uppercase().as_str()));
    let said = notes
        .first()
        .map(|n| format!("; the model said: {}", one_line(n)))
        .unwrap_or_default();
    let reason = native.clone().unwrap_or_else(|| finish.to_owned());
    let (kind, message) = if let Some(refusal) = refusal {
        (
            ErrorKind::ContentBlocked,
            format!("the model refused: {}", one_line(refusal)),
        )
    } else if blocked_native || finish == "content_filter" {
        (
            ErrorKind::ContentBlocked,
            format!("the answer was blocked ({reason}){said}"),
        )
    } else {
        (
            ErrorKind::NoImage,
            format!("the answer holds no image (finish reason {reason:?}){said}"),
        )
    };
    let error = Error::new(kind, message)
        .with_provider(PROVIDER)
        .with_http_status(200);
    match native.or_else(|| (!finish.is_empty()).then(|| finish.to_owned())) {
        Some(code) => error.with_upstream_code(code),
        None => error,
    }
}

/// The text of a message's `content`: a string, or the `text` parts of an array.
fn text_of(content: Option<&Value>) -> Option<String> {
    let text = match content? {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => return None,
    };
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn usage_of(usage: &Value) -> Option<TokenUsage> {
    let count = |v: Option<&Value>| v.and_then(Value::as_u64);
    let input = count(usage.get("prompt_tokens"));
    let output = count(usage.get("completion_tokens"));
    if input.is_none() && output.is_none() {
        return None;
    }
    let mut tokens = TokenUsage::default();
    tokens.input_tokens = input.unwrap_or(0);
    tokens.output_tokens = output.unwrap_or(0);
    tokens.image_tokens = count(
        usage
            .get("completion_tokens_details")
            .and_then(|d| d.get("image_tokens")),
    );
    Some(tokens)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidResponse, message)
        .with_provider(PROVIDER)
        .with_http_status(200)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";

    #[test]
    fn data_urls_are_checked_not_trusted() {
        let image = decode_data_url(&format!("data:image/jpeg;base64,{PNG_B64}")).unwrap();
        assert_eq!(image.mime_type, "image/png");
        let unpadded = PNG_B64.trim_end_matches('=');
        assert!(decode_data_url(&format!("data:image/png;base64,{unpadded}")).is_ok());
        // Line breaks inside the data (as MIME encoders wrap it) are skipped.
        let (a, b) = PNG_B64.split_at(20);
        let wrapped = decode_data_url(&format!("data:image/png;base64,{a}\r\n {b}\n")).unwrap();
        assert_eq!(wrapped.bytes, image.bytes);
        for bad in [
            "https://cdn.example/x.png".to_owned(),
            "data:image/png;base64".to_owned(),
            format!("data:image/png,{PNG_B64}"),
            "data:image/png;base64,@@@".to_owned(),
            "data:image/png;base64,PGh0bWw+".to_owned(),
        ] {
            let err = decode_data_url(&bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{bad}: {err}");
            assert_eq!(err.provider(), Some("openrouter"));
        }
    }

    #[test]
    fn non_json_and_non_completion_bodies_are_invalid_responses() {
        for body in [
            &b"<html>oops</html>"[..],
            b"",
            b"{\"id\":\"x\"}",
            b"{\"choices\":[]}",
            b"{\"choices\":",
        ] {
            let err = parse_success(body, "m").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
        }
    }
}

//! What comes back: `{"created", "data": [{"b64_json" | "url", "revised_prompt"?}], "usage"?}`
//! (the OpenAI API reference, "The image generation response"), or an error envelope.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::{HeaderMap, StatusCode};
use imagegate_core::{Error, ErrorKind, GenerateResponse, Image, ServedBy, TokenUsage};
use jiff::Timestamp;
use serde_json::Value;

use crate::classify::{PROVIDER, classify_envelope, one_line, parse_error};
use crate::descriptor::cost_from_usage;
use crate::envelope::Envelope;

/// A success body read: the images it held inline and the links it gave instead.
#[derive(Debug)]
pub(crate) struct Reading {
    /// The response with every inline image, in order.
    pub response: GenerateResponse,
    /// `(position, url)` of images given as links, for the provider to download.
    pub links: Vec<(usize, String)>,
}

/// Classifies any answer to a request for `model`: a non-2xx through [`parse_error`], a 2xx
/// through [`parse_success`] (an error envelope inside a 200 is classified by its own type and
/// code). The upstream's `x-request-id` becomes the response's request id. The answer does not
/// name the model, so the caller says which it asked for.
///
/// # Errors
/// The classified error.
pub fn parse_response(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
    now: Timestamp,
) -> Result<GenerateResponse, Error> {
    respond(status, headers, body, model, now)
}

/// Decodes a 200 body of `model` whose images are all inline (`b64_json`).
///
/// # Errors
/// [`ErrorKind::InvalidResponse`] for a body that is not an images answer, undecodable
/// base64, bytes that are not an image, or images given only as links (which need a download:
/// [`crate::OpenAiProvider`] does it, this pure function cannot);
/// [`ErrorKind::NoImage`] for an empty `data`; the classified error for an error envelope.
pub fn parse_success(body: &[u8], model: &str) -> Result<GenerateResponse, Error> {
    let reading = read(StatusCode::OK, &HeaderMap::new(), body, model, None)?;
    if !reading.links.is_empty() {
        return Err(invalid(format!(
            "{} image(s) were given as links, not inline; the provider downloads them",
            reading.links.len()
        )));
    }
    Ok(reading.response)
}

/// The `url` of every image given as a link, in order (servers that cannot answer in
/// base64; their links usually expire within the hour).
pub fn image_links(body: &[u8]) -> Vec<String> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("data").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter(|e| e.get("b64_json").and_then(Value::as_str).is_none())
        .filter_map(|e| e.get("url").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// [`parse_response`]: an error classified, or a success whose images are all inline.
pub(crate) fn respond(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
    now: Timestamp,
) -> Result<GenerateResponse, Error> {
    if !status.is_success() {
        return Err(parse_error(status, headers, body, now));
    }
    let reading = read(status, headers, body, model, Some(now))?;
    if !reading.links.is_empty() {
        return Err(invalid(format!(
            "{} image(s) were given as links, not inline; the provider downloads them",
            reading.links.len()
        )));
    }
    Ok(reading.response)
}

/// Reads a 2xx body: inline images decoded and checked, links collected.
pub(crate) fn read(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
    now: Option<Timestamp>,
) -> Result<Reading, Error> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "the {} answer is not JSON ({} bytes): {e}; starts with: {}",
            status.as_u16(),
            body.len(),
            one_line(&String::from_utf8_lossy(&body[..body.len().min(80)]))
        ))
    })?;
    if let Some(envelope) = Envelope::from_body(&value) {
        return Err(classify_envelope(status, headers, &envelope, now));
    }
    let data = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("the answer has no `data` array: not an images answer"))?;
    if data.is_empty() {
        return Err(Error::new(
            ErrorKind::NoImage,
            "the answer's `data` holds no image".to_owned(),
        )
        .with_provider(PROVIDER)
        .with_http_status(status.as_u16()));
    }
    let mut images = Vec::new();
    let mut links = Vec::new();
    let mut revised = Vec::new();
    for (i, entry) in data.iter().enumerate() {
        if let Some(text) = entry.get("revised_prompt").and_then(Value::as_str)
            && !text.trim().is_empty()
        {
            revised.push(text.trim().to_owned());
        }
        match (
            entry.get("b64_json").and_then(Value::as_str),
            entry.get("url").and_then(Value::as_str),
        ) {
            (Some(data), _) => images.push(decode_b64(data, i)?),
            (None, Some(url)) => links.push((i, url.to_owned())),
            (None, None) => {
                return Err(invalid(format!(
                    "`data[{i}]` has neither `b64_json` nor `url`"
                )));
            }
        }
    }
    let served = value
        .get("model")
        .and_then(Value::as_str)
        .filter(|m| !m.is_empty())
        .unwrap_or(model);
    let mut response = GenerateResponse::new(images, ServedBy::new(PROVIDER, served, None));
    response.request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    response.note = (!revised.is_empty()).then(|| {
        revised
            .iter()
            .map(|r| format!("revised prompt: {r}"))
            .collect::<Vec<_>>()
            .join("\n")
    });
    if let Some(usage) = value.get("usage") {
        response.usage = usage_of(usage);
        response.cost_usd = response
            .usage
            .as_ref()
            .and_then(|_| cost_from_usage(served, usage));
    }
    Ok(Reading { response, links })
}

/// `data[i].b64_json` as a checked image (the bytes decide the type).
fn decode_b64(data: &str, i: usize) -> Result<Image, Error> {
    let data: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = STANDARD
        .decode(data.as_bytes())
        .or_else(|_| STANDARD_NO_PAD.decode(data.trim_end_matches('=').as_bytes()))
        .map_err(|e| invalid(format!("`data[{i}].b64_json` is not valid base64: {e}")))?;
    Image::checked(bytes, "image/png").map_err(|e| e.with_provider(PROVIDER).with_http_status(200))
}

/// GPT-image usage: `input_tokens`, `output_tokens` (all image tokens),
/// `input_tokens_details.image_tokens`.
fn usage_of(usage: &Value) -> Option<TokenUsage> {
    let count = |v: Option<&Value>| v.and_then(Value::as_u64);
    let input = count(usage.get("input_tokens"));
    let output = count(usage.get("output_tokens"));
    if input.is_none() && output.is_none() {
        return None;
    }
    let mut tokens = TokenUsage::default();
    tokens.input_tokens = input.unwrap_or(0);
    tokens.output_tokens = output.unwrap_or(0);
    tokens.image_tokens = output;
    Some(tokens)
}

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidResponse, message)
        .with_provider(PROVIDER)
        .with_http_status(200)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";

    #[test]
    fn inline_images_links_and_revised_prompts() {
        let body = format!(
            r#"{{"created":1,"data":[{{"b64_json":"{PNG_B64}","revised_prompt":"a red fox"}},{{"url":"https://cdn.example/x.png"}}]}}"#
        );
        let reading = read(
            StatusCode::OK,
            &HeaderMap::new(),
            body.as_bytes(),
            "dall-e-3",
            None,
        )
        .unwrap();
        assert_eq!(reading.response.images.len(), 1);
        assert_eq!(
            reading.links,
            vec![(1, "https://cdn.example/x.png".to_owned())]
        );
        assert_eq!(
            reading.response.note.as_deref(),
            Some("revised prompt: a red fox")
        );
        assert_eq!(image_links(body.as_bytes()), ["https://cdn.example/x.png"]);
        let err = parse_success(body.as_bytes(), "dall-e-3").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
    }

    #[test]
    fn bodies_that_are_not_answers() {
        for body in [
            &b"<html>"[..],
            b"",
            b"{}",
            b"{\"data\":{}}",
            b"{\"data\":[{}]}",
            b"{\"data\":[{\"b64_json\":\"@@\"}]}",
        ] {
            let err = parse_success(body, "m").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
            assert_eq!(err.provider(), Some("openai"));
        }
        assert_eq!(
            parse_success(b"{\"data\":[]}", "m").unwrap_err().kind(),
            ErrorKind::NoImage
        );
    }
}

//! What is sent: the JSON body of `POST /images/generations`, the multipart form of
//! `POST /images/edits`, and what each model family accepts.
//!
//! Sizes and counts follow the OpenAI API reference ("Images"): `gpt-image-1` takes
//! `1024x1024`, `1536x1024` (landscape) and `1024x1536` (portrait) and up to 10 images a call
//! and always answers in base64 (it refuses `response_format`); `dall-e-3` takes `1024x1024`,
//! `1792x1024` and `1024x1792` and one image a call; `dall-e-2` takes square `256x256`,
//! `512x512` and `1024x1024`. Other models (self-hosted servers, aggregators) get the requested
//! shape as `WxH` and are asked for base64.

use bytes::Bytes;
use imagegate_core::{AspectRatio, Capabilities, GenerateRequest, ImageSize, extension_for};
use serde_json::{Value, json};

/// How a model family speaks the Images API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelFamily {
    /// `gpt-image-1`, `gpt-image-1-mini`, ...: base64 only, three sizes, up to 10 per call.
    GptImage,
    /// `dall-e-3`: three sizes, one image per call, no edits.
    DallE3,
    /// `dall-e-2`: square sizes, up to 10 per call, edits with one image.
    DallE2,
    /// Anything else speaking the API (LocalAI, relays): `WxH` sizes, one image per call.
    Other,
}

impl ModelFamily {
    /// The family of `model` (a vendor prefix such as `openai/` is ignored).
    pub fn of(model: &str) -> ModelFamily {
        let bare = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        if bare.starts_with("gpt-image") || bare.starts_with("chatgpt-image") {
            ModelFamily::GptImage
        } else if bare.starts_with("dall-e-3") {
            ModelFamily::DallE3
        } else if bare.starts_with("dall-e-2") {
            ModelFamily::DallE2
        } else {
            ModelFamily::Other
        }
    }
}

/// What `model` can do, from the documented table above (unknown models: permissive, one
/// image per call).
pub fn capabilities(model: &str) -> Capabilities {
    match ModelFamily::of(model) {
        ModelFamily::GptImage => {
            let mut c = Capabilities::new(10);
            c.editing = true;
            c.sizes = vec![ImageSize::OneK];
            c
        }
        ModelFamily::DallE3 => {
            let mut c = Capabilities::new(1);
            c.sizes = vec![ImageSize::OneK];
            c
        }
        ModelFamily::DallE2 => {
            let mut c = Capabilities::new(10);
            c.editing = true;
            c.sizes = vec![ImageSize::Half, ImageSize::OneK];
            c.aspect_ratios = vec![AspectRatio::SQUARE];
            c
        }
        ModelFamily::Other => {
            let mut c = Capabilities::new(1);
            c.editing = true;
            c
        }
    }
}

/// The `size` parameter for a request's aspect ratio and size, or `None` to let the server
/// choose (no shape was asked for). GPT-image and DALL-E 3 get the documented size of the
/// same orientation; other models get the exact `WxH`.
pub fn size_for(
    model: &str,
    ratio: Option<AspectRatio>,
    size: Option<ImageSize>,
) -> Option<String> {
    let orientation = |square: &str, landscape: &str, portrait: &str| {
        ratio.map(|r| {
            if r.width() > r.height() {
                landscape.to_owned()
            } else if r.width() < r.height() {
                portrait.to_owned()
            } else {
                square.to_owned()
            }
        })
    };
    match ModelFamily::of(model) {
        ModelFamily::GptImage => orientation("1024x1024", "1536x1024", "1024x1536"),
        ModelFamily::DallE3 => orientation("1024x1024", "1792x1024", "1024x1792"),
        ModelFamily::DallE2 => match size {
            Some(ImageSize::Half) => Some("512x512".to_owned()),
            Some(_) => Some("1024x1024".to_owned()),
            None => ratio.map(|_| "1024x1024".to_owned()),
        },
        ModelFamily::Other => {
            if ratio.is_none() && size.is_none() {
                return None;
            }
            let long = size.unwrap_or(ImageSize::OneK).long_side();
            let (w, h) = ratio.unwrap_or(AspectRatio::SQUARE).dimensions(long);
            Some(format!("{w}x{h}"))
        }
    }
}

/// The text fields both endpoints share, in the order they are sent.
fn fields(request: &GenerateRequest, model: &str) -> Vec<(&'static str, Value)> {
    let mut fields = vec![
        ("model", json!(model)),
        ("prompt", json!(request.prompt)),
        ("n", json!(request.count.max(1))),
    ];
    if let Some(size) = size_for(model, request.aspect_ratio, request.size) {
        fields.push(("size", json!(size)));
    }
    // GPT-image models always answer in base64 and refuse the parameter; everything else
    // defaults to URLs, which would cost a second request per image.
    if ModelFamily::of(model) != ModelFamily::GptImage {
        fields.push(("response_format", json!("b64_json")));
    }
    fields
}

/// The JSON body of `POST /images/generations` for `request` and `model`.
pub fn build_request(request: &GenerateRequest, model: &str) -> Value {
    Value::Object(
        fields(request, model)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )
}

/// One reference image as a multipart file part.
#[derive(Clone, Debug, PartialEq)]
pub struct EditImage {
    /// The form field: `image[]` (several images), `image` for DALL-E 2 (one).
    pub field: &'static str,
    /// The part's file name (`image-1.png`): the server reads the type from it.
    pub file_name: String,
    /// The part's content type.
    pub mime_type: String,
    /// The image.
    pub bytes: Bytes,
}

/// The multipart form of `POST /images/edits`, as plain data (the provider turns it into a
/// `reqwest` form; tests snapshot [`EditForm::describe`]).
#[derive(Clone, Debug, PartialEq)]
pub struct EditForm {
    /// Text fields, in order.
    pub fields: Vec<(&'static str, String)>,
    /// The reference images, in the request's order.
    pub images: Vec<EditImage>,
}

impl EditForm {
    /// The form without the image bytes (their length instead), for logs and snapshots.
    pub fn describe(&self) -> Value {
        json!({
            "fields": self.fields.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "images": self.images.iter().map(|i| json!({
                "field": i.field,
                "file_name": i.file_name,
                "mime_type": i.mime_type,
                "bytes": i.bytes.len(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// The form of `POST /images/edits`: the same fields as a generation plus the reference images.
pub fn build_edit_form(request: &GenerateRequest, model: &str) -> EditForm {
    let field = if ModelFamily::of(model) == ModelFamily::DallE2 {
        "image"
    } else {
        "image[]"
    };
    EditForm {
        fields: fields(request, model)
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect(),
        images: request
            .reference_images
            .iter()
            .enumerate()
            .map(|(i, image)| EditImage {
                field,
                file_name: format!("image-{}.{}", i + 1, extension_for(&image.mime_type)),
                mime_type: image.mime_type.clone(),
                bytes: image.bytes.clone(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ratio(text: &str) -> Option<AspectRatio> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn sizes_follow_each_family() {
        assert_eq!(
            size_for("gpt-image-1", ratio("16:9"), None).as_deref(),
            Some("1536x1024")
        );
        assert_eq!(
            size_for("gpt-image-1", ratio("2:3"), None).as_deref(),
            Some("1024x1536")
        );
        assert_eq!(size_for("gpt-image-1", None, Some(ImageSize::OneK)), None);
        assert_eq!(
            size_for("dall-e-3", ratio("9:16"), None).as_deref(),
            Some("1024x1792")
        );
        assert_eq!(
            size_for("dall-e-3", ratio("1:1"), None).as_deref(),
            Some("1024x1024")
        );
        assert_eq!(
            size_for("dall-e-2", None, Some(ImageSize::Half)).as_deref(),
            Some("512x512")
        );
        assert_eq!(
            size_for("local-sd", ratio("1:1"), Some(ImageSize::Half)).as_deref(),
            Some("512x512")
        );
        assert_eq!(size_for("local-sd", None, None), None);
    }

    #[test]
    fn families_and_capabilities() {
        assert_eq!(
            ModelFamily::of("openai/gpt-image-1-mini"),
            ModelFamily::GptImage
        );
        assert_eq!(ModelFamily::of("DALL-E-3"), ModelFamily::DallE3);
        assert_eq!(capabilities("dall-e-3").max_images_per_call, 1);
        assert!(!capabilities("dall-e-3").editing);
        assert_eq!(capabilities("gpt-image-1").max_images_per_call, 10);
        assert_eq!(capabilities("stablediffusion").max_images_per_call, 1);
        let body = build_request(&GenerateRequest::new("x"), "gpt-image-1");
        assert!(body.get("response_format").is_none());
        let body = build_request(&GenerateRequest::new("x"), "dall-e-3");
        assert_eq!(body["response_format"], "b64_json");
    }
}

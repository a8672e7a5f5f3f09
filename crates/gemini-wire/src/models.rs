//! What each Gemini image or Imagen model accepts (on the Gemini API and on Vertex AI alike): its endpoint, how many images one call returns, which
//! sizes and aspect ratios it takes.
//!
//! Sources: Google's image-generation and Imagen docs (ai.google.dev/gemini-api/docs/image-generation,
//! ai.google.dev/gemini-api/docs/imagen) and the recorded Imagen fixture. Model ids are
//! matched by family prefix, not exact string, because Google publishes `-preview`, `-001` and
//! dated variants of the same model.

use imagegate_core::{AspectRatio, Capabilities, Error, ErrorKind, ImageSize};

/// The model used when neither the request nor the builder names one: the generally available
/// Gemini 2.5 Flash Image ($0.039 per image on the Gemini API).
pub const DEFAULT_MODEL: &str = "gemini-2.5-flash-image";

/// The REST method a model is called through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /v1beta/models/{model}:generateContent`: the Gemini image models.
    GenerateContent,
    /// `POST /v1beta/models/{model}:predict`: the Imagen models.
    Predict,
}

impl Endpoint {
    /// The method name after the colon (`generateContent`, `predict`).
    pub const fn method(self) -> &'static str {
        match self {
            Endpoint::GenerateContent => "generateContent",
            Endpoint::Predict => "predict",
        }
    }

    /// The fixture directory name (`generate-content`, `predict`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Endpoint::GenerateContent => "generate-content",
            Endpoint::Predict => "predict",
        }
    }

    /// The request path for `model`, e.g. `/v1beta/models/gemini-2.5-flash-image:generateContent`.
    pub fn path(self, model: &str) -> String {
        format!("/v1beta/models/{model}:{}", self.method())
    }
}

/// The endpoint `model` is called through: `imagen-*` models use `:predict`, everything else
/// `:generateContent`.
pub fn endpoint_for(model: &str) -> Endpoint {
    if normalize_model(model).starts_with("imagen-") {
        Endpoint::Predict
    } else {
        Endpoint::GenerateContent
    }
}

/// The model id without the `models/` prefix the API also accepts.
pub fn normalize_model(model: &str) -> &str {
    let model = model.trim();
    model.strip_prefix("models/").unwrap_or(model)
}

/// Checks that `model` can go into a URL path as is. Model ids are lowercase words, digits,
/// dots and dashes; anything else (a slash, `?`, spaces) would change the URL we call.
///
/// # Errors
/// [`ErrorKind::InvalidRequest`] naming the model.
pub fn check_model(model: &str) -> Result<&str, Error> {
    let model = normalize_model(model);
    let ok = !model.is_empty()
        && model
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '@'));
    if ok {
        Ok(model)
    } else {
        Err(Error::new(
            ErrorKind::InvalidRequest,
            format!("`{model}` is not a Gemini model id (expected e.g. {DEFAULT_MODEL})"),
        ))
    }
}

/// The most images one Imagen `:predict` call returns (`sampleCount` 1-4).
pub const IMAGEN_MAX_SAMPLES: u32 = 4;

/// What `model` can do.
///
/// - Gemini image models: one image per call (they reject `candidateCount` above 1), reference
///   images for editing, `imageSize` only on the Gemini 3 family (`0.5K` only on 3.1 Flash
///   Image), the ten documented aspect ratios plus four extreme ones on 3.1 Flash Image.
/// - Imagen: up to four images per call, no editing, five aspect ratios, `sampleImageSize`
///   (1K/2K) on Imagen 4 Standard and Ultra only.
pub fn capabilities_for(model: &str) -> Capabilities {
    let model = normalize_model(model);
    match endpoint_for(model) {
        Endpoint::Predict => {
            let mut caps = Capabilities::new(IMAGEN_MAX_SAMPLES);
            caps.aspect_ratios = ratios(&["1:1", "3:4", "4:3", "9:16", "16:9"]);
            if imagen_takes_size(model) {
                caps.sizes = vec![ImageSize::OneK, ImageSize::TwoK];
            }
            caps
        }
        Endpoint::GenerateContent => {
            let mut caps = Capabilities::new(1);
            caps.editing = true;
            caps.seed = true;
            let mut accepted = vec![
                "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
            ];
            if is_flash_31(model) {
                accepted.extend(["1:4", "4:1", "1:8", "8:1"]);
            }
            caps.aspect_ratios = ratios(&accepted);
            if takes_image_size(model) {
                caps.sizes = if is_flash_31(model) {
                    ImageSize::ALL.to_vec()
                } else {
                    vec![ImageSize::OneK, ImageSize::TwoK, ImageSize::FourK]
                };
            }
            caps
        }
    }
}

/// `imageConfig.imageSize` applies to the Gemini 3 image models; gemini-2.5-flash-image (and
/// the 2.0 previews) take only `aspectRatio`.
pub fn takes_image_size(model: &str) -> bool {
    let model = normalize_model(model);
    endpoint_for(model) == Endpoint::GenerateContent
        && model.contains("image")
        && !(model.starts_with("gemini-2") || model.starts_with("gemini-1"))
}

fn is_flash_31(model: &str) -> bool {
    model.starts_with("gemini-3.1-flash-image")
}

/// Imagen 4 Standard and Ultra take `sampleImageSize`; Fast and Imagen 3 do not.
pub fn imagen_takes_size(model: &str) -> bool {
    model.starts_with("imagen-4") && !model.contains("fast")
}

fn ratios(list: &[&str]) -> Vec<AspectRatio> {
    list.iter().filter_map(|r| r.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_follow_the_model_family() {
        assert_eq!(endpoint_for("imagen-4.0-generate-001"), Endpoint::Predict);
        assert_eq!(
            endpoint_for("models/imagen-3.0-generate-002"),
            Endpoint::Predict
        );
        assert_eq!(endpoint_for(DEFAULT_MODEL), Endpoint::GenerateContent);
        assert_eq!(
            Endpoint::GenerateContent.path("gemini-3-pro-image-preview"),
            "/v1beta/models/gemini-3-pro-image-preview:generateContent"
        );
    }

    #[test]
    fn sizes_only_where_the_model_takes_them() {
        assert!(capabilities_for("gemini-2.5-flash-image").sizes.is_empty());
        assert_eq!(
            capabilities_for("gemini-3-pro-image-preview").sizes,
            [ImageSize::OneK, ImageSize::TwoK, ImageSize::FourK]
        );
        assert_eq!(
            capabilities_for("gemini-3.1-flash-image-preview").sizes,
            ImageSize::ALL
        );
        assert_eq!(
            capabilities_for("imagen-4.0-generate-001").sizes,
            [ImageSize::OneK, ImageSize::TwoK]
        );
        assert!(
            capabilities_for("imagen-4.0-fast-generate-001")
                .sizes
                .is_empty()
        );
    }

    #[test]
    fn one_image_per_gemini_call_four_per_imagen_call() {
        let gemini = capabilities_for(DEFAULT_MODEL);
        assert_eq!(gemini.max_images_per_call, 1);
        assert!(gemini.editing);
        assert_eq!(gemini.aspect_ratios.len(), 10);
        assert_eq!(
            capabilities_for("gemini-3.1-flash-image-preview")
                .aspect_ratios
                .len(),
            14
        );
        let imagen = capabilities_for("imagen-4.0-generate-001");
        assert_eq!(imagen.max_images_per_call, 4);
        assert!(!imagen.editing);
    }

    #[test]
    fn model_ids_cannot_reshape_the_url() {
        assert_eq!(
            check_model("models/gemini-2.5-flash-image").unwrap(),
            DEFAULT_MODEL
        );
        for bad in ["", "a/b", "x?key=1", "has space", "../../admin"] {
            assert_eq!(
                check_model(bad).unwrap_err().kind(),
                ErrorKind::InvalidRequest,
                "{bad}"
            );
        }
    }
}

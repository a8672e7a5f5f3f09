//! The one trait every backend implements.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::request::{AspectRatio, GenerateRequest, ImageSize};
use crate::response::GenerateResponse;

/// A backend that turns a [`GenerateRequest`] into images.
///
/// # Contract
/// - One call to [`generate`](Self::generate) makes **at most one billable upstream request**.
///   Implementations never retry, sleep, throttle or fall back: the router owns all of that,
///   because it must see every 429 to keep the quota model true, and retrying in two places
///   makes retry storms.
/// - Every failure is one [`crate::Error`] with the most specific [`crate::ErrorKind`], the
///   provider's [`name`](Self::name), the HTTP status, `retry_after` and the quota facts the
///   upstream gave, classified once by the provider's pure `parse_error`.
/// - A request the provider cannot serve ([`capabilities`](Self::capabilities) says so) fails
///   with [`crate::ErrorKind::InvalidRequest`] before anything is sent.
/// - No secret reaches an error, a log line, a URL or `Debug` output.
/// - `capabilities` is cheap and constant for the life of the value.
///
/// The trait is dyn-compatible: the router holds `Arc<dyn ImageProvider>`, and `Arc` and `Box`
/// forward every method.
#[async_trait]
pub trait ImageProvider: std::fmt::Debug + Send + Sync {
    /// A stable, lowercase provider name: `gemini`, `openrouter`, `mock`.
    fn name(&self) -> &str;

    /// The project or account whose quota this instance spends, when known. Keys of one
    /// project share its quota, so the router pools by this, not by key.
    fn project(&self) -> Option<&str> {
        None
    }

    /// The model used when a request names none.
    fn default_model(&self) -> &str;

    /// What the provider can do with `model` (`None`: the default model).
    fn capabilities(&self, model: Option<&str>) -> Capabilities;

    /// Makes at most one upstream request for `request` (see the trait's contract).
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse>;
}

#[async_trait]
impl<P: ImageProvider + ?Sized> ImageProvider for Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn project(&self) -> Option<&str> {
        (**self).project()
    }
    fn default_model(&self) -> &str {
        (**self).default_model()
    }
    fn capabilities(&self, model: Option<&str>) -> Capabilities {
        (**self).capabilities(model)
    }
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse> {
        (**self).generate(request).await
    }
}

#[async_trait]
impl<P: ImageProvider + ?Sized> ImageProvider for Box<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn project(&self) -> Option<&str> {
        (**self).project()
    }
    fn default_model(&self) -> &str {
        (**self).default_model()
    }
    fn capabilities(&self, model: Option<&str>) -> Capabilities {
        (**self).capabilities(model)
    }
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse> {
        (**self).generate(request).await
    }
}

/// What a provider can do for one model. The router skips targets that cannot serve a request
/// instead of calling them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Accepts reference images (editing).
    pub editing: bool,
    /// The most images one call can return. Gemini image models: 1 (they reject
    /// `candidateCount` above 1).
    pub max_images_per_call: u32,
    /// Sizes the model accepts; empty means the model takes no size parameter (it picks its own).
    pub sizes: Vec<ImageSize>,
    /// Aspect ratios the model accepts; empty means any.
    pub aspect_ratios: Vec<AspectRatio>,
    /// Honours a seed.
    pub seed: bool,
}

impl Capabilities {
    /// Capabilities with `max_images_per_call` images per call and nothing else.
    pub fn new(max_images_per_call: u32) -> Self {
        Capabilities {
            editing: false,
            max_images_per_call,
            sizes: Vec::new(),
            aspect_ratios: Vec::new(),
            seed: false,
        }
    }

    /// Whether a request's options fit these capabilities; `Err` names the first misfit.
    ///
    /// The image count is not checked: the router splits it into calls.
    pub fn check(&self, request: &GenerateRequest) -> std::result::Result<(), String> {
        if !request.reference_images.is_empty() && !self.editing {
            return Err("does not accept reference images".to_owned());
        }
        if let Some(size) = request.size
            && !self.sizes.is_empty()
            && !self.sizes.contains(&size)
        {
            return Err(format!("does not offer size {size}"));
        }
        if let Some(ratio) = request.aspect_ratio
            && !self.aspect_ratios.is_empty()
            && !self.aspect_ratios.contains(&ratio)
        {
            return Err(format!("does not offer aspect ratio {ratio}"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn _dyn_compatible(_: &dyn ImageProvider) {}

    #[test]
    fn capability_checks_name_the_misfit() {
        let mut caps = Capabilities::new(1);
        caps.sizes = vec![ImageSize::OneK];
        caps.aspect_ratios = vec![AspectRatio::SQUARE];
        let ok = GenerateRequest::new("x").with_count(4);
        assert_eq!(caps.check(&ok), Ok(()));
        let big = GenerateRequest::new("x").with_size(ImageSize::FourK);
        assert_eq!(caps.check(&big).unwrap_err(), "does not offer size 4K");
        let wide = GenerateRequest::new("x").with_aspect_ratio("16:9".parse().unwrap());
        assert!(caps.check(&wide).unwrap_err().contains("16:9"));
        let edit = GenerateRequest::new("x")
            .with_reference_image(crate::ReferenceImage::new(vec![1u8], "image/png"));
        assert!(caps.check(&edit).unwrap_err().contains("reference"));
    }
}

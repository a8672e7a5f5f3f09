//! What a caller asks for.

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A request for images. Providers borrow it (`&GenerateRequest`), so the router can send the
/// same request to several targets without cloning image bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerateRequest {
    /// What to draw.
    pub prompt: String,
    /// Images to edit or draw from, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_images: Vec<ReferenceImage>,
    /// How many images are wanted (at least 1). A provider whose
    /// [`Capabilities::max_images_per_call`](crate::Capabilities::max_images_per_call) is
    /// smaller receives the request split into several calls by the router.
    pub count: u32,
    /// Width:height, e.g. `16:9`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<AspectRatio>,
    /// Output resolution class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<ImageSize>,
    /// The provider's own model name; `None` means the target's or provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A seed, for providers that honour one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Who is waiting: interactive requests go before background ones.
    #[serde(default)]
    pub priority: Priority,
    /// The instant after which the result is no longer wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
}

impl GenerateRequest {
    /// A request for one image of `prompt` with every option at its default.
    pub fn new(prompt: impl Into<String>) -> Self {
        GenerateRequest {
            prompt: prompt.into(),
            reference_images: Vec::new(),
            count: 1,
            aspect_ratio: None,
            size: None,
            model: None,
            seed: None,
            priority: Priority::default(),
            deadline: None,
        }
    }

    /// Sets the number of images (at least 1; [`validate`](Self::validate) checks).
    #[must_use]
    pub fn with_count(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    /// Sets the aspect ratio.
    #[must_use]
    pub fn with_aspect_ratio(mut self, ratio: AspectRatio) -> Self {
        self.aspect_ratio = Some(ratio);
        self
    }

    /// Sets the image size.
    #[must_use]
    pub fn with_size(mut self, size: ImageSize) -> Self {
        self.size = Some(size);
        self
    }

    /// Sets the model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Sets the seed.
    #[must_use]
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the deadline.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Timestamp) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Adds a reference image (for editing).
    #[must_use]
    pub fn with_reference_image(mut self, image: ReferenceImage) -> Self {
        self.reference_images.push(image);
        self
    }

    /// Checks what can be checked without a provider: a prompt, at least one image.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) naming the problem.
    pub fn validate(&self) -> Result<()> {
        if self.prompt.trim().is_empty() && self.reference_images.is_empty() {
            return Err(Error::new(
                crate::ErrorKind::InvalidRequest,
                "the prompt is empty",
            ));
        }
        if self.count == 0 {
            return Err(Error::new(
                crate::ErrorKind::InvalidRequest,
                "the number of images must be at least 1",
            ));
        }
        Ok(())
    }
}

/// An input image for editing: bytes and their MIME type.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReferenceImage {
    /// The encoded image.
    #[serde(with = "crate::image::base64_bytes")]
    pub bytes: Bytes,
    /// `image/png`, `image/jpeg`, `image/webp`, ...
    pub mime_type: String,
}

impl ReferenceImage {
    /// A reference image from bytes and their MIME type.
    pub fn new(bytes: impl Into<Bytes>, mime_type: impl Into<String>) -> Self {
        ReferenceImage {
            bytes: bytes.into(),
            mime_type: mime_type.into(),
        }
    }

    /// A reference image whose MIME type is read from the bytes themselves.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest) when the bytes are not a
    /// PNG, JPEG, WebP or GIF image.
    pub fn sniffed(bytes: impl Into<Bytes>) -> Result<Self> {
        let bytes = bytes.into();
        let mime = crate::image::sniff_mime(&bytes).ok_or_else(|| {
            Error::new(
                crate::ErrorKind::InvalidRequest,
                "the reference image is not a PNG, JPEG, WebP or GIF image",
            )
        })?;
        Ok(ReferenceImage::new(bytes, mime))
    }
}

impl fmt::Debug for ReferenceImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReferenceImage")
            .field("mime_type", &self.mime_type)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}

/// Interactive requests are served before background ones; first come, first served within a
/// priority.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Someone is waiting for the answer.
    #[default]
    Interactive,
    /// Bulk work that can wait for capacity.
    Background,
}

impl FromStr for Priority {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "interactive" => Ok(Priority::Interactive),
            "background" => Ok(Priority::Background),
            other => Err(Error::config(format!(
                "unknown priority `{other}`: expected `interactive` or `background`"
            ))),
        }
    }
}

/// Output resolution class, as Gemini names them (`imageSize`): 0.5K, 1K, 2K, 4K.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ImageSize {
    /// About 512 px on the long side.
    #[serde(rename = "0.5K", alias = "512")]
    Half,
    /// About 1024 px.
    #[serde(rename = "1K")]
    OneK,
    /// About 2048 px.
    #[serde(rename = "2K")]
    TwoK,
    /// About 4096 px.
    #[serde(rename = "4K")]
    FourK,
}

impl ImageSize {
    /// Every size, smallest first.
    pub const ALL: [ImageSize; 4] = [
        ImageSize::Half,
        ImageSize::OneK,
        ImageSize::TwoK,
        ImageSize::FourK,
    ];

    /// The name used on the wire and in configuration (`0.5K`, `1K`, `2K`, `4K`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ImageSize::Half => "0.5K",
            ImageSize::OneK => "1K",
            ImageSize::TwoK => "2K",
            ImageSize::FourK => "4K",
        }
    }

    /// Pixels on the long side.
    pub const fn long_side(self) -> u32 {
        match self {
            ImageSize::Half => 512,
            ImageSize::OneK => 1024,
            ImageSize::TwoK => 2048,
            ImageSize::FourK => 4096,
        }
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImageSize {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "0.5K" | "512" | "HALF" => Ok(ImageSize::Half),
            "1K" | "1024" => Ok(ImageSize::OneK),
            "2K" | "2048" => Ok(ImageSize::TwoK),
            "4K" | "4096" => Ok(ImageSize::FourK),
            _ => Err(Error::config(format!(
                "unknown image size `{s}`: expected 0.5K, 1K, 2K or 4K"
            ))),
        }
    }
}

/// An aspect ratio `W:H` with both sides positive, kept as written (`16:9`, `1:1`, `21:9`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AspectRatio {
    width: u16,
    height: u16,
}

impl AspectRatio {
    /// `1:1`.
    pub const SQUARE: AspectRatio = AspectRatio {
        width: 1,
        height: 1,
    };

    /// A ratio; `None` when a side is zero.
    pub const fn new(width: u16, height: u16) -> Option<Self> {
        if width == 0 || height == 0 {
            None
        } else {
            Some(AspectRatio { width, height })
        }
    }

    /// The width term.
    pub const fn width(self) -> u16 {
        self.width
    }

    /// The height term.
    pub const fn height(self) -> u16 {
        self.height
    }

    /// Pixel dimensions for this ratio with `long_side` pixels on the longer side.
    pub fn dimensions(self, long_side: u32) -> (u32, u32) {
        let (w, h) = (u32::from(self.width), u32::from(self.height));
        if w >= h {
            (long_side, (long_side * h / w).max(1))
        } else {
            ((long_side * w / h).max(1), long_side)
        }
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.width, self.height)
    }
}

impl FromStr for AspectRatio {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::config(format!(
                "invalid aspect ratio `{s}`: expected WIDTH:HEIGHT such as 16:9"
            ))
        };
        let (w, h) = s.trim().split_once(':').ok_or_else(bad)?;
        let w = w.trim().parse().map_err(|_| bad())?;
        let h = h.trim().parse().map_err(|_| bad())?;
        AspectRatio::new(w, h).ok_or_else(bad)
    }
}

impl Serialize for AspectRatio {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AspectRatio {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aspect_ratios_parse_and_print() {
        let r: AspectRatio = "16:9".parse().unwrap();
        assert_eq!(r.to_string(), "16:9");
        assert_eq!(r.dimensions(1024), (1024, 576));
        assert_eq!(
            "9:16".parse::<AspectRatio>().unwrap().dimensions(1024),
            (576, 1024)
        );
        for bad in ["16x9", "0:1", "1:", "a:b", ""] {
            let err = bad.parse::<AspectRatio>().unwrap_err();
            assert!(err.to_string().contains("WIDTH:HEIGHT"), "{err}");
        }
    }

    #[test]
    fn sizes_use_gemini_names() {
        assert_eq!(serde_json::to_string(&ImageSize::Half).unwrap(), "\"0.5K\"");
        assert_eq!("4k".parse::<ImageSize>().unwrap(), ImageSize::FourK);
        assert_eq!("512".parse::<ImageSize>().unwrap(), ImageSize::Half);
        assert!("8K".parse::<ImageSize>().is_err());
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(GenerateRequest::new("a cat").validate().is_ok());
        let e = GenerateRequest::new("  ").validate().unwrap_err();
        assert!(e.message().contains("prompt"));
        let e = GenerateRequest::new("x")
            .with_count(0)
            .validate()
            .unwrap_err();
        assert!(e.message().contains("at least 1"));
    }
}

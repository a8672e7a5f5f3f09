//! Images: bytes, their MIME type and, when known, their pixel size.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// A generated image.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Image {
    /// The encoded image, exactly as the upstream sent it.
    #[serde(with = "base64_bytes")]
    pub bytes: Bytes,
    /// `image/png`, `image/jpeg`, `image/webp`, ...
    pub mime_type: String,
    /// Width in pixels, when the header could be read.
    pub width: Option<u32>,
    /// Height in pixels, when the header could be read.
    pub height: Option<u32>,
}

impl Image {
    /// An image whose format and size are read from its own header, not trusted from a label.
    ///
    /// `declared_mime` is what the upstream claimed; it is used only in the error message when
    /// the bytes are not an image at all.
    ///
    /// # Errors
    /// [`ErrorKind::InvalidResponse`] when the bytes are not a PNG, JPEG, WebP or GIF image.
    pub fn checked(bytes: impl Into<Bytes>, declared_mime: &str) -> Result<Self> {
        let bytes = bytes.into();
        let mime = sniff_mime(&bytes).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidResponse,
                format!(
                    "the upstream sent {} bytes labelled `{declared_mime}` that are not a PNG, JPEG, WebP or GIF image",
                    bytes.len()
                ),
            )
        })?;
        let (width, height) = match imagesize::blob_size(&bytes) {
            Ok(size) => (
                u32::try_from(size.width).ok(),
                u32::try_from(size.height).ok(),
            ),
            Err(_) => (None, None),
        };
        Ok(Image {
            bytes,
            mime_type: mime.to_owned(),
            width,
            height,
        })
    }

    /// The file extension for this image's type (`png`, `jpg`, `webp`, `gif`).
    pub fn extension(&self) -> &'static str {
        extension_for(&self.mime_type)
    }
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("mime_type", &self.mime_type)
            .field("bytes", &self.bytes.len())
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

/// The MIME type of an encoded image, read from its magic bytes.
pub fn sniff_mime(bytes: &[u8]) -> Option<&'static str> {
    match imagesize::image_type(bytes).ok()? {
        imagesize::ImageType::Png => Some("image/png"),
        imagesize::ImageType::Jpeg => Some("image/jpeg"),
        imagesize::ImageType::Webp => Some("image/webp"),
        imagesize::ImageType::Gif => Some("image/gif"),
        _ => None,
    }
}

/// The conventional file extension for an image MIME type (`bin` when unknown).
pub fn extension_for(mime: &str) -> &'static str {
    match mime {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/webp" => "webp",
        "image/gif" => "gif",
        _ => "bin",
    }
}

/// Serde adapter: bytes as standard base64 text.
pub(crate) mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text.as_bytes())
            .map(Bytes::from)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A 1x1 PNG.
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F,
        0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00,
        0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];

    #[test]
    fn checked_images_trust_the_bytes_not_the_label() {
        let image = Image::checked(PNG, "image/jpeg").unwrap();
        assert_eq!(image.mime_type, "image/png");
        assert_eq!((image.width, image.height), (Some(1), Some(1)));
        assert_eq!(image.extension(), "png");
        let err = Image::checked(&b"<html>nope</html>"[..], "image/png").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        assert!(err.message().contains("image/png"));
    }

    #[test]
    fn images_serialise_as_base64() {
        let image = Image::checked(PNG, "image/png").unwrap();
        let json = serde_json::to_value(&image).unwrap();
        assert!(json["bytes"].as_str().unwrap().starts_with("iVBORw0KGgo"));
        let back: Image = serde_json::from_value(json).unwrap();
        assert_eq!(back, image);
    }
}

//! The deterministic PNG renderer behind every mock image.
//!
//! A test that saves, caches, deduplicates or displays images needs real images: bytes a PNG
//! decoder accepts, dimensions that match the request, and pixels a person can tell apart when a
//! CLI run writes them to disk. So every image is a pattern (rings, stripes, a checkerboard or
//! waves in four colours, with a strip of fingerprint colours along the bottom) whose every choice
//! comes from a SHA-256 [`Fingerprint`] of what was asked. The same request gives the same bytes
//! on every run and machine; a different prompt, seed, size, model or image index gives a
//! different picture.
//!
//! Rendering is row by row straight into the encoder, so memory stays at one row however large
//! the image, and uses the encoder's fast compression: flat colour runs compress well anyway.

use std::f32::consts::TAU;
use std::fmt;
use std::io::Write as _;

use bytes::Bytes;
use imagegate_core::{AspectRatio, Error, ErrorKind, GenerateRequest, Image, ImageSize, Result};
use sha2::{Digest as _, Sha256};

/// Versions the hash input, so a deliberate change to the pattern's inputs changes every image
/// instead of silently keeping some.
const DOMAIN: &[u8] = b"imagegate-mock/render/v1";

/// The 32 bytes that decide every pixel of one image: SHA-256 of what was asked.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of image number `index` (from 0) of `request` served by `model`.
    ///
    /// It covers the model, the prompt, the seed, the *resolved* size and aspect ratio (so a
    /// request that leaves them unset draws the same image as one that names the defaults), the
    /// index, and every reference image's bytes and MIME type. Priority and deadline are left
    /// out: they change when an image is made, not what it shows.
    pub fn of(model: &str, request: &GenerateRequest, index: u32) -> Self {
        let (size, ratio) = resolve(request.size, request.aspect_ratio);
        let mut hash = Sha256::new();
        hash.update(DOMAIN);
        field(&mut hash, model.as_bytes());
        field(&mut hash, request.prompt.as_bytes());
        match request.seed {
            Some(seed) => {
                hash.update([1]);
                hash.update(seed.to_le_bytes());
            }
            None => hash.update([0]),
        }
        field(&mut hash, size.as_str().as_bytes());
        field(&mut hash, ratio.to_string().as_bytes());
        hash.update(index.to_le_bytes());
        hash.update((request.reference_images.len() as u64).to_le_bytes());
        for image in &request.reference_images {
            field(&mut hash, image.mime_type.as_bytes());
            field(&mut hash, &image.bytes);
        }
        Fingerprint(hash.finalize().into())
    }

    /// A fingerprint from raw bytes, for rendering a pattern without a request.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Fingerprint(bytes)
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first `len` bytes as lowercase hex (at most 64 characters), for ids and labels.
    pub fn hex(&self, len: usize) -> String {
        let mut out = String::with_capacity(len.min(32) * 2);
        for byte in self.0.iter().take(len) {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.hex(32))
    }
}

/// Hashes a length-prefixed field, so `("ab", "c")` and `("a", "bc")` differ.
fn field(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_le_bytes());
    hash.update(bytes);
}

/// The size and ratio a request gets: 1K and 1:1 unless it says otherwise, as Gemini does.
fn resolve(size: Option<ImageSize>, ratio: Option<AspectRatio>) -> (ImageSize, AspectRatio) {
    (
        size.unwrap_or(ImageSize::OneK),
        ratio.unwrap_or(AspectRatio::SQUARE),
    )
}

/// Pixel dimensions (width, height) for a size and aspect ratio: the size's long side on the
/// longer edge, defaulting to 1K and 1:1. `1K` square is 1024x1024; `1K` at 16:9 is 1024x576.
pub fn dimensions(size: Option<ImageSize>, ratio: Option<AspectRatio>) -> (u32, u32) {
    let (size, ratio) = resolve(size, ratio);
    ratio.dimensions(size.long_side())
}

/// Image number `index` (from 0) for `request` served by `model`: a PNG of the requested size
/// and aspect ratio whose pattern comes from [`Fingerprint::of`].
///
/// # Errors
/// [`ErrorKind::Unexpected`] if the PNG encoder fails (it does not for valid dimensions).
pub fn render_image(model: &str, request: &GenerateRequest, index: u32) -> Result<Image> {
    let (width, height) = dimensions(request.size, request.aspect_ratio);
    let bytes = render_png(&Fingerprint::of(model, request, index), width, height)?;
    Image::checked(bytes, "image/png")
}

/// Encodes the pattern for `fingerprint` as an 8-bit RGB PNG of `width` x `height` pixels.
///
/// The time is linear in the pixel count; very large dimensions take correspondingly long.
///
/// # Errors
/// [`ErrorKind::Unexpected`] when the encoder refuses (a zero dimension, for one).
pub fn render_png(fingerprint: &Fingerprint, width: u32, height: u32) -> Result<Bytes> {
    let pattern = Pattern::new(fingerprint, width, height);
    let row_len = usize::try_from(width)
        .ok()
        .and_then(|w| w.checked_mul(3))
        .ok_or_else(|| encode_error(format!("an image {width} pixels wide is too large")))?;
    let mut out = Vec::with_capacity(1024);
    {
        let mut encoder = png::Encoder::new(&mut out, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        // Vertical runs of one colour are the common case, so `Up` filters most rows to zeros.
        encoder.set_filter(png::Filter::Up);
        encoder
            .add_text_chunk("Software".to_owned(), "imagegate-mock".to_owned())
            .map_err(encoder_failed)?;
        encoder
            .add_text_chunk(
                "Comment".to_owned(),
                format!("fingerprint {}", fingerprint.hex(32)),
            )
            .map_err(encoder_failed)?;
        let mut writer = encoder.write_header().map_err(encoder_failed)?;
        let mut stream = writer.stream_writer().map_err(encoder_failed)?;
        let mut row = vec![0u8; row_len];
        for y in 0..height {
            pattern.fill_row(y, &mut row);
            stream
                .write_all(&row)
                .map_err(|e| encode_error("the PNG encoder refused a row").with_source(e))?;
        }
        stream.finish().map_err(encoder_failed)?;
        writer.finish().map_err(encoder_failed)?;
    }
    Ok(Bytes::from(out))
}

fn encode_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Unexpected, message).with_provider("mock")
}

fn encoder_failed(e: png::EncodingError) -> Error {
    encode_error(format!("the PNG encoder failed: {e}")).with_source(e)
}

/// An 8-bit RGB colour.
type Rgb = [u8; 3];

/// How the four palette colours are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// Concentric rings around a point.
    Rings { cx: i64, cy: i64 },
    /// Parallel stripes at a slope.
    Stripes { a: i64, b: i64 },
    /// A checkerboard of rectangular cells.
    Checker { cell_h: i64 },
    /// Horizontal bands bent by a sine wave.
    Waves,
}

/// Everything the renderer decided from a fingerprint, computed once per image.
#[derive(Debug)]
struct Pattern {
    shape: Shape,
    palette: [Rgb; 4],
    /// The width of one band, ring or cell in pixels (at least 1).
    cell: i64,
    /// Per-column vertical offsets for [`Shape::Waves`] (empty otherwise).
    wave: Vec<i64>,
    width: u32,
    /// Rows at and below this belong to the fingerprint strip.
    strip_from: u32,
    /// One colour per byte of the fingerprint, shown left to right in the strip.
    strip: [Rgb; 32],
}

impl Pattern {
    fn new(fingerprint: &Fingerprint, width: u32, height: u32) -> Self {
        let d = fingerprint.as_bytes();
        let (w, h) = (i64::from(width), i64::from(height));
        let long = w.max(h).max(1);
        let cell = (long / (6 + i64::from(d[11] % 14))).max(1);
        let shape = match d[0] % 4 {
            0 => Shape::Rings {
                cx: i64::from(d[12]) * w / 256,
                cy: i64::from(d[13]) * h / 256,
            },
            1 => {
                let a = 1 + i64::from(d[14] % 4);
                let b = 1 + i64::from(d[15] % 4);
                Shape::Stripes {
                    a,
                    b: if d[16] & 1 == 0 { b } else { -b },
                }
            }
            2 => Shape::Checker {
                cell_h: (cell * i64::from(2 + d[17] % 4) / 3).max(1),
            },
            _ => Shape::Waves,
        };
        let wave = if shape == Shape::Waves {
            let amplitude = (cell * i64::from(1 + d[18] % 3)) as f32;
            let period = (long / i64::from(1 + d[19] % 5)).max(1) as f32;
            let phase = f32::from(d[20]) / 256.0 * TAU;
            (0..w)
                .map(|x| (amplitude * (TAU * x as f32 / period + phase).sin()).round() as i64)
                .collect()
        } else {
            Vec::new()
        };
        // Four colours a quarter-turn-ish apart on the hue wheel, alternating light and dark, so
        // neighbouring bands always contrast.
        let base = f32::from(d[1]) / 256.0 * 360.0;
        let step = 60.0 + f32::from(d[2] % 60);
        let palette = [0u8, 1, 2, 3].map(|i| {
            let hue = base + step * f32::from(i);
            let saturation = 0.55 + f32::from(d[3 + usize::from(i)] % 40) / 100.0;
            let value = if i % 2 == 0 { 0.95 } else { 0.55 };
            hsv(hue, saturation, value)
        });
        let strip = d.map(|byte| hsv(f32::from(byte) / 256.0 * 360.0, 0.85, 0.9));
        let strip_rows = if height >= 16 { height / 16 } else { 0 };
        Pattern {
            shape,
            palette,
            cell,
            wave,
            width,
            strip_from: height - strip_rows,
            strip,
        }
    }

    /// Writes row `y` (3 bytes per pixel) into `row`.
    fn fill_row(&self, y: u32, row: &mut [u8]) {
        if y >= self.strip_from {
            let width = u64::from(self.width.max(1));
            for (x, pixel) in row.chunks_exact_mut(3).enumerate() {
                let slot = (x as u64 * 32 / width) as usize;
                pixel.copy_from_slice(&self.strip[slot.min(31)]);
            }
            return;
        }
        let y = i64::from(y);
        let cell = self.cell;
        let pixels = row.chunks_exact_mut(3);
        match self.shape {
            Shape::Rings { cx, cy } => {
                let dy2 = ((y - cy) * (y - cy)) as f32;
                for (x, pixel) in pixels.enumerate() {
                    let dx = x as i64 - cx;
                    let radius = ((dx * dx) as f32 + dy2).sqrt() as i64;
                    self.put(pixel, radius / cell);
                }
            }
            Shape::Stripes { a, b } => {
                // Dividing by the steeper term keeps stripes about a cell wide at any slope.
                let width = cell * a.max(b.abs());
                for (x, pixel) in pixels.enumerate() {
                    let t = a * x as i64 + b * y;
                    self.put(pixel, t.div_euclid(width));
                }
            }
            Shape::Checker { cell_h } => {
                let row_band = y / cell_h;
                for (x, pixel) in pixels.enumerate() {
                    let col = x as i64 / cell;
                    self.put(pixel, col + 2 * row_band + (col & row_band & 1));
                }
            }
            Shape::Waves => {
                for (pixel, offset) in pixels.zip(&self.wave) {
                    self.put(pixel, (y + offset).div_euclid(cell));
                }
            }
        }
    }

    fn put(&self, pixel: &mut [u8], band: i64) {
        pixel.copy_from_slice(&self.palette[band.rem_euclid(4) as usize]);
    }
}

/// HSV (hue in degrees, saturation and value in 0..=1) to 8-bit RGB.
fn hsv(hue: f32, saturation: f32, value: f32) -> Rgb {
    let hue = hue.rem_euclid(360.0) / 60.0;
    let chroma = value * saturation.clamp(0.0, 1.0);
    let x = chroma * (1.0 - (hue % 2.0 - 1.0).abs());
    let (r, g, b) = match hue as u32 {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    let m = value - chroma;
    let to_byte = |c: f32| ((c + m).clamp(0.0, 1.0) * 255.0).round() as u8;
    [to_byte(r), to_byte(g), to_byte(b)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn distinct_colours(pixels: &[u8]) -> usize {
        let mut colours: Vec<&[u8]> = pixels.chunks_exact(3).collect();
        colours.sort_unstable();
        colours.dedup();
        colours.len()
    }

    #[test]
    fn every_shape_decodes_with_the_right_size_and_a_visible_pattern() {
        // Byte 0 picks the shape; the other bytes vary so each shape gets its own parameters.
        for shape in 0u8..4 {
            let mut bytes = [0u8; 32];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(37).wrapping_add(shape * 11);
            }
            bytes[0] = shape;
            let png = render_png(&Fingerprint::from_bytes(bytes), 96, 64).unwrap();
            let (w, h, pixels) = decode(&png);
            assert_eq!((w, h), (96, 64));
            // Above the strip, the pattern uses at least three of its four colours.
            let body = &pixels[..96 * 3 * 60];
            assert!(distinct_colours(body) >= 3, "shape {shape}: too plain");
        }
    }

    #[test]
    fn degenerate_sizes_still_encode() {
        let fp = Fingerprint::from_bytes([7; 32]);
        for (w, h) in [(1, 1), (1, 300), (300, 1), (15, 15), (16, 16)] {
            let (dw, dh, _) = decode(&render_png(&fp, w, h).unwrap());
            assert_eq!((dw, dh), (w, h));
        }
        let err = render_png(&fp, 0, 10).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected);
    }

    #[test]
    fn the_strip_shows_the_fingerprint() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i * 8) as u8;
        }
        let fp = Fingerprint::from_bytes(bytes);
        let (_, _, pixels) = decode(&render_png(&fp, 64, 32).unwrap());
        // The last row: 32 slots of 2 pixels, each the colour of its byte.
        let last = &pixels[64 * 3 * 31..];
        for slot in 0..32 {
            let pixel = &last[slot * 6..slot * 6 + 3];
            assert_eq!(
                pixel,
                hsv(f32::from(bytes[slot]) / 256.0 * 360.0, 0.85, 0.9)
            );
        }
    }

    #[test]
    fn hsv_hits_the_primaries() {
        assert_eq!(hsv(0.0, 1.0, 1.0), [255, 0, 0]);
        assert_eq!(hsv(120.0, 1.0, 1.0), [0, 255, 0]);
        assert_eq!(hsv(240.0, 1.0, 1.0), [0, 0, 255]);
        assert_eq!(hsv(360.0 + 60.0, 1.0, 1.0), [255, 255, 0]);
        assert_eq!(hsv(33.0, 0.0, 0.5), [128, 128, 128]);
    }

    #[test]
    fn fingerprints_separate_fields() {
        let a = GenerateRequest::new("ab");
        let b = GenerateRequest::new("a");
        assert_ne!(Fingerprint::of("m", &a, 0), Fingerprint::of("m", &b, 0));
        assert_ne!(Fingerprint::of("mb", &b, 0), Fingerprint::of("m", &a, 0));
        // Unset size and ratio mean 1K and 1:1.
        let explicit = GenerateRequest::new("ab")
            .with_size(ImageSize::OneK)
            .with_aspect_ratio(AspectRatio::SQUARE);
        assert_eq!(
            Fingerprint::of("m", &a, 0),
            Fingerprint::of("m", &explicit, 0)
        );
        assert_eq!(Fingerprint::of("m", &a, 0).hex(4).len(), 8);
    }
}

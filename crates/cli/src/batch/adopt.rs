//! Whether a file found under an image's stable name may be adopted as that image.
//!
//! Adoption exists for one crash: between the rename that put our image in place and the
//! `written` record that says so. So a file is adopted only when the journal shows the call
//! was `started` with no outcome after it, and only when the file is a complete image (its
//! format's magic bytes at the start and its end marker at the end: our writes are atomic, so
//! our image is never partial). Anything else under that name is someone else's file: it is
//! left alone and the image is written beside it.

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

/// True when `path` holds a complete PNG, JPEG, GIF or WebP image.
pub(crate) fn is_complete_image(path: &Path) -> bool {
    check(path).unwrap_or(false)
}

fn check(path: &Path) -> std::io::Result<bool> {
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.len() < 16 {
        return Ok(false);
    }
    let len = meta.len();
    let mut head = [0u8; 16];
    file.read_exact(&mut head)?;
    let mut tail = [0u8; 12];
    file.seek(SeekFrom::End(-12))?;
    file.read_exact(&mut tail)?;
    Ok(match imagegate_core::sniff_mime(&head) {
        Some("image/png") => tail == *b"\0\0\0\0IEND\xAE\x42\x60\x82",
        Some("image/jpeg") => tail[10..] == [0xFF, 0xD9],
        Some("image/gif") => tail[11] == 0x3B,
        Some("image/webp") => {
            let declared = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            u64::from(declared) + 8 == len
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_complete_images_count() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, bytes: &[u8]| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            path
        };
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
        png.extend_from_slice(&[0; 20]);
        png.extend_from_slice(b"\0\0\0\0IEND\xAE\x42\x60\x82");
        assert!(is_complete_image(&file("a.png", &png)));
        assert!(!is_complete_image(&file("torn.png", &png[..png.len() - 3])));
        assert!(!is_complete_image(&file("empty.png", b"")));
        assert!(!is_complete_image(&file(
            "gif.png",
            b"GIF89a? not really a gif"
        )));
        assert!(!is_complete_image(&file(
            "text.png",
            b"hello, this is not an image"
        )));
        assert!(!is_complete_image(&dir.path().join("missing.png")));
    }
}

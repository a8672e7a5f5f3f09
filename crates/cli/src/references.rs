//! Reading reference images safely: a FIFO, a device or a huge file given as a reference must
//! neither hang the process nor be read whole.
//!
//! The checks come in the cheap order: what the path is (a regular file, else refused without
//! opening it, since opening a FIFO blocks), its size (over [`MAX_BYTES`] refused without
//! reading), its first bytes (not a PNG, JPEG, WebP or GIF: refused after 16 bytes), and only
//! then the rest, bounded. The blocking I/O runs on tokio's blocking pool, so Ctrl-C and other
//! jobs go on while a slow disk answers.

use std::io::Read as _;
use std::path::{Component, Path};

use imagegate_core::ReferenceImage;

/// The largest reference image read: Gemini takes at most 20 MB of inline data per request,
/// so a larger file could only be refused upstream after paying for the upload.
pub(crate) const MAX_BYTES: u64 = 20 * 1024 * 1024;

/// Reads and checks one reference image.
///
/// # Errors
/// A message naming the path and what is wrong with it.
pub(crate) async fn read(path: &Path) -> Result<ReferenceImage, String> {
    let owned = path.to_path_buf();
    let read = tokio::task::spawn_blocking(move || read_blocking(&owned)).await;
    let bytes = match read {
        Ok(result) => result?,
        Err(e) => return Err(format!("reference image {}: {e}", path.display())),
    };
    ReferenceImage::sniffed(bytes)
        .map_err(|e| format!("reference image {}: {}", path.display(), e.message()))
}

fn read_blocking(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read reference image {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!(
            "reference image {shown} is not a regular file (a FIFO, device or directory is \
             never read)"
        ));
    }
    too_large(path, meta.len())?;
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read reference image {shown}: {e}"))?;
    // Checked again on the open file: the path may have been swapped since.
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot read reference image {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("reference image {shown} is not a regular file"));
    }
    too_large(path, meta.len())?;
    let mut reader = file.take(MAX_BYTES + 1);
    let mut head = [0u8; 16];
    let mut got = 0;
    while got < head.len() {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("cannot read reference image {shown}: {e}")),
        }
    }
    if imagegate_core::sniff_mime(&head[..got]).is_none() {
        return Err(format!(
            "reference image {shown} is not a PNG, JPEG, WebP or GIF image (by its first bytes)"
        ));
    }
    let mut bytes = head[..got].to_vec();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read reference image {shown}: {e}"))?;
    too_large(path, u64::try_from(bytes.len()).unwrap_or(u64::MAX))?;
    Ok(bytes)
}

fn too_large(path: &Path, len: u64) -> Result<(), String> {
    if len > MAX_BYTES {
        Err(format!(
            "reference image {} is too large ({} MB; the limit is {} MB, what the upstream \
             accepts inline)",
            path.display(),
            len.div_ceil(1024 * 1024),
            MAX_BYTES / (1024 * 1024)
        ))
    } else {
        Ok(())
    }
}

/// Whether `reference`, as written in a batch input, stays inside the input's directory:
/// relative, and with no `..` step. Symlinks are the person's own doing and are followed.
pub(crate) fn stays_inside(reference: &Path) -> bool {
    reference.is_relative()
        && reference
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_stay_inside() {
        assert!(stays_inside(Path::new("refs/a.png")));
        assert!(stays_inside(Path::new("./a.png")));
        assert!(!stays_inside(Path::new("../a.png")));
        assert!(!stays_inside(Path::new("refs/../../a.png")));
        assert!(!stays_inside(Path::new("/etc/passwd")));
    }
}

//! Writing images to disk: atomically, never clobbering a file we were not told to write.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use imagegate_core::Image;

use crate::failure::Failure;

/// Where `-o` asked the images to go.
#[derive(Debug, Clone)]
pub(crate) enum Destination {
    /// `-o name.png`: exactly this file (with `-n 3`: `name-1.png`, `name-2.png`, ...).
    File(PathBuf),
    /// `-o dir/` or an existing directory: names made from the prompt.
    Dir(PathBuf),
}

impl Destination {
    /// `-o` as given; without it, the current directory.
    pub(crate) fn from_arg(arg: Option<&Path>) -> Self {
        match arg {
            None => Destination::Dir(PathBuf::from(".")),
            Some(path) => {
                let text = path.to_string_lossy();
                if path.is_dir() || text.ends_with('/') || text.ends_with(std::path::MAIN_SEPARATOR)
                {
                    Destination::Dir(path.to_path_buf())
                } else {
                    Destination::File(path.to_path_buf())
                }
            }
        }
    }

    /// The path for image `index` of `total`, named after `stem` in a directory.
    pub(crate) fn path_for(
        &self,
        stem: &str,
        index: usize,
        total: usize,
        image: &Image,
    ) -> PathBuf {
        match self {
            Destination::File(path) if total == 1 => path.clone(),
            Destination::File(path) => {
                let file_stem = path
                    .file_stem()
                    .map_or_else(|| "image".to_owned(), |s| s.to_string_lossy().into_owned());
                let extension = path.extension().map_or_else(
                    || image.extension().to_owned(),
                    |e| e.to_string_lossy().into_owned(),
                );
                path.with_file_name(format!("{file_stem}-{}.{extension}", index + 1))
            }
            Destination::Dir(dir) => {
                let mut candidate = dir.join(format!("{stem}-{}.{}", index + 1, image.extension()));
                let mut n = 2;
                while candidate.exists() {
                    candidate = dir.join(format!("{stem}-{}-{n}.{}", index + 1, image.extension()));
                    n += 1;
                }
                candidate
            }
        }
    }
}

/// A file-name stem from a prompt: lowercase words joined by `-`, at most 40 characters.
pub(crate) fn slug(prompt: &str) -> String {
    let mut slug = String::new();
    for word in prompt
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if slug.len() + word.len() + 1 > 40 {
            break;
        }
        if !slug.is_empty() {
            slug.push('-');
        }
        slug.extend(word.chars().flat_map(char::to_lowercase));
    }
    if slug.is_empty() {
        "image".to_owned()
    } else {
        slug
    }
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, renamed into
/// place, so a reader (or a crash) never sees half an image.
///
/// # Errors
/// [`Failure::Io`] naming the path.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::io(format!("cannot create directory {}: {e}", dir.display())))?;
    let mut temp = tempfile::NamedTempFile::new_in(&dir)
        .map_err(|e| Failure::io(format!("cannot write in {}: {e}", dir.display())))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| Failure::io(format!("cannot write {}: {e}", path.display())))?;
    temp.persist(path)
        .map_err(|e| Failure::io(format!("cannot write {}: {}", path.display(), e.error)))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn slugs_are_short_lowercase_and_never_empty() {
        assert_eq!(slug("A lighthouse at dusk!"), "a-lighthouse-at-dusk");
        assert_eq!(slug("???"), "image");
        assert!(slug(&"word ".repeat(50)).len() <= 40);
    }
}

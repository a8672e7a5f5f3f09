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
                dir.join(format!("{stem}-{}.{}", index + 1, image.extension()))
            }
        }
    }

    /// Writes image `index` of `total`: exactly the `-o` file, or in a directory under the
    /// first free name (`stem-1.png`, then `stem-1-2.png`, ...), taken exclusively so parallel
    /// runs with the same prompt never overwrite each other. Returns where it went.
    ///
    /// # Errors
    /// [`WriteError`] naming the path.
    pub(crate) fn write(
        &self,
        stem: &str,
        index: usize,
        total: usize,
        image: &Image,
    ) -> Result<PathBuf, WriteError> {
        let path = self.path_for(stem, index, total, image);
        match self {
            Destination::File(_) => write_replacing(&path, &image.bytes).map(|()| path),
            Destination::Dir(dir) => {
                let ext = image.extension();
                let n = index + 1;
                let others = (2u32..).map(|k| dir.join(format!("{stem}-{n}-{k}.{ext}")));
                write_new(std::iter::once(path).chain(others), &image.bytes)
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

/// Why an image could not be written: the path tried and the I/O error, whose kind tells a
/// full disk (`StorageFull`, `QuotaExceeded`, `ReadOnlyFilesystem`) from a single bad name.
#[derive(Debug)]
pub(crate) struct WriteError {
    pub path: PathBuf,
    pub error: std::io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot write {}: {}", self.path.display(), self.error)
    }
}

impl From<WriteError> for Failure {
    fn from(e: WriteError) -> Self {
        Failure::io(e.to_string())
    }
}

/// The directory a file at `path` goes in (`.` for a bare name).
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The bytes in a synced temporary file in `dir`, ready to be given its name. Created with
/// mode 0666 so the umask decides, as for any file a program writes (0644 under umask 022).
fn staged(dir: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile, WriteError> {
    let fail = |error| WriteError {
        path: dir.to_path_buf(),
        error,
    };
    // `create_dir_all` reports a file in the way as "already exists", which would read as a
    // name clash: say what it is.
    if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            "it is not a directory",
        )));
    }
    std::fs::create_dir_all(dir).map_err(fail)?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".imagegate-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir).map_err(fail)?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(fail)?;
    Ok(temp)
}

/// Writes `bytes` under the first of `candidates` that does not exist yet, atomically (a
/// temporary file in the same directory, given its name only when complete) and exclusively:
/// the name is taken with a link that fails if the name exists, so a file that appeared after
/// the name was chosen (another process, another job) is never replaced. Returns the path.
///
/// # Errors
/// [`WriteError`] naming the path, when the directory cannot take the file or every
/// candidate is taken.
pub(crate) fn write_new(
    candidates: impl IntoIterator<Item = PathBuf>,
    bytes: &[u8],
) -> Result<PathBuf, WriteError> {
    let mut candidates = candidates.into_iter().take(10_000).peekable();
    let Some(first) = candidates.peek().cloned() else {
        return Err(WriteError {
            path: PathBuf::from("."),
            error: std::io::Error::other("no file name to write to"),
        });
    };
    let dir = parent_of(&first);
    let mut temp = staged(&dir, bytes)?;
    let mut last = first;
    for candidate in candidates {
        match temp.persist_noclobber(&candidate) {
            Ok(_) => return Ok(candidate),
            Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                temp = e.file;
                last = candidate;
            }
            Err(e) => {
                return Err(WriteError {
                    path: candidate,
                    error: e.error,
                });
            }
        }
    }
    Err(WriteError {
        path: last,
        error: std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "every name for this image is taken",
        ),
    })
}

/// `path` itself, then `stem~2.ext`, `stem~3.ext`, ...: `~` appears in no name batch or
/// `generate` makes, so a fallback never takes another image's name.
pub(crate) fn with_fallbacks(path: PathBuf) -> impl Iterator<Item = PathBuf> {
    let stem = path
        .file_stem()
        .map_or_else(|| "image".to_owned(), |s| s.to_string_lossy().into_owned());
    let extension = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let first = path.clone();
    std::iter::once(first)
        .chain((2u32..).map(move |n| path.with_file_name(format!("{stem}~{n}{extension}"))))
}

/// Writes `bytes` to exactly `path` (the file `-o` names), atomically, replacing a regular
/// file there but nothing else: a device, a FIFO or a directory at `path` is refused.
///
/// # Errors
/// [`WriteError`] naming the path.
pub(crate) fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    refuse_non_regular(path).map_err(|error| WriteError {
        path: path.to_path_buf(),
        error,
    })?;
    let temp = staged(&parent_of(path), bytes)?;
    temp.persist(path).map_err(|e| WriteError {
        path: path.to_path_buf(),
        error: e.error,
    })?;
    Ok(())
}

/// Fine when nothing is at `path` or a regular file is (through a symlink too).
fn refuse_non_regular(path: &Path) -> std::io::Result<()> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(()),
        Ok(_) => Err(std::io::Error::other(
            "it exists and is not a regular file (a directory, device or FIFO is never replaced)",
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Checks, before anything is paid for, that `destination` can take the images: the
/// directory exists or can be created and a file can be created in it, and `-o FILE` is not
/// something other than a regular file.
///
/// # Errors
/// [`Failure::Usage`] naming the path and why.
pub(crate) fn check_destination(destination: &Destination) -> Result<(), Failure> {
    let dir = match destination {
        Destination::Dir(dir) => dir.clone(),
        Destination::File(path) => {
            refuse_non_regular(path).map_err(|e| {
                Failure::usage(format!("cannot write to -o {}: {e}", path.display()))
            })?;
            parent_of(path)
        }
    };
    std::fs::create_dir_all(&dir)
        .and_then(|()| tempfile::NamedTempFile::new_in(&dir).map(drop))
        .map_err(|e| {
            Failure::usage(format!(
                "cannot write images in {}: {e} (nothing was sent; pick a writable -o)",
                dir.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_name_taken_after_it_was_chosen_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let taken = dir.path().join("a.png");
        std::fs::write(&taken, b"someone else's").unwrap();
        let written = write_new(with_fallbacks(taken.clone()), b"ours").unwrap();
        assert_eq!(written, dir.path().join("a~2.png"));
        assert_eq!(std::fs::read(&taken).unwrap(), b"someone else's");
        assert_eq!(std::fs::read(&written).unwrap(), b"ours");
    }

    #[test]
    fn slugs_are_short_lowercase_and_never_empty() {
        assert_eq!(slug("A lighthouse at dusk!"), "a-lighthouse-at-dusk");
        assert_eq!(slug("???"), "image");
        assert!(slug(&"word ".repeat(50)).len() <= 40);
    }
}

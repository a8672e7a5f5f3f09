//! The recovery place: where a paid image goes when its destination cannot take it.
//!
//! An image the upstream has been paid for is never dropped because the output directory is
//! gone, full or read-only. It is written under `<state dir>/recovered/` (else the system's
//! temporary directory), and the error names the file, so the person (or the next batch run)
//! can move it into place instead of paying for it again.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::output::{WriteError, with_fallbacks, write_new};

/// The directory recovered images go in, for this configuration.
pub(crate) fn dir(config: &Config) -> PathBuf {
    crate::state::state_dir(config).map_or_else(
        || std::env::temp_dir().join("imagegate-recovered"),
        |state| state.join("recovered"),
    )
}

/// Saves `bytes` in `dir` under `<unix ms>-<name>`, never replacing anything there.
///
/// # Errors
/// [`WriteError`] when the recovery place cannot take it either (then nothing is left to do
/// but say so).
pub(crate) fn save(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, WriteError> {
    let millis = jiff::Timestamp::now().as_millisecond();
    write_new(with_fallbacks(dir.join(format!("{millis}-{name}"))), bytes)
}

/// Is this write error the kind that will hit every later write too (the disk or the
/// directory, not one name)? Then a batch stops starting paid calls.
pub(crate) fn affects_every_write(error: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    // Any failure to write into the output is treated as one that will repeat, except a
    // name clash (handled by choosing another name): paying for more images that cannot be
    // written is the one outcome never worth the risk.
    !matches!(error.kind(), K::AlreadyExists)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_full_disk_stops_everything_a_name_clash_does_not() {
        use std::io::{Error, ErrorKind};
        for kind in [
            ErrorKind::StorageFull,
            ErrorKind::QuotaExceeded,
            ErrorKind::ReadOnlyFilesystem,
            ErrorKind::NotADirectory,
            ErrorKind::PermissionDenied,
        ] {
            assert!(affects_every_write(&Error::from(kind)), "{kind:?}");
        }
        assert!(affects_every_write(&Error::from_raw_os_error(5)), "EIO");
        assert!(!affects_every_write(&Error::from(ErrorKind::AlreadyExists)));
    }

    #[test]
    fn saved_files_never_replace_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let a = save(dir.path(), "x.png", b"a").unwrap();
        let b = save(dir.path(), "x.png", b"b").unwrap();
        assert_ne!(a, b);
        assert_eq!(std::fs::read(a).unwrap(), b"a");
        assert_eq!(std::fs::read(b).unwrap(), b"b");
    }
}

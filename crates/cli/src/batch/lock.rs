//! One batch run per output directory: two runs on one `--out` would each send every pending
//! call and pay for every image twice.
//!
//! The run holds an exclusive advisory lock (`File::try_lock`: `flock` on Unix) on
//! `DIR/.imagegate-batch.lock` for as long as it runs, with its pid written inside so a second
//! run can say who holds it. The OS drops the lock when the process ends however it ends
//! (kill -9 included), so a stale lock file never blocks anyone; the file itself is left in
//! place, since deleting a lock file lets two processes lock two different files.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::Path;

use crate::failure::Failure;

/// The lock file's name in the output directory.
pub(crate) const FILE_NAME: &str = ".imagegate-batch.lock";

/// The held lock; dropping it (or exiting) releases it.
#[derive(Debug)]
pub(crate) struct OutputLock {
    _file: File,
}

impl OutputLock {
    /// Takes the lock on `dir` or says who has it.
    ///
    /// # Errors
    /// [`Failure::Usage`] (exit 2) naming the holder's pid when another run holds it, or the
    /// I/O error when the lock file cannot be opened.
    pub(crate) fn acquire(dir: &Path) -> Result<Self, Failure> {
        let path = dir.join(FILE_NAME);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| {
                Failure::usage(format!("cannot open the lock file {}: {e}", path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if !holder.is_empty() && holder.chars().all(|c| c.is_ascii_digit()) {
                    format!("another imagegate batch (pid {holder})")
                } else {
                    "another imagegate batch".to_owned()
                };
                return Err(Failure::usage(format!(
                    "{who} is running with --out {}; two runs on one directory would pay for \
                     every image twice. Wait for it to finish (or stop it), then run again",
                    dir.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Failure::usage(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )));
            }
        }
        // Ours now: say who holds it. A failure here only makes the other run's message vaguer.
        let _ = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_data());
        Ok(OutputLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let held = OutputLock::acquire(dir.path()).unwrap();
        let Err(Failure::Usage(message)) = OutputLock::acquire(dir.path()) else {
            unreachable!("the second lock must be refused")
        };
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(held);
        assert!(OutputLock::acquire(dir.path()).is_ok(), "released on drop");
    }
}

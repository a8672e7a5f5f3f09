//! The batch journal: `DIR/.imagegate-batch.jsonl`, append-only, one JSON line per event,
//! each line written and fsynced before the program goes on.
//!
//! Order of events for one image: `started` is durable BEFORE the upstream call; the image is
//! written atomically (temporary file, then rename); `written` is durable AFTER the rename. So
//! after any crash (kill -9 included) the last record of an image says what can have happened:
//!
//! - `written`: the image is on disk; it is never generated again.
//! - `started` with nothing after it: the process died before or during the call, or between
//!   the rename and the `written` record. The image was never written by us unless a file with
//!   its stable name is on disk, which the runner checks and adopts. Otherwise the earlier
//!   attempt cannot have produced an image we have, so it is sent again (and counted as a
//!   resend in the summary). A provider may have billed a call that was in flight at the
//!   crash: that is the only call a crash can cost twice, at most one per job in flight.
//! - `failed`: the upstream refused (or the job could not run); the job is tried again on the
//!   next run, since a refusal produced no image.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The journal's file name in the output directory.
pub(crate) const FILE_NAME: &str = ".imagegate-batch.jsonl";

/// One event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(crate) enum Record {
    /// A job seen for the first time (its prompt, to notice an edited input).
    Planned {
        job: String,
        prompt: String,
        images: u32,
    },
    /// The call for image `image` of `job` is about to be sent.
    Started { job: String, image: u32 },
    /// Image `image` of `job` is on disk at `path` (after the rename), a file name in the
    /// journal's directory, so the directory can be moved or reached by another path.
    /// `recovered` when the file was found on disk after a crash rather than written by
    /// this run.
    Written {
        job: String,
        image: u32,
        path: String,
        #[serde(default)]
        recovered: bool,
    },
    /// Every image of `job` is on disk.
    Done { job: String },
    /// The job stopped without all its images: the error's kind and advice.
    Failed {
        job: String,
        kind: String,
        message: String,
        advice: String,
    },
}

/// One line of the file: when, and what.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    at: Timestamp,
    #[serde(flatten)]
    record: Record,
}

/// The last known state of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ImageState {
    /// A call was started and nothing after it was recorded: in flight at a crash.
    Interrupted,
    /// On disk at this path.
    Written(PathBuf),
}

/// What an earlier run left, per job.
#[derive(Debug, Default, Clone)]
pub(crate) struct JobHistory {
    pub prompt: Option<String>,
    pub images: BTreeMap<u32, ImageState>,
    pub done: bool,
    pub last_failure: Option<String>,
}

/// The journal read back.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub jobs: BTreeMap<String, JobHistory>,
    /// Lines that did not parse (a line torn by a crash mid-write is the only expected one).
    pub unreadable_lines: usize,
}

impl Replay {
    /// Reads `path`; a missing file is an empty history.
    ///
    /// # Errors
    /// The I/O error's text when the file exists but cannot be read.
    pub(crate) fn read(path: &Path) -> Result<Self, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("cannot read the journal {}: {e}", path.display())),
        };
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let mut replay = Self::default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<Line>(line) {
                Ok(line) => replay.apply(dir, line.record),
                Err(_) => replay.unreadable_lines += 1,
            }
        }
        Ok(replay)
    }

    fn apply(&mut self, dir: &Path, record: Record) {
        match record {
            Record::Planned { job, prompt, .. } => {
                self.jobs.entry(job).or_default().prompt = Some(prompt);
            }
            Record::Started { job, image } => {
                let history = self.jobs.entry(job).or_default();
                // A written image stays written: a later start for it cannot undo the file.
                if !matches!(history.images.get(&image), Some(ImageState::Written(_))) {
                    history.images.insert(image, ImageState::Interrupted);
                }
            }
            Record::Written {
                job, image, path, ..
            } => {
                let history = self.jobs.entry(job).or_default();
                history
                    .images
                    .insert(image, ImageState::Written(dir.join(path)));
            }
            Record::Done { job } => {
                let history = self.jobs.entry(job).or_default();
                history.done = true;
                history.last_failure = None;
            }
            Record::Failed { job, message, .. } => {
                let history = self.jobs.entry(job).or_default();
                history.done = false;
                history.last_failure = Some(message);
                // A failure is an outcome: the started call did not produce an image.
                history
                    .images
                    .retain(|_, state| matches!(state, ImageState::Written(_)));
            }
        }
    }
}

/// The open journal, shared by every task of a run.
#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens (creating) the journal in `dir` for appending.
    ///
    /// # Errors
    /// The I/O error's text, naming the file.
    pub(crate) fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("cannot open the journal {}: {e}", path.display()))?;
        Ok(Journal {
            path,
            file: Mutex::new(file),
        })
    }

    /// The file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and makes it durable (write + fsync) before returning. One `write`
    /// per line, so a crash tears at most the last line, which [`Replay::read`] skips.
    ///
    /// # Errors
    /// The I/O error's text: the caller must not go on as if the event were recorded.
    pub(crate) fn append(&self, record: Record) -> Result<(), String> {
        let line = Line {
            at: Timestamp::now(),
            record,
        };
        let mut text = serde_json::to_string(&line)
            .map_err(|e| format!("cannot encode a journal record: {e}"))?;
        text.push('\n');
        let file = self
            .file
            .lock()
            .map_err(|_| "the journal lock is poisoned".to_owned())?;
        (&*file)
            .write_all(text.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| format!("cannot write the journal {}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn replay(records: Vec<Record>, torn: &str) -> Replay {
        let dir = tempfile::tempdir().unwrap();
        let journal = Journal::open(dir.path()).unwrap();
        for record in records {
            journal.append(record).unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(journal.path())
            .unwrap()
            .write_all(torn.as_bytes())
            .unwrap();
        let replay = Replay::read(journal.path()).unwrap();
        for history in replay.jobs.values() {
            for state in history.images.values() {
                if let ImageState::Written(path) = state {
                    assert_eq!(
                        path.parent(),
                        Some(dir.path()),
                        "resolved in the journal's dir"
                    );
                }
            }
        }
        replay
    }

    #[test]
    fn replay_tells_written_from_interrupted_and_skips_a_torn_line() {
        let job = |s: &str| s.to_owned();
        let replay = replay(
            vec![
                Record::Started {
                    job: job("1"),
                    image: 0,
                },
                Record::Written {
                    job: job("1"),
                    image: 0,
                    path: "1-a.png".into(),
                    recovered: false,
                },
                Record::Done { job: job("1") },
                Record::Started {
                    job: job("2"),
                    image: 0,
                },
                Record::Started {
                    job: job("3"),
                    image: 0,
                },
                Record::Failed {
                    job: job("3"),
                    kind: "rate_limited".into(),
                    message: "slow down".into(),
                    advice: "wait".into(),
                },
            ],
            "{\"at\":\"2026-",
        );
        assert_eq!(replay.unreadable_lines, 1);
        assert!(replay.jobs["1"].done);
        assert!(matches!(
            replay.jobs["1"].images[&0],
            ImageState::Written(_)
        ));
        assert_eq!(replay.jobs["2"].images[&0], ImageState::Interrupted);
        assert!(!replay.jobs["2"].done);
        assert!(replay.jobs["3"].images.is_empty());
        assert_eq!(replay.jobs["3"].last_failure.as_deref(), Some("slow down"));
    }
}

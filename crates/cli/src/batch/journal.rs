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
//! - `rescued`: the image was paid for but the output directory could not take it (a full
//!   disk); it waits in the recovery place at `path`, and the next run moves it into place
//!   instead of paying for it again.
//!
//! Batch API jobs (`super::remote`) add three records: `batch_planned` (the job's unique display
//! name and its images, durable BEFORE the create call, which is not idempotent),
//! `batch_created` (the server's name) and `batch_ended` (written only after every result of
//! the job was written or failed). A planned job with no `batch_ended` is live: the next run
//! re-attaches to it by name, or finds it by listing and matching the display name, and sends
//! its images again only when the server never made it or it failed or expired; their
//! `written` records keep finished images from being sent again.
//!
//! The file is read as bytes, line by line: a line that is not UTF-8 or not a record is
//! skipped and reported by number. A damaged last line is what a crash mid-write leaves
//! ("torn at the end"); a damaged line before it is not (the file was edited or the disk
//! corrupted it), and the report says so rather than blaming a crash.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// The journal's file name in the output directory.
pub(crate) const FILE_NAME: &str = ".imagegate-batch.jsonl";

/// One image of one job, as a Batch API job's record lists it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ImageKey {
    pub job: String,
    pub image: u32,
}

impl ImageKey {
    /// The request's `metadata.key` in the batch job: `JOB#IMAGE` (`#` appears in no job key).
    pub(crate) fn wire(&self) -> String {
        format!("{}#{}", self.job, self.image)
    }

    /// The key back from a result's `metadata.key`, or `None` when it is not one of ours.
    pub(crate) fn from_wire(key: &str) -> Option<Self> {
        let (job, image) = key.rsplit_once('#')?;
        Some(ImageKey {
            job: job.to_owned(),
            image: image.parse().ok()?,
        })
    }
}

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
    /// Image `image` of `job` was paid for but could not be written to the output; it is
    /// kept at `path` (absolute, in the recovery place) until a run moves it into place.
    Rescued {
        job: String,
        image: u32,
        path: String,
    },
    /// The job stopped without all its images: the error's kind and advice.
    Failed {
        job: String,
        kind: String,
        message: String,
        advice: String,
    },
    /// A Batch API job is about to be created: its display name (unique, our idempotency
    /// key, since creating is not idempotent), the provider and model, and the images it
    /// asks for. Durable BEFORE the create call, so a run killed during the call finds the
    /// job again by listing the provider's batch jobs and matching the display name.
    BatchPlanned {
        batch: String,
        provider: String,
        model: String,
        images: Vec<ImageKey>,
    },
    /// The server created the job `batch` and named it `name` (`batches/...`).
    BatchCreated { batch: String, name: String },
    /// The job `batch` is over: `state` (`succeeded`, `failed`, `cancelled`, `expired`, or
    /// `not_created` when the create was refused or the job cannot be found). Its results were
    /// all written or failed before this record; its images without a `written` record are
    /// free to be sent again.
    BatchEnded { batch: String, state: String },
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
    /// Paid for and kept in the recovery place at this path, not yet in the output.
    Rescued(PathBuf),
}

/// What an earlier run left, per job.
#[derive(Debug, Default, Clone)]
pub(crate) struct JobHistory {
    pub prompt: Option<String>,
    pub images: BTreeMap<u32, ImageState>,
    pub done: bool,
    pub last_failure: Option<String>,
}

/// What an earlier run left of one Batch API job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BatchHistory {
    /// The display name (the journal's key for the job).
    pub batch: String,
    pub provider: String,
    pub model: String,
    pub images: Vec<ImageKey>,
    /// The server's name, once the create answered.
    pub name: Option<String>,
    /// How it ended, once it did; `None` is a job to re-attach to.
    pub ended: Option<String>,
}

/// The journal read back.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    pub jobs: BTreeMap<String, JobHistory>,
    /// Batch API jobs, in the order they were planned.
    pub batches: Vec<BatchHistory>,
    /// Lines before the last that could not be read (1-based): not what a crash leaves.
    pub damaged_lines: Vec<usize>,
    /// The last line could not be read: a write cut short by a crash or a kill.
    pub torn_last_line: Option<usize>,
}

impl Replay {
    /// Reads `path`; a missing file is an empty history.
    ///
    /// # Errors
    /// The I/O error's text when the file exists but cannot be read.
    pub(crate) fn read(path: &Path) -> Result<Self, String> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(format!("cannot read the journal {}: {e}", path.display())),
        };
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        let mut replay = Self::default();
        let lines: Vec<(usize, &[u8])> = bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .map(|(i, line)| (i + 1, line))
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .collect();
        let last = lines.last().map(|(number, _)| *number);
        for (number, line) in lines {
            match serde_json::from_slice::<Line>(line) {
                Ok(line) => replay.apply(dir, line.record),
                Err(_) if Some(number) == last => replay.torn_last_line = Some(number),
                Err(_) => replay.damaged_lines.push(number),
            }
        }
        Ok(replay)
    }

    /// What a person should know about lines that were skipped, one note each.
    pub(crate) fn notes(&self, path: &Path) -> Vec<String> {
        let mut notes = Vec::new();
        if !self.damaged_lines.is_empty() {
            let numbers: Vec<String> = self
                .damaged_lines
                .iter()
                .take(20)
                .map(ToString::to_string)
                .collect();
            let more = self.damaged_lines.len().saturating_sub(20);
            notes.push(format!(
                "note: the journal {} is damaged in the middle: line {}{} could not be read \
                 and {} skipped (a crash only ever tears the last line: the file was edited \
                 or the disk damaged it). Images those lines recorded are found again on disk \
                 only if their calls were started; check the output",
                path.display(),
                numbers.join(", line "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                },
                if self.damaged_lines.len() == 1 {
                    "is"
                } else {
                    "are"
                },
            ));
        }
        if let Some(line) = self.torn_last_line {
            notes.push(format!(
                "note: the journal {} is torn at the end (line {line}, a write cut short by a \
                 crash or a kill); that line is skipped",
                path.display()
            ));
        }
        notes
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
            Record::Rescued { job, image, path } => {
                let history = self.jobs.entry(job).or_default();
                if !matches!(history.images.get(&image), Some(ImageState::Written(_))) {
                    history
                        .images
                        .insert(image, ImageState::Rescued(dir.join(path)));
                }
            }
            Record::Done { job } => {
                let history = self.jobs.entry(job).or_default();
                history.done = true;
                history.last_failure = None;
            }
            Record::BatchPlanned {
                batch,
                provider,
                model,
                images,
            } => {
                if !self.batches.iter().any(|b| b.batch == batch) {
                    self.batches.push(BatchHistory {
                        batch,
                        provider,
                        model,
                        images,
                        name: None,
                        ended: None,
                    });
                }
            }
            Record::BatchCreated { batch, name } => {
                if let Some(history) = self.batches.iter_mut().find(|b| b.batch == batch) {
                    history.name = Some(name);
                }
            }
            Record::BatchEnded { batch, state } => {
                if let Some(history) = self.batches.iter_mut().find(|b| b.batch == batch) {
                    history.ended = Some(state);
                }
            }
            Record::Failed { job, message, .. } => {
                let history = self.jobs.entry(job).or_default();
                history.done = false;
                history.last_failure = Some(message);
                // A failure is an outcome: the started call did not produce an image.
                history.images.retain(|_, state| {
                    matches!(state, ImageState::Written(_) | ImageState::Rescued(_))
                });
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
    /// Opens (creating) the journal in `dir` for appending. A last line torn by a crash is
    /// ended first, so the next record starts a line of its own instead of being glued to
    /// the torn one and lost with it.
    ///
    /// # Errors
    /// The I/O error's text, naming the file.
    pub(crate) fn open(dir: &Path) -> Result<Self, String> {
        let path = dir.join(FILE_NAME);
        let fail = |e: std::io::Error| format!("cannot open the journal {}: {e}", path.display());
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(fail)?;
        let len = file.metadata().map_err(fail)?.len();
        if len > 0 {
            use std::io::{Read as _, Seek as _, SeekFrom};
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(fail)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")
                    .and_then(|()| file.sync_data())
                    .map_err(fail)?;
            }
        }
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
        // Scrubbed: a message an upstream echoed may hold a key, and the journal outlives the run.
        let mut text = serde_json::to_string(&line)
            .map(|text| imagegate_core::secret::scrub(&text))
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

impl Replay {
    /// Batch jobs not known to be over: the next run re-attaches to them.
    pub(crate) fn live_batches(&self) -> impl Iterator<Item = &BatchHistory> {
        self.batches.iter().filter(|b| b.ended.is_none())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn batch_records_replay_to_live_and_ended_jobs() {
        let key = |job: &str, image| ImageKey {
            job: job.to_owned(),
            image,
        };
        let replay = replay(
            vec![
                Record::BatchPlanned {
                    batch: "imagegate-a-1".into(),
                    provider: "gemini".into(),
                    model: "gemini-2.5-flash-image".into(),
                    images: vec![key("1", 0), key("2", 0)],
                },
                Record::BatchCreated {
                    batch: "imagegate-a-1".into(),
                    name: "batches/x".into(),
                },
                Record::BatchPlanned {
                    batch: "imagegate-a-2".into(),
                    provider: "gemini".into(),
                    model: "gemini-2.5-flash-image".into(),
                    images: vec![key("3", 0)],
                },
                Record::BatchEnded {
                    batch: "imagegate-a-1".into(),
                    state: "expired".into(),
                },
            ],
            "",
        );
        assert_eq!(replay.batches.len(), 2);
        assert_eq!(replay.batches[0].name.as_deref(), Some("batches/x"));
        assert_eq!(replay.batches[0].ended.as_deref(), Some("expired"));
        let live: Vec<&str> = replay.live_batches().map(|b| b.batch.as_str()).collect();
        assert_eq!(
            live,
            ["imagegate-a-2"],
            "planned, never created: found by listing"
        );
        assert_eq!(replay.batches[1].name, None);
    }

    #[test]
    fn image_keys_round_trip_through_the_wire_key() {
        let key = ImageKey {
            job: "shot-12.a".to_owned(),
            image: 3,
        };
        assert_eq!(key.wire(), "shot-12.a#3");
        assert_eq!(ImageKey::from_wire(&key.wire()), Some(key));
        assert_eq!(ImageKey::from_wire("stranger"), None);
        assert_eq!(ImageKey::from_wire("a#b"), None);
    }

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
        assert_eq!(replay.torn_last_line, Some(7));
        assert!(replay.damaged_lines.is_empty());
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

//! `imagegate batch`: many prompts to image files, resumable after any stop.
//!
//! - [`input`]: the text and JSONL formats, with per-line errors.
//! - [`journal`]: the append-only record that makes reruns continue where a run stopped.
//! - [`runner`]: jobs in flight under a semaphore, one journaled call per image.
//! - [`progress`]: the bar or the plain lines.
//! - [`summary`]: what the run did, per target, and what failed.
//! - [`estimate`]: the dry run's images, cost and time; [`dry_run`]: its report, both ways.
//! - [`lock`]: one run per output directory.
//! - [`adopt`]: which file found on disk may be adopted as a job's image.
//! - [`remote`]: the Batch API path (half price, results within a day), resumable too:
//!   creating a job, following it to its results.
//! - [`api`]: what that path needs of a Batch API; [`gemini_api`]: Gemini's.
//! - [`via`]: which images go which way (`--via`, `--deadline`).

pub(crate) mod adopt;
pub(crate) mod api;
pub(crate) mod dry_run;
pub(crate) mod estimate;
pub(crate) mod gemini_api;
pub(crate) mod input;
pub(crate) mod journal;
pub(crate) mod lock;
pub(crate) mod progress;
pub(crate) mod remote;
pub(crate) mod runner;
pub(crate) mod signals;
pub(crate) mod summary;
pub(crate) mod via;

//! The emulator's own records: a bounded log of recent requests, and the client errors
//! (bad keys, bad bodies, oversized bodies) that never reach a pool's admission. Admissions,
//! refusals and overloads are counted by the simulated upstream itself, under its lock.

use std::collections::{BTreeMap, VecDeque};

use imagegate_core::quota::Dimension;
use imagegate_mock::sim::wire::UpstreamKind;
use jiff::Timestamp;
use serde::Serialize;

/// How many log entries are kept; older ones are dropped first.
pub(crate) const LOG_CAPACITY: usize = 10_000;

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Admitted, counted against its pool, answered with an image.
    Admitted,
    /// 429: a quota of its pool was full.
    RateLimited,
    /// The pool has a limit of 0: Gemini's limit-0 429, OpenRouter's 402.
    Unentitled,
    /// 503: overloaded.
    Overloaded,
    /// 404: the project serves no such model.
    NotFound,
    /// The key was missing or unknown (400/401/403).
    BadKey,
    /// The body was not a request the service accepts (400).
    BadRequest,
    /// The body was over the size limit (413).
    TooLarge,
}

impl Outcome {
    /// True for the outcomes counted as client errors (4xx other than a quota).
    pub(crate) fn is_client_error(self) -> bool {
        matches!(
            self,
            Outcome::NotFound | Outcome::BadKey | Outcome::BadRequest | Outcome::TooLarge
        )
    }
}

/// One request in the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// Its number, from 1, increasing (a reset does not restart it).
    pub seq: u64,
    /// When it arrived, by the emulator's clock.
    pub at: Timestamp,
    /// `gemini`, `openrouter`, `openai` or `vertex`.
    pub provider: &'static str,
    /// The project its key belongs to; `None` when the key was missing or unknown.
    pub project: Option<String>,
    /// The model asked for, when the request named one.
    pub model: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The HTTP status it was answered with.
    pub status: u16,
    /// The quota dimensions that refused it (`rpm`, `rpd`, `tpm`, `ipm`); empty otherwise.
    pub refused_by: Vec<&'static str>,
}

/// Where a client error is counted: a pool of a project, or nowhere in particular.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Place {
    Pool { project: usize, pool: usize },
    Unattributed,
}

/// What one request left in the book.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) kind: UpstreamKind,
    pub(crate) project: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) outcome: Outcome,
    pub(crate) status: u16,
    pub(crate) refused_by: Vec<Dimension>,
    pub(crate) place: Place,
}

#[derive(Debug, Default)]
pub(crate) struct Book {
    log: VecDeque<LogEntry>,
    last_seq: u64,
    pub(crate) client_errors: BTreeMap<Place, u64>,
    /// Requests that reached no pool (bad key, unknown model, unknown project).
    pub(crate) unattributed_requests: u64,
}

impl Book {
    pub(crate) fn record(&mut self, at: Timestamp, entry: Entry) {
        if entry.outcome.is_client_error() {
            *self.client_errors.entry(entry.place).or_default() += 1;
        }
        if entry.place == Place::Unattributed {
            self.unattributed_requests += 1;
        }
        self.last_seq += 1;
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry {
            seq: self.last_seq,
            at,
            provider: entry.kind.as_str(),
            project: entry.project,
            model: entry.model,
            outcome: entry.outcome,
            status: entry.status,
            refused_by: entry.refused_by.iter().map(|d| d.as_str()).collect(),
        });
    }

    /// The entries after `since`, oldest first, and the last number given so far.
    pub(crate) fn since(&self, since: u64) -> (Vec<LogEntry>, u64) {
        let entries = self.log.iter().filter(|e| e.seq > since).cloned().collect();
        (entries, self.last_seq)
    }

    /// Forgets counts and entries; numbering goes on, so a reader's `since` stays valid.
    pub(crate) fn reset(&mut self) {
        let last_seq = self.last_seq;
        *self = Book {
            last_seq,
            ..Book::default()
        };
    }
}

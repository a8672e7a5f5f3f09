//! The Batch API's nouns: what goes in (keyed requests), what a job looks like when polled,
//! and what comes out (one outcome per key).

use std::fmt;
use std::str::FromStr;

use imagegate_core::{Error, GenerateRequest, GenerateResponse};
use jiff::Timestamp;
use serde_json::Value;

/// One request of a batch, with the key its result comes back under.
///
/// The key is the only link between a request and its result (results are not guaranteed to
/// come back in order), so it must be unique within a job; a journal records it before the job
/// is created.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchRequest {
    /// Unique within the job; echoed as `metadata.key` (inline) or `key` (JSONL).
    pub key: String,
    /// The request, built exactly as an interactive `generateContent` call would send it.
    pub request: GenerateRequest,
}

impl BatchRequest {
    /// A keyed request.
    pub fn new(key: impl Into<String>, request: GenerateRequest) -> Self {
        BatchRequest {
            key: key.into(),
            request,
        }
    }
}

/// A job's state. The REST API spells these `BATCH_STATE_*`, the SDKs `JOB_STATE_*`: both are
/// read (and Vertex's `JOB_STATE_SUCCEEDED` etc. with them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BatchState {
    /// `*_UNSPECIFIED`, or a state this version does not know (never terminal: keep polling).
    Unspecified,
    /// Queued, nothing run yet.
    Pending,
    /// Some requests are being answered.
    Running,
    /// Finished: every request has a result (each may still be an error).
    Succeeded,
    /// The job as a whole failed; there may be no results.
    Failed,
    /// Cancelled by the caller; results of requests finished before may exist.
    Cancelled,
    /// Not finished within the 48 hours a job may pend or run: no results.
    Expired,
}

impl BatchState {
    /// True once the state can no longer change: stop polling, collect what exists.
    pub const fn is_terminal(self) -> bool {
        matches!(
            self,
            BatchState::Succeeded
                | BatchState::Failed
                | BatchState::Cancelled
                | BatchState::Expired
        )
    }

    /// The REST spelling (`BATCH_STATE_RUNNING`), as the emulator and Google send it.
    pub const fn as_str(self) -> &'static str {
        match self {
            BatchState::Unspecified => "BATCH_STATE_UNSPECIFIED",
            BatchState::Pending => "BATCH_STATE_PENDING",
            BatchState::Running => "BATCH_STATE_RUNNING",
            BatchState::Succeeded => "BATCH_STATE_SUCCEEDED",
            BatchState::Failed => "BATCH_STATE_FAILED",
            BatchState::Cancelled => "BATCH_STATE_CANCELLED",
            BatchState::Expired => "BATCH_STATE_EXPIRED",
        }
    }

    /// Reads either spelling; anything else is [`BatchState::Unspecified`] (a new state must
    /// not stop a poller from reading the rest of the job).
    pub fn parse(text: &str) -> BatchState {
        let text = text.trim();
        let bare = text
            .strip_prefix("BATCH_STATE_")
            .or_else(|| text.strip_prefix("JOB_STATE_"))
            .unwrap_or(text);
        match bare.to_ascii_uppercase().as_str() {
            "PENDING" | "QUEUED" => BatchState::Pending,
            "RUNNING" => BatchState::Running,
            "SUCCEEDED" => BatchState::Succeeded,
            "FAILED" => BatchState::Failed,
            "CANCELLED" => BatchState::Cancelled,
            // Cancelling is still in progress: not terminal yet.
            "CANCELLING" => BatchState::Running,
            "EXPIRED" => BatchState::Expired,
            _ => BatchState::Unspecified,
        }
    }
}

impl fmt::Display for BatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BatchState {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(BatchState::parse(s))
    }
}

/// `batchStats`: counts arrive as int64 strings (`"3"`); absent counts are 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// `requestCount`.
    pub requests: u64,
    /// `pendingRequestCount`.
    pub pending: u64,
    /// `successfulRequestCount`.
    pub succeeded: u64,
    /// `failedRequestCount`: check it, a succeeded job can hold failed requests.
    pub failed: u64,
}

impl BatchStats {
    /// Requests with a result (succeeded or failed).
    pub const fn done(&self) -> u64 {
        self.succeeded.saturating_add(self.failed)
    }
}

/// Why a job failed as a whole (the Operation's `error`), when the upstream says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailure {
    /// The google.rpc code (an HTTP-like status number), when given.
    pub code: Option<u16>,
    /// The upstream's message.
    pub message: String,
}

/// The inline results of a finished job, kept as the upstream sent them until
/// [`crate::batch::inline_results`] reads them (each is a full `GenerateContentResponse`, images
/// included, so they are read once, by key).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InlineResponses(pub(crate) Vec<Value>);

impl InlineResponses {
    /// How many results.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where a finished job's results are.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchOutput {
    /// In the Operation itself (`inlinedResponses.inlinedResponses`): inline jobs.
    Inline(InlineResponses),
    /// In a file to download (`responsesFile`, `files/...`): file-input jobs.
    ResponsesFile(String),
}

/// A batch job as a poll (or create, or list) reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchJob {
    /// `batches/...`: what get, cancel and delete take.
    pub name: String,
    /// The caller's name for it: the idempotency key a client finds its job again by.
    pub display_name: String,
    /// `models/...` as the upstream reports it.
    pub model: String,
    /// The state (see [`BatchState::is_terminal`]).
    pub state: BatchState,
    /// The Operation's `done`: true once finished, whatever the state says.
    pub done: bool,
    /// The counts.
    pub stats: BatchStats,
    /// Where the results are, once there are any.
    pub output: Option<BatchOutput>,
    /// Why the job failed, when it did and the upstream says.
    pub failure: Option<JobFailure>,
    /// `createTime`.
    pub create_time: Option<Timestamp>,
    /// `updateTime`.
    pub update_time: Option<Timestamp>,
    /// `endTime`, once finished.
    pub end_time: Option<Timestamp>,
}

impl BatchJob {
    /// True once the job can no longer change (a terminal state, or `done`).
    pub fn is_finished(&self) -> bool {
        self.done || self.state.is_terminal()
    }

    /// The model without its `models/` prefix (`gemini-2.5-flash-image`).
    pub fn model_id(&self) -> &str {
        self.model.strip_prefix("models/").unwrap_or(&self.model)
    }

    /// The id after `batches/`, for URLs.
    pub fn id(&self) -> &str {
        self.name.strip_prefix("batches/").unwrap_or(&self.name)
    }
}

/// One page of `GET /v1beta/batches`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BatchPage {
    /// The jobs on this page.
    pub jobs: Vec<BatchJob>,
    /// The token for the next page; `None` on the last one.
    pub next_page_token: Option<String>,
}

/// The outcome of one request of a batch, by its key: the images, or the error an interactive
/// call would have got (classified by the same classifier).
#[derive(Debug)]
pub struct BatchResult {
    /// The request's key.
    pub key: String,
    /// Its images, or why there are none.
    pub outcome: Result<GenerateResponse, Error>,
}

/// How a job's requests travel: in the create body, or in an uploaded JSONL file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchInput {
    /// In the create body (`input_config.requests`): small jobs only.
    Inline,
    /// Uploaded through the Files API first (`input_config.file_name`); results come back as a
    /// responses file too, so no poll carries images.
    File,
}

/// Limits that decide between inline and file input, and the sizes of uploads, pages and
/// downloads. The defaults keep a poll of an inline job well under the provider's answer bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// The largest create body sent inline (the API allows 20 MB; default 10 MB).
    pub inline_max_body_bytes: u64,
    /// The largest result an inline job may produce, estimated from the image sizes asked for
    /// and counted twice (a finished Operation carries every result under `metadata.output`
    /// and again under `response`). Default 16 MiB, a quarter of the default answer bound.
    pub inline_max_result_bytes: u64,
    /// The size of each upload chunk (a multiple of 256 KiB except the last; default 8 MiB).
    pub upload_chunk_bytes: u64,
    /// Jobs asked for per list page (default 100).
    pub list_page_size: u32,
    /// The largest file [`download_file`](crate::GeminiProvider::download_file) reads into
    /// memory (default 1 GiB). `batch_results_each` streams instead, line by line.
    pub download_max_bytes: u64,
    /// The time limit for streaming a responses file (default 30 minutes: a file of thousands
    /// of images is gigabytes).
    pub download_timeout: std::time::Duration,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            inline_max_body_bytes: 10_000_000,
            inline_max_result_bytes: 16 * 1024 * 1024,
            upload_chunk_bytes: 8 * 1024 * 1024,
            list_page_size: 100,
            download_max_bytes: 1024 * 1024 * 1024,
            download_timeout: std::time::Duration::from_secs(30 * 60),
        }
    }
}

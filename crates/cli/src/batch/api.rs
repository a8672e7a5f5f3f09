//! What the batch run needs of a Batch API, as a trait: create a job, poll it, find it again
//! by its display name, fetch its results. The Gemini client (`imagegate_gemini::batch`)
//! implements it in [`super::gemini_api`]; tests drive the run through a fake.
//!
//! The run never retries a create on its own initiative except after an answer that proves
//! no job was made (a 429 or another HTTP error): creating is not idempotent, so after a
//! transport error the job is looked up by its display name instead.

use async_trait::async_trait;
use imagegate_core::{Error, GenerateRequest, GenerateResponse};

/// Where a batch job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoteState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Expired,
}

impl RemoteState {
    /// True once the job will not change any more.
    pub(crate) fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Cancelled | Self::Expired
        )
    }

    /// The word the journal, the progress lines and the summary use.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}

/// One batch job as the server last described it.
#[derive(Debug, Clone)]
pub(crate) struct RemoteJob {
    /// The server's name (`batches/...`).
    pub name: String,
    pub state: RemoteState,
    /// Requests in the job, and how many have an outcome (succeeded or failed).
    pub total: u64,
    pub finished: u64,
    /// What the client needs to fetch the results (inline responses or a responses file);
    /// opaque to the run.
    pub handle: Option<std::sync::Arc<dyn std::any::Any + Send + Sync>>,
}

/// One request's outcome, by its key.
#[derive(Debug)]
pub(crate) struct RemoteResult {
    pub key: String,
    pub outcome: Result<GenerateResponse, Error>,
}

/// A Batch API the run can drive.
#[async_trait]
pub(crate) trait BatchApi: Send + Sync + std::fmt::Debug {
    /// Creates a job named `display_name` on `model` holding `requests` (key, request).
    async fn create(
        &self,
        model: &str,
        display_name: &str,
        requests: &[(String, GenerateRequest)],
    ) -> Result<RemoteJob, Error>;

    /// The job `name` now.
    async fn get(&self, name: &str) -> Result<RemoteJob, Error>;

    /// The job whose display name is `display_name`, if the server has one.
    async fn find(&self, display_name: &str) -> Result<Option<RemoteJob>, Error>;

    /// Hands every request's outcome of a finished job to `each` as it is read (a responses
    /// file is streamed, never held whole); how many. An error after some results were handed
    /// over leaves those handed over: fetching again hands them over again.
    async fn results(
        &self,
        job: &RemoteJob,
        each: &mut (dyn FnMut(RemoteResult) + Send),
    ) -> Result<usize, Error>;
}

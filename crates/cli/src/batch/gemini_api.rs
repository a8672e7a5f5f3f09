//! [`BatchApi`] for a configured Gemini provider: `imagegate_gemini::batch` through the
//! provider's own key, base URL and limits.

use std::sync::Arc;

use async_trait::async_trait;
use imagegate_core::{Error, GenerateRequest};
use imagegate_gemini::GeminiProvider;
use imagegate_gemini::batch::{BatchJob, BatchOptions, BatchRequest, BatchState};

use super::api::{BatchApi, RemoteJob, RemoteResult, RemoteState};
use crate::config::{BatchConfig, ProviderConfig};

/// The Gemini Batch API of one configured provider.
#[derive(Debug)]
pub(crate) struct GeminiBatch(GeminiProvider);

impl GeminiBatch {
    /// The provider `name` as its configuration builds it for interactive calls (the key
    /// from its variable, its base URL, timeout, answer bound, project and model).
    ///
    /// # Errors
    /// The provider's own: a missing key variable, a bad base URL.
    pub(crate) fn from_config(
        name: &str,
        config: &ProviderConfig,
        batch: &BatchConfig,
    ) -> Result<Self, Error> {
        let key_var = config.key_env(name);
        let base_url = config.base_url.clone();
        let lookup = |variable: &str| {
            if variable == imagegate_gemini::API_KEY_ENV {
                key_var.as_deref().and_then(|var| std::env::var(var).ok())
            } else if variable == imagegate_gemini::BASE_URL_ENV {
                base_url.clone()
            } else {
                None
            }
        };
        let mut gemini = GeminiProvider::from_lookup(lookup)?;
        if let Some(timeout) = config.timeout {
            gemini = gemini.with_timeout(timeout);
        }
        if let Some(bytes) = config.max_response_bytes {
            gemini = gemini.with_max_response_bytes(bytes);
        }
        if let Some(project) = &config.project {
            gemini = gemini.with_project(project.clone());
        }
        if let Some(model) = &config.model {
            gemini = gemini.with_model(model.clone());
        }
        let mut options = BatchOptions::default();
        if let Some(bytes) = batch.inline_max_result_bytes {
            options.inline_max_result_bytes = bytes;
        }
        Ok(GeminiBatch(gemini.with_batch_options(options)))
    }
}

fn state(state: BatchState) -> RemoteState {
    match state {
        BatchState::Unspecified | BatchState::Pending => RemoteState::Pending,
        BatchState::Running => RemoteState::Running,
        BatchState::Succeeded => RemoteState::Succeeded,
        BatchState::Failed => RemoteState::Failed,
        BatchState::Cancelled => RemoteState::Cancelled,
        BatchState::Expired => RemoteState::Expired,
    }
}

fn remote(job: BatchJob) -> RemoteJob {
    let mut remote_state = state(job.state);
    // `done` without a terminal state: finished all the same (the results say how).
    if job.done && !remote_state.is_terminal() {
        remote_state = RemoteState::Succeeded;
    }
    RemoteJob {
        name: job.name.clone(),
        state: remote_state,
        total: job.stats.requests,
        finished: job.stats.succeeded + job.stats.failed,
        handle: Some(Arc::new(job)),
    }
}

#[async_trait]
impl BatchApi for GeminiBatch {
    async fn create(
        &self,
        model: &str,
        display_name: &str,
        requests: &[(String, GenerateRequest)],
    ) -> Result<RemoteJob, Error> {
        let requests: Vec<BatchRequest> = requests
            .iter()
            .map(|(key, request)| BatchRequest::new(key.clone(), request.clone()))
            .collect();
        self.0
            .batch_create(model, display_name, &requests)
            .await
            .map(remote)
    }

    async fn get(&self, name: &str) -> Result<RemoteJob, Error> {
        self.0.batch_get(name).await.map(remote)
    }

    async fn find(&self, display_name: &str) -> Result<Option<RemoteJob>, Error> {
        // The newest job of that name, should there be several.
        Ok(self.0.batch_find(display_name).await?.map(remote))
    }

    async fn results(
        &self,
        job: &RemoteJob,
        each: &mut (dyn FnMut(RemoteResult) + Send),
    ) -> Result<usize, Error> {
        let fresh;
        let raw = match job
            .handle
            .as_ref()
            .and_then(|h| h.downcast_ref::<BatchJob>())
        {
            Some(raw) => raw,
            None => {
                fresh = self.0.batch_get(&job.name).await?;
                &fresh
            }
        };
        self.0
            .batch_results_each(raw, |result| {
                each(RemoteResult {
                    key: result.key,
                    outcome: result.outcome,
                });
            })
            .await
    }
}

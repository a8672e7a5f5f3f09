//! [`ScriptedProvider`]: a provider that plays back a queue of outcomes and records every call.
//!
//! Router tests need an upstream that fails exactly when told: a 429 with a `retry_after` on the
//! second call, a daily quota on the third, an overloaded 503 that takes five simulated seconds.
//! The script says what each call returns and how long it takes; the record says what the code
//! under test actually sent, and when.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use imagegate_core::{
    Capabilities, Error, ErrorKind, GenerateRequest, GenerateResponse, ImageProvider, Result,
    clock::Clock,
};
use jiff::Timestamp;

use crate::provider::{DEFAULT_MODEL, default_capabilities};
use crate::response::{self, Call, Identity, OUTPUT_TOKENS_PER_IMAGE};

/// What one scripted call returns, and how long it takes to say so.
#[derive(Clone, Debug)]
pub struct Outcome {
    result: Scripted,
    latency: Duration,
}

#[derive(Clone, Debug)]
enum Scripted {
    Images,
    Error(Error),
}

impl Outcome {
    /// Success: the images the request asks for, from the deterministic renderer.
    pub fn image() -> Self {
        Outcome {
            result: Scripted::Images,
            latency: Duration::ZERO,
        }
    }

    /// Failure with `error`, built with [`Error`]'s builders (any kind, `retry_after`, quota
    /// facts, HTTP status). An error that names no provider (or project) gets the scripted
    /// provider's.
    pub fn error(error: Error) -> Self {
        Outcome {
            result: Scripted::Error(error),
            latency: Duration::ZERO,
        }
    }

    /// Takes `latency` (on the provider's clock) before answering.
    #[must_use]
    pub fn after(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// How long the outcome takes.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    /// The scripted error's kind, or `None` for success.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        match &self.result {
            Scripted::Images => None,
            Scripted::Error(error) => Some(error.kind()),
        }
    }
}

/// One call as the scripted provider saw it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RecordedCall {
    /// When the call arrived, on the provider's clock (before any scripted latency).
    pub at: Timestamp,
    /// The request exactly as received.
    pub request: GenerateRequest,
    /// The model that served it: the request's, else the provider's default.
    pub model: String,
}

/// A provider whose answers are a script: a queue of [`Outcome`]s played in order, one per call.
///
/// Every call is recorded ([`calls`](Self::calls)), including calls rejected because the request
/// does not fit the [capabilities](Self::with_capabilities); such a rejection fails with
/// [`ErrorKind::InvalidRequest`] like a real provider and leaves the queue untouched. When the
/// queue is empty a call fails with [`ErrorKind::Unexpected`] saying the script ran out, unless
/// a fallback was set with [`otherwise`](Self::otherwise).
///
/// It is `Send + Sync` and can be shared as `Arc<dyn ImageProvider>`; outcomes can be pushed
/// while it is shared. Its lock is never held across an `.await`.
#[derive(Debug)]
pub struct ScriptedProvider {
    name: String,
    project: Option<String>,
    default_model: String,
    capabilities: Capabilities,
    tokens_per_image: u64,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Outcome>,
    otherwise: Option<Outcome>,
    calls: Vec<RecordedCall>,
    /// How many outcomes were ever scripted, for the exhaustion message.
    scripted: usize,
}

impl ScriptedProvider {
    /// An empty script for a provider called `name`, timed by `clock`.
    ///
    /// Defaults: model `mock-image-1`, the mock's capabilities (editing, up to four images,
    /// every size, any aspect ratio, a seed), no project.
    pub fn new(name: impl Into<String>, clock: Arc<dyn Clock>) -> Self {
        ScriptedProvider {
            name: name.into(),
            project: None,
            default_model: DEFAULT_MODEL.to_owned(),
            capabilities: default_capabilities(),
            tokens_per_image: OUTPUT_TOKENS_PER_IMAGE,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// Appends `outcome` to the script (builder form of [`push`](Self::push)).
    #[must_use]
    pub fn then(self, outcome: Outcome) -> Self {
        self.push(outcome);
        self
    }

    /// Appends `outcome` to the script; works while the provider is shared.
    pub fn push(&self, outcome: Outcome) {
        let mut state = self.lock();
        state.queue.push_back(outcome);
        state.scripted += 1;
    }

    /// What every call returns once the queue is empty, forever (instead of an error).
    #[must_use]
    pub fn otherwise(self, outcome: Outcome) -> Self {
        self.lock().otherwise = Some(outcome);
        self
    }

    /// The project whose quota this instance pretends to spend.
    #[must_use]
    pub fn with_project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// What the provider claims it can do; requests that do not fit are rejected.
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// The model served when a request names none.
    #[must_use]
    pub fn with_default_model(mut self, model: impl Into<String>) -> Self {
        self.default_model = model.into();
        self
    }

    /// How many output tokens each image reports (default [`OUTPUT_TOKENS_PER_IMAGE`]).
    #[must_use]
    pub fn with_tokens_per_image(mut self, tokens: u64) -> Self {
        self.tokens_per_image = tokens;
        self
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.lock().calls.clone()
    }

    /// How many calls have arrived.
    pub fn call_count(&self) -> usize {
        self.lock().calls.len()
    }

    /// How many scripted outcomes are still queued (the fallback not counted).
    pub fn remaining(&self) -> usize {
        self.lock().queue.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a single push or pop, so a panic elsewhere cannot leave the state
        // half-written; a poisoned lock is still good to use.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn identity(&self) -> Identity<'_> {
        Identity {
            provider: &self.name,
            project: self.project.as_deref(),
        }
    }

    /// Records the call and, when the request passed its `checked` checks, takes its outcome
    /// and the call's number (from 1), under one short lock.
    fn take(&self, call: RecordedCall, checked: Result<()>) -> Result<(usize, Outcome)> {
        let mut state = self.lock();
        state.calls.push(call);
        checked?;
        let number = state.calls.len();
        let outcome = state
            .queue
            .pop_front()
            .or_else(|| state.otherwise.clone())
            .unwrap_or_else(|| {
                Outcome::error(Error::new(
                    ErrorKind::Unexpected,
                    format!(
                        "the script ran out: call {number} found no outcome queued \
                         ({} were scripted)",
                        state.scripted
                    ),
                ))
            });
        Ok((number, outcome))
    }
}

#[async_trait]
impl ImageProvider for ScriptedProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    fn default_model(&self) -> &str {
        &self.default_model
    }

    fn capabilities(&self, _model: Option<&str>) -> Capabilities {
        self.capabilities.clone()
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse> {
        let who = self.identity();
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.default_model.clone());
        let started_at = self.clock.now();
        let checked = response::check(who, &self.capabilities, request);
        let record = RecordedCall {
            at: started_at,
            request: request.clone(),
            model: model.clone(),
        };
        let (number, outcome) = self.take(record, checked)?;
        if !outcome.latency.is_zero() {
            self.clock.sleep(outcome.latency).await;
        }
        match outcome.result {
            Scripted::Error(error) => Err(who.stamp(error)),
            Scripted::Images => {
                let images = response::images(who, &model, request)?;
                let call = Call {
                    model,
                    started_at,
                    elapsed: imagegate_core::clock::span(started_at, self.clock.now()),
                    request_id: format!("{}-call-{number}", self.name),
                    tokens_per_image: self.tokens_per_image,
                };
                Ok(response::respond(who, call, request, images))
            }
        }
    }
}

//! [`MockProvider`]: a provider that always succeeds with real, deterministic PNG images.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imagegate_core::{
    AspectRatio, Capabilities, GenerateRequest, GenerateResponse, ImageProvider, ImageSize, Result,
    clock::Clock, clock::SystemClock,
};

use crate::render::Fingerprint;
use crate::response::{self, Call, Identity, OUTPUT_TOKENS_PER_IMAGE};

/// The model a mock serves when a request names none.
pub const DEFAULT_MODEL: &str = "mock-image-1";

/// The most images one mock call returns.
pub const MAX_IMAGES_PER_CALL: u32 = 4;

/// A provider that needs no network and no key: every valid request gets `count` PNG images of
/// the requested size, drawn from a hash of the request, so the same request always gets the
/// same bytes and a different prompt a visibly different picture.
///
/// It keeps the provider contract like a real backend: it rejects what its capabilities cannot
/// serve with [`ErrorKind::InvalidRequest`](imagegate_core::ErrorKind::InvalidRequest) and fills
/// the response (who served it, token usage, a zero cost, a request id, one attempt). It accepts
/// any model name. An optional latency, slept on an injected [`Clock`], makes it behave like a
/// slow upstream in simulated time.
#[derive(Clone, Debug)]
pub struct MockProvider {
    name: String,
    project: Option<String>,
    default_model: String,
    tokens_per_image: u64,
    latency: Duration,
    clock: Arc<dyn Clock>,
}

impl Default for MockProvider {
    fn default() -> Self {
        MockProvider::new()
    }
}

impl MockProvider {
    /// A provider named `mock` serving `mock-image-1` at once, on the system clock.
    pub fn new() -> Self {
        MockProvider {
            name: "mock".to_owned(),
            project: None,
            default_model: DEFAULT_MODEL.to_owned(),
            tokens_per_image: OUTPUT_TOKENS_PER_IMAGE,
            latency: Duration::ZERO,
            clock: Arc::new(SystemClock),
        }
    }

    /// Renames the provider, so several mocks can stand in for different backends.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The project whose quota this instance pretends to spend.
    #[must_use]
    pub fn with_project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
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

    /// Makes every successful call take `latency`, slept on `clock` (a simulated clock in
    /// tests, so no test waits in real time). The clock also stamps the attempt.
    #[must_use]
    pub fn with_latency(mut self, latency: Duration, clock: Arc<dyn Clock>) -> Self {
        self.latency = latency;
        self.clock = clock;
        self
    }

    /// The clock that stamps attempts (and on which any latency is slept).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn identity(&self) -> Identity<'_> {
        Identity {
            provider: &self.name,
            project: self.project.as_deref(),
        }
    }
}

/// What every in-process provider can do by default: edit, up to four images, every size, any
/// aspect ratio, a seed.
pub(crate) fn default_capabilities() -> Capabilities {
    let mut capabilities = Capabilities::new(MAX_IMAGES_PER_CALL);
    capabilities.editing = true;
    capabilities.sizes = ImageSize::ALL.to_vec();
    // Empty means any ratio: the renderer draws whatever width:height it is given.
    capabilities.aspect_ratios = Vec::<AspectRatio>::new();
    capabilities.seed = true;
    capabilities
}

#[async_trait]
impl ImageProvider for MockProvider {
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
        default_capabilities()
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse> {
        let who = self.identity();
        response::check(who, &default_capabilities(), request)?;
        let model = request.model.as_deref().unwrap_or(&self.default_model);
        let started_at = self.clock.now();
        if !self.latency.is_zero() {
            self.clock.sleep(self.latency).await;
        }
        let images = response::images(who, model, request)?;
        let call = Call {
            model: model.to_owned(),
            started_at,
            elapsed: imagegate_core::clock::span(started_at, self.clock.now()),
            request_id: format!(
                "{}-{}",
                self.name,
                Fingerprint::of(model, request, 0).hex(8)
            ),
            tokens_per_image: self.tokens_per_image,
        };
        Ok(response::respond(who, call, request, images))
    }
}

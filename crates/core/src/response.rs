//! What a provider (or the router) hands back.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::error::ErrorKind;
use crate::image::Image;
use crate::quota::RateLimitSnapshot;
use crate::usage::TokenUsage;

/// The images and everything known about how they were made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct GenerateResponse {
    /// The images, in the upstream's order.
    pub images: Vec<Image>,
    /// Who made them.
    pub served_by: ServedBy,
    /// Token usage, when the upstream reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// Estimated or reported cost in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// The upstream's id for this request (`responseId`, `id`), for support tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Text the model returned beside the images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Every upstream attempt made for this result, the successful one last. A provider fills
    /// in its one attempt; the router, every attempt across targets.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// What the answer's rate-limit headers said about the pool's limits (OpenAI sends them on
    /// every answer): the router feeds them to the quota model, so limits are learned without
    /// waiting for a 429.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimitSnapshot>,
}

impl GenerateResponse {
    /// A response with `images` from `served_by` and nothing else known yet.
    pub fn new(images: Vec<Image>, served_by: ServedBy) -> Self {
        GenerateResponse {
            images,
            served_by,
            usage: None,
            cost_usd: None,
            request_id: None,
            note: None,
            attempts: Vec::new(),
            rate_limits: Vec::new(),
        }
    }

    /// Stamps the one upstream call a provider made for this response: the project whose quota
    /// it used, and its attempt (`provider/model@project`, from `started` to `finished`, at the
    /// response's cost). Every provider ends a success with this, so attempts read alike
    /// whichever served them; the router adds waits and fallbacks around it.
    pub fn record_call(
        &mut self,
        provider: &str,
        model: &str,
        project: Option<String>,
        started: Timestamp,
        finished: Timestamp,
    ) {
        self.served_by.project = project.clone();
        let target = ServedBy::new(provider, model, project).to_string();
        self.attempts.push(Attempt::new(
            target,
            None,
            started,
            Duration::ZERO,
            crate::clock::span(started, finished),
            self.cost_usd.unwrap_or(0.0),
        ));
    }
}

/// Who served a request: provider, model and the project (or account) whose quota it used.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ServedBy {
    /// `gemini`, `openrouter`, `mock`, ...
    pub provider: String,
    /// The model as the upstream reported it (`modelVersion`), else as requested.
    pub model: String,
    /// The project or account, when configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

impl ServedBy {
    /// Who served a request.
    pub fn new(
        provider: impl Into<String>,
        model: impl Into<String>,
        project: Option<String>,
    ) -> Self {
        ServedBy {
            provider: provider.into(),
            model: model.into(),
            project,
        }
    }
}

impl std::fmt::Display for ServedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)?;
        if let Some(project) = &self.project {
            write!(f, "@{project}")?;
        }
        Ok(())
    }
}

/// One upstream attempt: where it went, how it ended, how long it waited first, what it cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Attempt {
    /// The target, e.g. `gemini/gemini-2.5-flash-image@proj-a`.
    pub target: String,
    /// `None` for success, else the error's kind.
    pub outcome: Option<ErrorKind>,
    /// When the attempt was sent.
    pub started_at: Timestamp,
    /// How long the request waited for capacity (or a retry delay) before it was sent.
    #[serde(with = "duration_ms")]
    pub waited: Duration,
    /// How long the upstream took to answer.
    #[serde(with = "duration_ms")]
    pub elapsed: Duration,
    /// What this attempt cost in US dollars (0 for a rejected request).
    pub cost_usd: f64,
}

impl Attempt {
    /// An attempt record.
    pub fn new(
        target: impl Into<String>,
        outcome: Option<ErrorKind>,
        started_at: Timestamp,
        waited: Duration,
        elapsed: Duration,
        cost_usd: f64,
    ) -> Self {
        Attempt {
            target: target.into(),
            outcome,
            started_at,
            waited,
            elapsed,
            cost_usd,
        }
    }
}

/// Serde adapter: a duration as integer milliseconds.
pub mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes whole milliseconds.
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Reads whole milliseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

//! One [`Error`] with one [`ErrorKind`]: the only failure type in the workspace.
//!
//! Classification happens once, in a provider's pure `parse_error`; everything downstream (the
//! quota model, the router, the CLI's JSON, users' scripts) branches on [`Error::kind`] and reads
//! the structured facts, never the message text.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::dimension::Dimension;

/// The workspace-wide result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, from the caller's point of view. Decides retry, fallback and advice.
///
/// Serialised in `snake_case` exactly as the variant docs name them: the CLI's JSON and users'
/// scripts depend on these strings, so renaming one is a breaking change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// `rate_limited`: a short-window quota (per minute) is full, or a 429 that explained
    /// nothing. Temporary: capacity returns on its own, usually after `retry_after`.
    RateLimited,
    /// `quota_exhausted`: a long-window quota (per day) is used up. Temporary, but not for
    /// hours: the target is done until the reset instant.
    QuotaExhausted,
    /// `billing_required`: no entitlement at all (quota limit 0, a paid-only model, no credits).
    /// Permanent: retrying can never succeed until a person attaches billing or buys credits.
    BillingRequired,
    /// `unavailable`: the upstream failed or is overloaded (5xx). Temporary.
    Unavailable,
    /// `timeout`: no answer in time. Temporary, but the upstream may already have generated
    /// and billed the image, so the router does not retry it by default.
    Timeout,
    /// `connect`: the request never reached the upstream (DNS, refused, TLS). Temporary and
    /// always safe to retry: nothing was billed.
    Connect,
    /// `unauthorized`: a bad, leaked, suspended or denied key or project. Permanent.
    Unauthorized,
    /// `region_unsupported`: the upstream refuses the caller's location. Permanent.
    RegionUnsupported,
    /// `model_not_found`: the model does not exist or is not offered to this key. Permanent.
    ModelNotFound,
    /// `invalid_request`: the upstream rejected the request itself. Permanent.
    InvalidRequest,
    /// `content_blocked`: a safety filter refused the prompt or the output. Permanent.
    ContentBlocked,
    /// `no_image`: a success answer that holds no image (text only, `NO_IMAGE`). Permanent for
    /// this request as sent.
    NoImage,
    /// `invalid_response`: a success answer that could not be decoded. Permanent.
    InvalidResponse,
    /// `config_invalid`: a configuration problem found before any request. Permanent.
    ConfigInvalid,
    /// `unexpected`: anything else. Permanent unless a provider says otherwise.
    Unexpected,
}

impl ErrorKind {
    /// Every kind, in declaration order (for documentation, tests and exhaustive tables).
    pub const ALL: [ErrorKind; 15] = [
        ErrorKind::RateLimited,
        ErrorKind::QuotaExhausted,
        ErrorKind::BillingRequired,
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::Connect,
        ErrorKind::Unauthorized,
        ErrorKind::RegionUnsupported,
        ErrorKind::ModelNotFound,
        ErrorKind::InvalidRequest,
        ErrorKind::ContentBlocked,
        ErrorKind::NoImage,
        ErrorKind::InvalidResponse,
        ErrorKind::ConfigInvalid,
        ErrorKind::Unexpected,
    ];

    /// Whether an error of this kind may succeed later without a person changing anything.
    ///
    /// [`Error::new`] starts from this default; a provider may override it per error with
    /// [`Error::set_temporary`] / [`Error::set_permanent`] when the upstream says otherwise.
    pub const fn is_temporary_by_default(self) -> bool {
        matches!(
            self,
            ErrorKind::RateLimited
                | ErrorKind::QuotaExhausted
                | ErrorKind::Unavailable
                | ErrorKind::Timeout
                | ErrorKind::Connect
        )
    }

    /// The stable `snake_case` name, as serialised.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::BillingRequired => "billing_required",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::RegionUnsupported => "region_unsupported",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ContentBlocked => "content_blocked",
            ErrorKind::NoImage => "no_image",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::ConfigInvalid => "config_invalid",
            ErrorKind::Unexpected => "unexpected",
        }
    }

    /// A short human description of the cause, used at the start of [`Error`]'s `Display`.
    pub const fn describe(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate limited (a per-minute quota is full)",
            ErrorKind::QuotaExhausted => "quota exhausted (a daily quota is used up)",
            ErrorKind::BillingRequired => "billing required (no entitlement for this model)",
            ErrorKind::Unavailable => "upstream unavailable",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Connect => "could not connect",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::RegionUnsupported => "region not supported",
            ErrorKind::ModelNotFound => "model not found",
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::ContentBlocked => "content blocked by a safety filter",
            ErrorKind::NoImage => "no image in the response",
            ErrorKind::InvalidResponse => "invalid response",
            ErrorKind::ConfigInvalid => "invalid configuration",
            ErrorKind::Unexpected => "unexpected error",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The quota an upstream said was hit, as far as it said.
///
/// Every field is optional: a bare 429 names nothing, a Gemini `QuotaFailure` names nearly all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QuotaFacts {
    /// Which of the four dimensions ran out.
    pub dimension: Option<Dimension>,
    /// The upstream's quota id, e.g. `GenerateRequestsPerDayPerProjectPerModel-FreeTier`.
    pub quota_id: Option<String>,
    /// The upstream's quota metric, e.g.
    /// `generativelanguage.googleapis.com/generate_content_free_tier_requests`.
    pub quota_metric: Option<String>,
    /// The limit's value as the upstream reported it; `Some(0)` means no entitlement at all.
    pub quota_value: Option<u64>,
    /// The model the quota belongs to, as the upstream named it.
    pub model: Option<String>,
    /// When the quota resets (e.g. the next midnight America/Los_Angeles for a Gemini RPD).
    pub reset_at: Option<Timestamp>,
}

impl QuotaFacts {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self == &QuotaFacts::default()
    }
}

/// The error returned by every crate in the workspace.
///
/// Boxed so `Result<T, Error>` stays one pointer wide. Its `Display` is one line a person
/// understands, ending with what to do about it; its `Debug` never holds a secret because
/// every text that can come from outside (the message, project, upstream code and quota facts)
/// is scrubbed when set (see [`crate::secret::scrub`]).
pub struct Error(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    temporary: bool,
    message: String,
    provider: Option<String>,
    project: Option<String>,
    http_status: Option<u16>,
    upstream_code: Option<String>,
    retry_after: Option<Duration>,
    quota: QuotaFacts,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message; temporariness starts at the kind's default.
    ///
    /// The message is scrubbed of anything shaped like an API key before it is stored.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            temporary: kind.is_temporary_by_default(),
            message: crate::secret::scrub(&message.into()),
            provider: None,
            project: None,
            http_status: None,
            upstream_code: None,
            retry_after: None,
            quota: QuotaFacts::default(),
            source: None,
        }))
    }

    /// Shorthand for a [`ErrorKind::ConfigInvalid`] error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::ConfigInvalid, message)
    }

    /// Names the provider that produced the error (`gemini`, `openrouter`, `mock`, ...).
    #[must_use]
    pub fn with_provider(mut self, provider: impl Into<String>) -> Self {
        self.0.provider = Some(provider.into());
        self
    }

    /// Names the project or account whose quota or entitlement is concerned. Scrubbed like
    /// the message (see [`Error::with_quota`]).
    #[must_use]
    pub fn with_project(mut self, project: impl Into<String>) -> Self {
        self.0.project = Some(crate::secret::scrub(&project.into()));
        self
    }

    /// Records the HTTP status the upstream answered with.
    #[must_use]
    pub fn with_http_status(mut self, status: u16) -> Self {
        self.0.http_status = Some(status);
        self
    }

    /// Records the upstream's own status or code string (`RESOURCE_EXHAUSTED`, `429`, ...).
    /// Scrubbed like the message (see [`Error::with_quota`]).
    #[must_use]
    pub fn with_upstream_code(mut self, code: impl Into<String>) -> Self {
        self.0.upstream_code = Some(crate::secret::scrub(&code.into()));
        self
    }

    /// How long the upstream asked us to wait. Clamp with [`crate::hints`] before calling.
    #[must_use]
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.0.retry_after = Some(delay);
        self
    }

    /// The quota facts the upstream named.
    ///
    /// Their text (quota id, metric, model) is scrubbed like the message: it is copied from
    /// the upstream's body, which may echo the key back, and `Display` and `Debug` print it
    /// (the `gemini_response` fuzz target found a held key printed from a quota metric; see
    /// docs/testing.md).
    #[must_use]
    pub fn with_quota(mut self, mut quota: QuotaFacts) -> Self {
        for text in [
            &mut quota.quota_id,
            &mut quota.quota_metric,
            &mut quota.model,
        ]
        .into_iter()
        .flatten()
        {
            *text = crate::secret::scrub(text);
        }
        self.0.quota = quota;
        self
    }

    /// Attaches the underlying cause (a transport error, a JSON error).
    ///
    /// The source's text is never part of `Display`; callers that print it must scrub it.
    #[must_use]
    pub fn with_source(
        mut self,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        self.0.source = Some(source.into());
        self
    }

    /// Marks the error temporary, overriding the kind's default.
    #[must_use]
    pub fn set_temporary(mut self) -> Self {
        self.0.temporary = true;
        self
    }

    /// Marks the error permanent, overriding the kind's default.
    #[must_use]
    pub fn set_permanent(mut self) -> Self {
        self.0.temporary = false;
        self
    }

    /// Replaces the kind, keeping every other fact, and resets temporariness to the new kind's
    /// default. For classifiers that refine a first, status-based guess.
    #[must_use]
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.0.kind = kind;
        self.0.temporary = kind.is_temporary_by_default();
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// Whether the same request may succeed later without a person changing anything.
    pub fn is_temporary(&self) -> bool {
        self.0.temporary
    }

    /// The scrubbed message, without advice.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The provider that produced the error, if known.
    pub fn provider(&self) -> Option<&str> {
        self.0.provider.as_deref()
    }

    /// The project or account concerned, if known.
    pub fn project(&self) -> Option<&str> {
        self.0.project.as_deref()
    }

    /// The upstream's HTTP status, if there was an answer.
    pub fn http_status(&self) -> Option<u16> {
        self.0.http_status
    }

    /// The upstream's own status or code string.
    pub fn upstream_code(&self) -> Option<&str> {
        self.0.upstream_code.as_deref()
    }

    /// How long the upstream asked us to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// The quota facts (empty when the upstream named none).
    pub fn quota(&self) -> &QuotaFacts {
        &self.0.quota
    }
}

impl fmt::Display for Error {
    /// `provider: cause: message (quota facts). advice`: one line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(provider) = &self.0.provider {
            write!(f, "{provider}: ")?;
        }
        write!(f, "{}", self.0.kind.describe())?;
        if let Some(status) = self.0.http_status {
            write!(f, " (HTTP {status})")?;
        }
        if !self.0.message.is_empty() {
            write!(f, ": {}", self.0.message)?;
        }
        let quota = &self.0.quota;
        let mut facts = Vec::new();
        if let Some(d) = quota.dimension {
            facts.push(format!("dimension {d}"));
        }
        if let Some(id) = &quota.quota_id {
            facts.push(format!("quota {id}"));
        }
        if let Some(v) = quota.quota_value {
            facts.push(format!("limit {v}"));
        }
        if let Some(m) = &quota.model {
            facts.push(format!("model {m}"));
        }
        if !facts.is_empty() {
            write!(f, " [{}]", facts.join(", "))?;
        }
        write!(f, ". {}", self.advice())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.0;
        f.debug_struct("Error")
            .field("kind", &inner.kind)
            .field("temporary", &inner.temporary)
            .field("message", &inner.message)
            .field("provider", &inner.provider)
            .field("project", &inner.project)
            .field("http_status", &inner.http_status)
            .field("upstream_code", &inner.upstream_code)
            .field("retry_after", &inner.retry_after)
            .field("quota", &inner.quota)
            .field("source", &inner.source.as_ref().map(|_| "<source>"))
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

impl Clone for Error {
    /// Clones every fact; the boxed source is not cloneable and is dropped from the copy.
    fn clone(&self) -> Self {
        let inner = &self.0;
        Error(Box::new(Inner {
            kind: inner.kind,
            temporary: inner.temporary,
            message: inner.message.clone(),
            provider: inner.provider.clone(),
            project: inner.project.clone(),
            http_status: inner.http_status,
            upstream_code: inner.upstream_code.clone(),
            retry_after: inner.retry_after,
            quota: inner.quota.clone(),
            source: None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_serialise_in_snake_case_exactly() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            let back: ErrorKind = serde_json::from_str(&json).unwrap();
            assert_eq!(back, kind);
        }
        assert_eq!(
            serde_json::to_string(&ErrorKind::RegionUnsupported).unwrap(),
            "\"region_unsupported\""
        );
    }

    #[test]
    fn temporariness_defaults_follow_the_kind_and_can_be_overridden() {
        let temporary: Vec<_> = ErrorKind::ALL
            .into_iter()
            .filter(|k| k.is_temporary_by_default())
            .collect();
        assert_eq!(
            temporary,
            [
                ErrorKind::RateLimited,
                ErrorKind::QuotaExhausted,
                ErrorKind::Unavailable,
                ErrorKind::Timeout,
                ErrorKind::Connect
            ]
        );
        let e = Error::new(ErrorKind::Unavailable, "overloaded");
        assert!(e.is_temporary());
        assert!(!e.set_permanent().is_temporary());
        let refined = Error::new(ErrorKind::RateLimited, "x").with_kind(ErrorKind::BillingRequired);
        assert!(!refined.is_temporary());
    }

    #[test]
    fn display_is_one_line_with_facts_and_advice() {
        let e = Error::new(ErrorKind::BillingRequired, "Quota exceeded, limit: 0")
            .with_provider("gemini")
            .with_project("proj-a")
            .with_http_status(429)
            .with_quota(QuotaFacts {
                dimension: Some(Dimension::Rpd),
                quota_value: Some(0),
                model: Some("gemini-3-pro-image".into()),
                ..QuotaFacts::default()
            });
        let text = e.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.starts_with("gemini: billing required"), "{text}");
        assert!(text.contains("limit 0"), "{text}");
        assert!(text.contains("proj-a"), "{text}");
    }

    #[test]
    fn messages_are_scrubbed_of_keys() {
        let e = Error::new(
            ErrorKind::Unauthorized,
            "bad key AIzaSyA1234567890abcdefghijklmnopqrstuv sent",
        );
        assert!(!e.message().contains("AIza"), "{}", e.message());
        assert!(!format!("{e:?}").contains("AIzaSyA123"));
    }

    #[test]
    fn every_fact_from_outside_is_scrubbed_of_held_keys() {
        // The fuzz targets found a held key, echoed by an upstream inside a 429's quota metric,
        // printed by Display and Debug (docs/testing.md).
        let held = "facts-held-key-0123456789";
        let _key = crate::secret::ApiKey::new(held);
        let e = Error::new(ErrorKind::RateLimited, "slow down")
            .with_project(format!("p-{held}"))
            .with_upstream_code(format!("{held}-CODE"))
            .with_quota(QuotaFacts {
                quota_id: Some(format!("id/{held}")),
                quota_metric: Some(format!("metric/{held}")),
                model: Some(format!("model {held}")),
                ..QuotaFacts::default()
            });
        for text in [e.to_string(), format!("{e:?}")] {
            assert!(!text.contains(held), "{text}");
        }
        assert_eq!(e.quota().quota_metric.as_deref(), Some("metric/***"));
        assert_eq!(e.upstream_code(), Some("***-CODE"));
    }
}

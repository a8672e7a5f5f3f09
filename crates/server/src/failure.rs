//! Every way a request can fail, and how each dialect says it: the status, the body its SDK
//! parses and the retry headers it honours (the table in docs/gateway.md, pinned by tests).

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use imagegate_core::{Error, ErrorKind, QuotaFacts, quota::Dimension};
use serde_json::{Value, json};

/// Which API a client speaks, so that its errors come back in the shape its SDK reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// OpenAI Images (`/v1/images/*`, `/v1/models`).
    OpenAi,
    /// Gemini (`/v1beta/models/*`, `/v1/models/*`).
    Gemini,
    /// OpenRouter-style chat completions (`/v1/chat/completions`, `/api/v1/chat/completions`).
    Chat,
}

impl Dialect {
    /// The dialect's name in logs and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            Dialect::OpenAi => "openai",
            Dialect::Gemini => "gemini",
            Dialect::Chat => "chat",
        }
    }
}

/// The kinds of failure the gateway answers, one row each in docs/gateway.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// A missing or unknown client key.
    Unauthorized,
    /// The client may not use the route its model maps to.
    Forbidden,
    /// No route serves the model (or no such path).
    NotFound,
    /// A malformed body or a bad field, named.
    InvalidRequest,
    /// The body is larger than `server.max_body`.
    TooLarge,
    /// No capacity within the request's maximum wait; a window frees it.
    RateLimited,
    /// A daily quota is spent; it returns at the reset.
    QuotaExhausted,
    /// The gateway's queue (`server.max_queue`) is full.
    QueueFull,
    /// The client's daily budget is spent.
    BudgetReached,
    /// Every target needs billing (or another human fix) first.
    BillingRequired,
    /// The upstream refused the content.
    ContentBlocked,
    /// The upstream failed (5xx, connection, an unusable answer).
    Upstream,
    /// The upstream did not answer in time.
    Timeout,
    /// The gateway is shutting down.
    ShuttingDown,
    /// A fault of the gateway itself.
    Internal,
}

impl FailureKind {
    /// Every kind, in table order.
    pub const ALL: [FailureKind; 15] = [
        FailureKind::Unauthorized,
        FailureKind::Forbidden,
        FailureKind::NotFound,
        FailureKind::InvalidRequest,
        FailureKind::TooLarge,
        FailureKind::RateLimited,
        FailureKind::QuotaExhausted,
        FailureKind::QueueFull,
        FailureKind::BudgetReached,
        FailureKind::BillingRequired,
        FailureKind::ContentBlocked,
        FailureKind::Upstream,
        FailureKind::Timeout,
        FailureKind::ShuttingDown,
        FailureKind::Internal,
    ];

    /// The kind's name in logs, metrics and the docs' table.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureKind::Unauthorized => "unauthorized",
            FailureKind::Forbidden => "forbidden",
            FailureKind::NotFound => "not_found",
            FailureKind::InvalidRequest => "invalid_request",
            FailureKind::TooLarge => "too_large",
            FailureKind::RateLimited => "rate_limited",
            FailureKind::QuotaExhausted => "quota_exhausted",
            FailureKind::QueueFull => "queue_full",
            FailureKind::BudgetReached => "budget_reached",
            FailureKind::BillingRequired => "billing_required",
            FailureKind::ContentBlocked => "content_blocked",
            FailureKind::Upstream => "upstream",
            FailureKind::Timeout => "timeout",
            FailureKind::ShuttingDown => "shutting_down",
            FailureKind::Internal => "internal",
        }
    }
}

/// Waits longer than this get `x-should-retry: false`: the openai SDK would otherwise retry
/// three times with its own short backoff.
pub(crate) const SDK_RETRY_HORIZON: Duration = Duration::from_secs(120);

/// One failure, with what the client needs to back off correctly (boxed: it travels in every
/// `Result` of the request path, which should stay small).
#[derive(Clone, Debug)]
pub(crate) struct Failure(Box<Details>);

impl std::ops::Deref for Failure {
    type Target = Details;
    fn deref(&self) -> &Details {
        &self.0
    }
}

impl std::ops::DerefMut for Failure {
    fn deref_mut(&mut self) -> &mut Details {
        &mut self.0
    }
}

/// What a [`Failure`] says.
#[derive(Clone, Debug)]
pub(crate) struct Details {
    pub(crate) kind: FailureKind,
    pub(crate) message: String,
    /// The request field at fault (400s).
    pub(crate) field: Option<String>,
    /// When capacity returns.
    pub(crate) retry_after: Option<Duration>,
    /// The quota behind a 429: dimension, id, limit.
    pub(crate) quota: QuotaFacts,
    /// The model the client asked for (Gemini's quota dimensions name it).
    pub(crate) model: Option<String>,
}

impl Failure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure(Box::new(Details {
            kind,
            message: message.into(),
            field: None,
            retry_after: None,
            quota: QuotaFacts::default(),
            model: None,
        }))
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Failure {
        let mut f = Failure::new(FailureKind::InvalidRequest, message);
        f.field = Some(field.into());
        f
    }

    #[must_use]
    pub(crate) fn retry_after(mut self, wait: Duration) -> Failure {
        self.retry_after = Some(wait);
        self
    }

    #[must_use]
    pub(crate) fn model(mut self, model: Option<&str>) -> Failure {
        self.model = model.map(str::to_owned);
        self
    }

    /// The router's error as the gateway answers it. Upstream details other than the quota
    /// facts (keys, URLs) never reach the client: the message is the router's own words.
    pub(crate) fn from_router(error: &Error) -> Failure {
        let kind = match error.kind() {
            ErrorKind::RateLimited => FailureKind::RateLimited,
            ErrorKind::QuotaExhausted => FailureKind::QuotaExhausted,
            ErrorKind::BillingRequired | ErrorKind::Unauthorized | ErrorKind::RegionUnsupported => {
                FailureKind::BillingRequired
            }
            ErrorKind::ModelNotFound => FailureKind::NotFound,
            ErrorKind::InvalidRequest => FailureKind::InvalidRequest,
            ErrorKind::ContentBlocked => FailureKind::ContentBlocked,
            ErrorKind::Timeout => FailureKind::Timeout,
            ErrorKind::ConfigInvalid => {
                if error.message().contains("budget") {
                    FailureKind::BudgetReached
                } else {
                    FailureKind::Internal
                }
            }
            _ => FailureKind::Upstream,
        };
        let mut failure = Failure::new(kind, error.message());
        failure.retry_after = error.retry_after();
        failure.quota = error.quota().clone();
        failure
    }

    /// Whether waiting and retrying cannot help soon: a day, a human, or a wait past what an
    /// SDK's automatic retries cover.
    pub(crate) fn retry_is_useless(&self) -> bool {
        match self.kind {
            FailureKind::QuotaExhausted
            | FailureKind::BudgetReached
            | FailureKind::BillingRequired => true,
            FailureKind::RateLimited | FailureKind::QueueFull => {
                self.retry_after.is_some_and(|d| d > SDK_RETRY_HORIZON)
            }
            _ => false,
        }
    }

    pub(crate) fn status(&self, dialect: Dialect) -> StatusCode {
        match self.kind {
            FailureKind::Unauthorized => StatusCode::UNAUTHORIZED,
            FailureKind::Forbidden => StatusCode::FORBIDDEN,
            FailureKind::NotFound => StatusCode::NOT_FOUND,
            FailureKind::InvalidRequest | FailureKind::ContentBlocked => StatusCode::BAD_REQUEST,
            FailureKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            FailureKind::RateLimited | FailureKind::QuotaExhausted | FailureKind::QueueFull => {
                StatusCode::TOO_MANY_REQUESTS
            }
            // OpenRouter says "add credits" with 402; OpenAI and Google with a 429.
            FailureKind::BudgetReached | FailureKind::BillingRequired => match dialect {
                Dialect::Chat => StatusCode::PAYMENT_REQUIRED,
                Dialect::OpenAi | Dialect::Gemini => StatusCode::TOO_MANY_REQUESTS,
            },
            FailureKind::Upstream => StatusCode::BAD_GATEWAY,
            FailureKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            FailureKind::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            FailureKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The answer in `dialect`: status, body and headers (`now` for the reset instant of
    /// OpenRouter's `X-RateLimit-Reset`).
    pub(crate) fn render(&self, dialect: Dialect, now: jiff::Timestamp) -> Response {
        let status = self.status(dialect);
        let body = match dialect {
            Dialect::OpenAi => self.openai_body(),
            Dialect::Gemini => self.gemini_body(status),
            Dialect::Chat => self.chat_body(status),
        };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: a client that waits this long finds capacity.
            let secs = wait.as_millis().div_ceil(1000);
            insert(headers, header::RETRY_AFTER, &secs.to_string());
            if dialect == Dialect::OpenAi {
                insert(
                    headers,
                    HeaderName::from_static("retry-after-ms"),
                    &wait.as_millis().to_string(),
                );
            }
        }
        if dialect == Dialect::OpenAi && self.retry_is_useless() {
            insert(headers, HeaderName::from_static("x-should-retry"), "false");
        }
        if dialect == Dialect::Chat && status == StatusCode::TOO_MANY_REQUESTS {
            let limit = self
                .quota
                .quota_value
                .map_or_else(|| "0".to_owned(), |v| v.to_string());
            insert(
                headers,
                HeaderName::from_static("x-ratelimit-limit"),
                &limit,
            );
            insert(
                headers,
                HeaderName::from_static("x-ratelimit-remaining"),
                "0",
            );
            let reset = now.as_millisecond().saturating_add(
                i64::try_from(self.retry_after.unwrap_or_default().as_millis()).unwrap_or(i64::MAX),
            );
            insert(
                headers,
                HeaderName::from_static("x-ratelimit-reset"),
                &reset.to_string(),
            );
        }
        response
    }

    fn openai_body(&self) -> Value {
        let (kind, code) = match self.kind {
            FailureKind::Unauthorized => ("invalid_request_error", "invalid_api_key"),
            FailureKind::Forbidden => ("invalid_request_error", "model_not_allowed"),
            FailureKind::NotFound => ("invalid_request_error", "model_not_found"),
            FailureKind::InvalidRequest => ("invalid_request_error", "invalid_value"),
            FailureKind::TooLarge => ("invalid_request_error", "request_too_large"),
            FailureKind::RateLimited => ("requests", "rate_limit_exceeded"),
            FailureKind::QuotaExhausted => ("requests", "daily_quota_exceeded"),
            FailureKind::QueueFull => ("requests", "queue_full"),
            FailureKind::BudgetReached | FailureKind::BillingRequired => {
                ("insufficient_quota", "insufficient_quota")
            }
            FailureKind::ContentBlocked => ("invalid_request_error", "content_policy_violation"),
            FailureKind::Upstream => ("server_error", "upstream_error"),
            FailureKind::Timeout => ("server_error", "upstream_timeout"),
            FailureKind::ShuttingDown => ("server_error", "shutting_down"),
            FailureKind::Internal => ("server_error", "internal_error"),
        };
        json!({"error": {
            "message": self.message,
            "type": kind,
            "param": self.field,
            "code": code,
        }})
    }

    fn gemini_body(&self, status: StatusCode) -> Value {
        let code_name = match self.kind {
            FailureKind::Unauthorized => "UNAUTHENTICATED",
            FailureKind::Forbidden => "PERMISSION_DENIED",
            FailureKind::NotFound => "NOT_FOUND",
            FailureKind::InvalidRequest | FailureKind::ContentBlocked | FailureKind::TooLarge => {
                "INVALID_ARGUMENT"
            }
            FailureKind::RateLimited
            | FailureKind::QuotaExhausted
            | FailureKind::QueueFull
            | FailureKind::BudgetReached
            | FailureKind::BillingRequired => "RESOURCE_EXHAUSTED",
            FailureKind::Upstream | FailureKind::ShuttingDown => "UNAVAILABLE",
            FailureKind::Timeout => "DEADLINE_EXCEEDED",
            FailureKind::Internal => "INTERNAL",
        };
        let mut details = Vec::new();
        if let Some(field) = &self.field {
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": field, "description": self.message}],
            }));
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [self.violation()],
            }));
        }
        if let Some(wait) = self.retry_after {
            details.push(json!({
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": proto_duration(wait),
            }));
        }
        let mut error = json!({
            "code": status.as_u16(),
            "message": self.message,
            "status": code_name,
        });
        if !details.is_empty() {
            error["details"] = Value::Array(details);
        }
        json!({"error": error})
    }

    /// The `QuotaFailure` violation: the pool's quota id, dimension and limit, as Gemini names
    /// them (an upstream's own id and metric when it gave them).
    fn violation(&self) -> Value {
        let dimension = self.quota.dimension.or(match self.kind {
            FailureKind::QuotaExhausted => Some(Dimension::Rpd),
            FailureKind::RateLimited => Some(Dimension::Rpm),
            _ => None,
        });
        let quota_id =
            self.quota
                .quota_id
                .clone()
                .unwrap_or_else(|| match (self.kind, dimension) {
                    (FailureKind::QueueFull, _) => "ImagegateGatewayQueue".to_owned(),
                    (FailureKind::BudgetReached, _) => "ImagegateClientBudgetPerDay".to_owned(),
                    (FailureKind::BillingRequired, _) => "BillingRequired".to_owned(),
                    (_, Some(Dimension::Rpd)) => {
                        "GenerateRequestsPerDayPerProjectPerModel".to_owned()
                    }
                    (_, Some(Dimension::Tpm)) => {
                        "GenerateContentInputTokensPerModelPerMinute".to_owned()
                    }
                    (_, Some(Dimension::Ipm)) => {
                        "GenerateImagesPerMinutePerProjectPerModel".to_owned()
                    }
                    _ => "GenerateRequestsPerMinutePerProjectPerModel".to_owned(),
                });
        let mut violation = json!({
            "quotaMetric": self.quota.quota_metric.clone().unwrap_or_else(|| {
                format!("imagegate/{}", dimension.map_or("requests", Dimension::as_str))
            }),
            "quotaId": quota_id,
            "quotaDimensions": {"location": "global"},
        });
        if let Some(model) = self.quota.model.as_ref().or(self.model.as_ref()) {
            violation["quotaDimensions"]["model"] = json!(model);
        }
        if let Some(value) = self.quota.quota_value {
            violation["quotaValue"] = json!(value.to_string());
        }
        violation
    }

    fn chat_body(&self, status: StatusCode) -> Value {
        let mut metadata = json!({"kind": self.kind.as_str()});
        if let Some(field) = &self.field {
            metadata["field"] = json!(field);
        }
        if let Some(wait) = self.retry_after {
            metadata["retry_after_ms"] = json!(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
        }
        if let Some(d) = self.quota.dimension {
            metadata["dimension"] = json!(d.as_str());
        }
        json!({"error": {
            "code": status.as_u16(),
            "message": self.message,
            "metadata": metadata,
        }})
    }
}

fn insert(headers: &mut http::HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// A protobuf JSON duration: `13s`, or `0.400s` for a fraction.
fn proto_duration(wait: Duration) -> String {
    let ms = wait.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}.{:03}s", ms / 1000, ms % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_durations() {
        assert_eq!(proto_duration(Duration::from_secs(13)), "13s");
        assert_eq!(proto_duration(Duration::from_millis(400)), "0.400s");
        assert_eq!(proto_duration(Duration::from_millis(61_250)), "61.250s");
    }

    #[test]
    fn router_kinds_map_to_rows() {
        let e =
            Error::new(ErrorKind::RateLimited, "window").with_retry_after(Duration::from_secs(3));
        let f = Failure::from_router(&e);
        assert_eq!(f.kind, FailureKind::RateLimited);
        assert!(!f.retry_is_useless());
        let f = f.retry_after(Duration::from_secs(121));
        assert!(f.retry_is_useless());
        let e = Error::new(ErrorKind::Unavailable, "overloaded");
        assert_eq!(Failure::from_router(&e).kind, FailureKind::Upstream);
    }
}

//! The `google.rpc.Status` envelope and the typed details imagegate reads from it.
//!
//! Google APIs answer errors with `{"error": {"code", "message", "status", "details": [...]}}`.
//! The streaming endpoint sends the same object wrapped in a one-element JSON array, relays
//! sometimes re-wrap the raw text inside `message`, and the set of detail types and their fields
//! grows over time. So parsing here is tolerant: a detail we do not know, or one whose fields
//! have an unexpected shape, is kept as [`Detail::Other`] instead of failing the whole body.

use std::collections::BTreeMap;

use serde_json::Value;

/// A parsed `google.rpc.Status` (the value of the `error` key).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Status {
    /// `error.code`: usually the HTTP status (`429`), sometimes absent.
    pub code: Option<u16>,
    /// `error.message`, as sent (may span several lines).
    pub message: String,
    /// `error.status`: the canonical code name (`RESOURCE_EXHAUSTED`, `INVALID_ARGUMENT`).
    pub status: Option<String>,
    /// `error.details`, in the order sent.
    pub details: Vec<Detail>,
}

/// One entry of `error.details`, typed by its `@type`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Detail {
    /// `google.rpc.QuotaFailure`: which quotas were exceeded.
    QuotaFailure(QuotaFailure),
    /// `google.rpc.RetryInfo`: how long to wait.
    RetryInfo(RetryInfo),
    /// `google.rpc.ErrorInfo`: a machine-readable reason and metadata.
    ErrorInfo(ErrorInfo),
    /// `google.rpc.Help`: links for a person.
    Help(Help),
    /// Any other detail (`LocalizedMessage`, `DebugInfo`, future types), kept as sent.
    Other(Value),
}

/// `google.rpc.QuotaFailure`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct QuotaFailure {
    /// The violated quotas; several can be reported at once.
    pub violations: Vec<QuotaViolation>,
}

/// One `QuotaFailure.violations[]` entry. Every field is optional: Google adds and drops fields
/// between variants (the "limit: 0" variant has no `quotaValue`).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct QuotaViolation {
    /// `quotaMetric`, e.g. `generativelanguage.googleapis.com/generate_content_free_tier_requests`.
    pub quota_metric: Option<String>,
    /// `quotaId`, e.g. `GenerateRequestsPerDayPerProjectPerModel-FreeTier`.
    pub quota_id: Option<String>,
    /// `quotaDimensions` (`model`, `location`, ...), key order not significant.
    pub quota_dimensions: BTreeMap<String, String>,
    /// `quotaValue`: the limit (an int64, sent as a string or a number).
    pub quota_value: Option<u64>,
    /// `subject` (older QuotaFailure form).
    pub subject: Option<String>,
    /// `description` (older QuotaFailure form).
    pub description: Option<String>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RetryInfo {
    /// `retryDelay` as sent: a protobuf duration such as `"26s"` or `"45.837906927s"`.
    pub retry_delay: Option<String>,
}

/// `google.rpc.ErrorInfo`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ErrorInfo {
    /// `reason`, e.g. `API_KEY_INVALID`, `RATE_LIMIT_EXCEEDED`.
    pub reason: Option<String>,
    /// `domain`, e.g. `googleapis.com`.
    pub domain: Option<String>,
    /// `metadata`: string values (non-string values are kept as their JSON text).
    pub metadata: BTreeMap<String, String>,
}

/// `google.rpc.Help`.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Help {
    /// The links, in order.
    pub links: Vec<HelpLink>,
}

/// One `Help.links[]` entry.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct HelpLink {
    /// What the link is about.
    pub description: Option<String>,
    /// Where it points.
    pub url: Option<String>,
}

impl Status {
    /// Every quota violation from every `QuotaFailure` detail, in order.
    pub fn violations(&self) -> impl Iterator<Item = &QuotaViolation> {
        self.details.iter().flat_map(|d| match d {
            Detail::QuotaFailure(q) => q.violations.as_slice(),
            _ => &[],
        })
    }

    /// The first `RetryInfo.retryDelay`, as sent.
    pub fn retry_delay(&self) -> Option<&str> {
        self.details.iter().find_map(|d| match d {
            Detail::RetryInfo(r) => r.retry_delay.as_deref(),
            _ => None,
        })
    }

    /// Every `ErrorInfo` detail, in order.
    pub fn error_infos(&self) -> impl Iterator<Item = &ErrorInfo> {
        self.details.iter().filter_map(|d| match d {
            Detail::ErrorInfo(e) => Some(e),
            _ => None,
        })
    }

    /// The first help link's URL.
    pub fn help_url(&self) -> Option<&str> {
        self.details.iter().find_map(|d| match d {
            Detail::Help(h) => h.links.iter().find_map(|l| l.url.as_deref()),
            _ => None,
        })
    }
}

/// Parses a Google error body: `{"error": {...}}`, or a JSON array whose first element is one
/// (the streaming endpoint's form). Also unwraps the relay form in which `error.message` holds
/// Google's raw body as a string.
///
/// `None` when the body is not JSON, is truncated, or holds no `error` object: the caller then
/// classifies by the HTTP status alone.
pub fn parse_status(body: &[u8]) -> Option<Status> {
    let value: Value = serde_json::from_slice(body).ok()?;
    status_from_value(&value)
}

/// [`parse_status`] for an already-parsed JSON value (OpenRouter's `metadata.raw` can be either
/// a string holding Google's body or the object itself).
pub fn status_from_value(value: &Value) -> Option<Status> {
    let value = match value {
        Value::Array(items) => items.iter().find(|v| v.get("error").is_some())?,
        Value::String(text) => return parse_status(text.trim().as_bytes()),
        other => other,
    };
    let error = value.get("error")?.as_object()?;
    let mut status = Status {
        code: error.get("code").and_then(as_u16),
        message: error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        status: error
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned),
        details: error
            .get("details")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(parse_detail).collect())
            .unwrap_or_default(),
    };
    // Relay form: `{"error": {"message": "<Google's raw body>", "code": 429, "status": "Too Many
    // Requests"}}`. The inner body is the real one.
    let inner = status.message.trim_start();
    if status.details.is_empty()
        && (inner.starts_with('{') || inner.starts_with('['))
        && let Some(mut real) = parse_status(inner.as_bytes())
    {
        real.code = real.code.or(status.code);
        return Some(real);
    }
    status.message = status.message.trim().to_owned();
    Some(status)
}

fn parse_detail(value: &Value) -> Detail {
    let type_url = value.get("@type").and_then(Value::as_str).unwrap_or("");
    // "type.googleapis.com/google.rpc.QuotaFailure": only the last path segment matters.
    let name = type_url.rsplit('/').next().unwrap_or("");
    let typed = match name {
        "google.rpc.QuotaFailure" => parse_quota_failure(value).map(Detail::QuotaFailure),
        "google.rpc.RetryInfo" => Some(Detail::RetryInfo(RetryInfo {
            retry_delay: value.get("retryDelay").and_then(duration_text),
        })),
        "google.rpc.ErrorInfo" => Some(Detail::ErrorInfo(ErrorInfo {
            reason: string(value, "reason"),
            domain: string(value, "domain"),
            metadata: string_map(value.get("metadata")),
        })),
        "google.rpc.Help" => parse_help(value).map(Detail::Help),
        _ => None,
    };
    typed.unwrap_or_else(|| Detail::Other(value.clone()))
}

fn parse_quota_failure(value: &Value) -> Option<QuotaFailure> {
    let violations = value.get("violations")?.as_array()?;
    Some(QuotaFailure {
        violations: violations
            .iter()
            .filter(|v| v.is_object())
            .map(|v| QuotaViolation {
                quota_metric: string(v, "quotaMetric"),
                quota_id: string(v, "quotaId"),
                quota_dimensions: string_map(v.get("quotaDimensions")),
                quota_value: v.get("quotaValue").and_then(as_u64),
                subject: string(v, "subject"),
                description: string(v, "description"),
            })
            .collect(),
    })
}

fn parse_help(value: &Value) -> Option<Help> {
    let links = value.get("links")?.as_array()?;
    Some(Help {
        links: links
            .iter()
            .map(|l| HelpLink {
                description: string(l, "description"),
                url: string(l, "url"),
            })
            .collect(),
    })
}

fn string(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(map)) = value else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

/// A protobuf duration is a string in proto-JSON (`"26s"`); some relays send `{"seconds": 26,
/// "nanos": 0}` instead, which we turn into the string form.
fn duration_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => {
            let seconds = o.get("seconds").and_then(as_u64).unwrap_or(0);
            let nanos = o.get("nanos").and_then(as_u64).unwrap_or(0);
            Some(format!("{seconds}.{nanos:09}s"))
        }
        _ => None,
    }
}

/// An int64 in proto-JSON is a string (`"250000"`); accept a number too.
fn as_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_u16(value: &Value) -> Option<u16> {
    as_u64(value).and_then(|n| u16::try_from(n).ok())
}

/// Whether a decoded error object (`{"code", "message", "status", "details"}`) names `service`
/// (`aiplatform.googleapis.com`) in its details: an `ErrorInfo`'s `domain` or
/// `metadata.service`, or a `QuotaFailure` violation's `quotaMetric`. Tells apart Google APIs
/// that share the envelope (the Gemini API and Vertex AI) for `diagnose`.
pub fn names_service(error: &Value, service: &str) -> bool {
    let mentions = |v: Option<&Value>| {
        v.and_then(Value::as_str)
            .is_some_and(|s| s.contains(service))
    };
    error
        .get("details")
        .and_then(Value::as_array)
        .is_some_and(|details| {
            details.iter().any(|d| {
                mentions(d.get("domain"))
                    || mentions(d.get("metadata").and_then(|m| m.get("service")))
                    || d.get("violations")
                        .and_then(Value::as_array)
                        .is_some_and(|vs| vs.iter().any(|v| mentions(v.get("quotaMetric"))))
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_object_and_array_forms_alike() {
        let object = br#"{"error":{"code":429,"message":"m","status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"}]}}"#;
        let mut array = b"[".to_vec();
        array.extend_from_slice(object);
        array.push(b']');
        let a = parse_status(object).unwrap();
        let b = parse_status(&array).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.code, Some(429));
        assert_eq!(a.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(a.retry_delay(), Some("26s"));
    }

    #[test]
    fn unknown_and_malformed_details_are_kept_not_fatal() {
        let body = br#"{"error":{"code":400,"message":"x","details":[
            {"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","message":"x"},
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":"not a list"},
            7,
            {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[
              {"quotaId":"Q","quotaValue":0,"quotaDimensions":{"model":"m","n":3},"extra":true}]}]}}"#;
        let status = parse_status(body).unwrap();
        assert_eq!(status.details.len(), 4);
        assert!(matches!(status.details[0], Detail::Other(_)));
        assert!(matches!(status.details[1], Detail::Other(_)));
        assert!(matches!(status.details[2], Detail::Other(_)));
        let v: Vec<_> = status.violations().collect();
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].quota_value, Some(0));
        assert_eq!(v[0].quota_dimensions["model"], "m");
        assert_eq!(v[0].quota_dimensions["n"], "3");
    }

    #[test]
    fn not_an_error_body_is_none() {
        for body in [
            &b""[..],
            b"<html><body>502 Bad Gateway</body></html>",
            br#"{"error":{"code":429,"mess"#,
            br#"{"candidates":[]}"#,
            br#"{"error":"a string"}"#,
            b"[]",
            b"null",
        ] {
            assert_eq!(
                parse_status(body),
                None,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn relay_wrapped_raw_body_is_unwrapped() {
        let inner = r#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"9s"}]}}"#;
        let outer = serde_json::json!({"error": {"message": format!("{inner}\n"), "code": 429, "status": "Too Many Requests"}});
        let status = parse_status(outer.to_string().as_bytes()).unwrap();
        assert_eq!(status.status.as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(status.retry_delay(), Some("9s"));
        let from_string = status_from_value(&Value::String(inner.to_owned())).unwrap();
        assert_eq!(from_string.message, "quota");
    }

    #[test]
    fn names_service_finds_vertex_in_error_info_and_quota_metrics() {
        let info = serde_json::json!({"details": [{"domain": "aiplatform.googleapis.com"}]});
        let metric = serde_json::json!({"details": [{"violations": [{"quotaMetric": "aiplatform.googleapis.com/x"}]}]});
        let meta = serde_json::json!({"details": [{"domain": "googleapis.com", "metadata": {"service": "aiplatform.googleapis.com"}}]});
        let gemini = serde_json::json!({"details": [{"domain": "googleapis.com", "metadata": {"service": "generativelanguage.googleapis.com"}}]});
        for v in [&info, &metric, &meta] {
            assert!(names_service(v, "aiplatform.googleapis.com"), "{v}");
        }
        assert!(!names_service(&gemini, "aiplatform.googleapis.com"));
        assert!(!names_service(
            &serde_json::json!({}),
            "aiplatform.googleapis.com"
        ));
    }
}

//! OpenRouter's error envelope, read once into plain fields.
//!
//! The documented shape is `{"error": {"code", "message", "metadata"?}}`; real bodies add a
//! top-level `user_id`, clients print the inner object on its own (mid-stream errors), and 200
//! answers carry the same object in `error` or `choices[].error`. Every reader below tolerates
//! missing or oddly typed fields: an envelope is evidence, never a contract.

use serde_json::{Map, Value};

/// The parts of an OpenRouter error object the classifier reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct Envelope {
    /// `error.code` when it is a number (or a numeric string).
    pub(crate) code: Option<u16>,
    /// `error.message`, possibly empty.
    pub(crate) message: String,
    /// `error.metadata`, empty when absent.
    pub(crate) metadata: Map<String, Value>,
    /// `error.availability` (capacity hints), empty when absent.
    pub(crate) availability: Map<String, Value>,
}

impl Envelope {
    /// The envelope of a whole response body: `{"error": {...}}` (with or without `user_id`), or
    /// a bare error object `{"code", "message", ...}` as clients log mid-stream errors.
    pub(crate) fn from_body(body: &Value) -> Option<Envelope> {
        let object = body.as_object()?;
        match object.get("error") {
            Some(inner) => Envelope::from_error_object(inner),
            None if object.contains_key("message") && object.contains_key("code") => {
                Envelope::from_error_object(body)
            }
            None => None,
        }
    }

    /// The envelope of one error object (`{"code", "message", "metadata"}`).
    pub(crate) fn from_error_object(error: &Value) -> Option<Envelope> {
        let object = match error {
            Value::Object(object) => object,
            // `"error": "some text"`: still an error, with nothing structured in it.
            Value::String(text) => {
                return Some(Envelope {
                    message: text.clone(),
                    ..Envelope::default()
                });
            }
            _ => return None,
        };
        let code = object.get("code").and_then(as_u16);
        let message = object
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let take = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        Some(Envelope {
            code,
            message,
            metadata: take("metadata"),
            availability: take("availability"),
        })
    }

    /// A string field of `metadata`.
    pub(crate) fn meta_str(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).and_then(Value::as_str)
    }

    /// `metadata.provider_name`: which upstream answered (null for OpenRouter's own errors).
    pub(crate) fn provider_name(&self) -> Option<&str> {
        self.meta_str("provider_name")
    }

    /// `metadata.error_type`: OpenRouter's canonical error type (`rate_limit_exceeded`, ...).
    pub(crate) fn error_type(&self) -> Option<&str> {
        self.meta_str("error_type")
    }

    /// `metadata.limit_source`: which limit refused the request
    /// (`openrouter_free_tier_daily`, `upstream_provider_shared_pool`, `openrouter_credits`, ...).
    pub(crate) fn limit_source(&self) -> Option<&str> {
        self.meta_str("limit_source")
    }

    /// `metadata.is_byok`: the request ran on the caller's own upstream key, so an upstream quota
    /// error is the caller's quota rather than OpenRouter's shared pool.
    pub(crate) fn is_byok(&self) -> bool {
        self.metadata
            .get("is_byok")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `metadata.raw`: the upstream's own error, as a JSON string, an object, or plain text.
    pub(crate) fn raw(&self) -> Option<&Value> {
        self.metadata.get("raw").filter(|v| !v.is_null())
    }

    /// A rate-limit header mirrored in `metadata.headers`, matched case-insensitively.
    pub(crate) fn meta_header(&self, name: &str) -> Option<String> {
        let headers = self.metadata.get("headers")?.as_object()?;
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| match value {
                Value::String(text) => Some(text.clone()),
                Value::Number(number) => Some(number.to_string()),
                _ => None,
            })
    }

    /// True for a moderation refusal (403 with `reasons` / `flagged_input` in the metadata).
    pub(crate) fn is_moderation(&self) -> bool {
        self.metadata.contains_key("reasons") || self.metadata.contains_key("flagged_input")
    }

    /// `availability.retry_after` in seconds, when OpenRouter gives one.
    pub(crate) fn availability_retry_after(&self) -> Option<f64> {
        self.availability.get("retry_after").and_then(Value::as_f64)
    }
}

fn as_u16(value: &Value) -> Option<u16> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_wrapped_bare_and_string_errors() {
        let wrapped = json!({"error": {"code": 429, "message": "m", "metadata": {"headers": {"x-ratelimit-reset": 5}}}, "user_id": "u"});
        let e = Envelope::from_body(&wrapped).unwrap();
        assert_eq!(e.code, Some(429));
        assert_eq!(e.meta_header("X-RateLimit-Reset").as_deref(), Some("5"));
        let bare = json!({"code": "502", "message": "Upstream error", "metadata": {"raw": null}});
        let e = Envelope::from_body(&bare).unwrap();
        assert_eq!(e.code, Some(502));
        assert!(e.raw().is_none());
        let text = json!({"error": "boom"});
        assert_eq!(Envelope::from_body(&text).unwrap().message, "boom");
        assert!(Envelope::from_body(&json!({"choices": []})).is_none());
        assert!(Envelope::from_body(&json!([1])).is_none());
    }
}

//! OpenAI's error envelope, read once into plain fields.
//!
//! The documented shape (the OpenAI API reference, "Errors") is
//! `{"error": {"message", "type", "param", "code"}}`; `code` is a string or null, and relays
//! that speak the API sometimes send the inner object alone or a numeric `code`.

use serde_json::Value;

/// The fields of one error object; everything optional, nothing trusted.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Envelope {
    /// `error.message`.
    pub message: String,
    /// `error.type`: `invalid_request_error`, `insufficient_quota`, `server_error`, ...
    pub kind: Option<String>,
    /// `error.code`: `rate_limit_exceeded`, `invalid_api_key`, `model_not_found`, ...
    pub code: Option<String>,
    /// `error.param`: the request field the error is about.
    pub param: Option<String>,
}

impl Envelope {
    /// Reads `{"error": {...}}` or a bare error object; `None` when the body is neither.
    pub(crate) fn from_body(body: &Value) -> Option<Envelope> {
        match body.get("error") {
            Some(inner @ Value::Object(_)) => Some(Self::from_object(inner)),
            // `{"error": "text"}`, as some self-hosted servers answer.
            Some(Value::String(text)) => Some(Envelope {
                message: text.clone(),
                ..Envelope::default()
            }),
            _ if body.get("message").is_some() && body.get("type").is_some() => {
                Some(Self::from_object(body))
            }
            _ => None,
        }
    }

    fn from_object(object: &Value) -> Envelope {
        let text = |name: &str| match object.get(name) {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        Envelope {
            message: text("message").unwrap_or_default(),
            kind: text("type"),
            code: text("code"),
            param: text("param"),
        }
    }

    /// True when `type` or `code` is `name`.
    pub(crate) fn is(&self, name: &str) -> bool {
        self.kind.as_deref() == Some(name) || self.code.as_deref() == Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_bare_and_odd_shapes() {
        let e = Envelope::from_body(
            &json!({"error": {"message": "m", "type": "t", "param": null, "code": "c"}}),
        )
        .unwrap();
        assert_eq!(
            (e.kind.as_deref(), e.code.as_deref(), e.param.as_deref()),
            (Some("t"), Some("c"), None)
        );
        assert!(e.is("t") && e.is("c") && !e.is("m"));
        let bare =
            Envelope::from_body(&json!({"message": "m", "type": "server_error", "code": 500}))
                .unwrap();
        assert_eq!(bare.code.as_deref(), Some("500"));
        let text = Envelope::from_body(&json!({"error": "model not loaded"})).unwrap();
        assert_eq!(text.message, "model not loaded");
        assert_eq!(Envelope::from_body(&json!({"data": []})), None);
        assert_eq!(Envelope::from_body(&json!([1])), None);
    }
}

//! The fixture format: one upstream exchange per file, with what the parser must make of it.
//!
//! ```json
//! {
//!   "origin": "recorded",
//!   "source": "VERBATIM-CONTENT, re-indented; voideditor/void#557",
//!   "description": "free-tier per-day quota used up",
//!   "now": "2026-01-15T12:00:00Z",
//!   "request": { "method": "POST", "path": "/v1beta/models/gemini-2.5-flash-image:generateContent" },
//!   "response": { "status": 429, "headers": { "content-type": "application/json" },
//!                 "body_json": { "error": { "code": 429, "status": "RESOURCE_EXHAUSTED" } } },
//!   "expect": { "kind": "quota_exhausted", "temporary": true, "dimension": "rpd",
//!               "reset_at": "2026-01-16T08:00:00Z" }
//! }
//! ```
//!
//! - `origin` is `recorded` (a real capture, scrubbed) or `synthesized` (built from a document);
//!   `source` names the capture or document either way.
//! - `now` is the instant the parser is told it is (reset times and HTTP-date hints depend on
//!   it); default [`DEFAULT_NOW`].
//! - `response` has `body_json` (any JSON) or `body_text` (HTML pages, truncated bodies, empty
//!   strings: exactly the bytes to serve) or `body_base64`; never more than one.
//! - `expect` with a `kind` expects an error of that kind; without one it expects success with
//!   `images` images. Fields left out are not checked.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use imagegate_core::{Error, ErrorKind, GenerateResponse, quota::Dimension};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

/// The instant a fixture's parser is told it is, unless the fixture says otherwise.
pub const DEFAULT_NOW: &str = "2026-01-15T12:00:00Z";

/// Where a fixture came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// A real exchange, captured and scrubbed.
    Recorded,
    /// Built from a document's description of the wire format.
    Synthesized,
}

/// One upstream exchange and what the parser must make of it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// `provider/endpoint/scenario`, from the file's path (not written in the file).
    #[serde(skip)]
    pub id: String,
    /// Recorded or synthesized.
    pub origin: Origin,
    /// The capture or document it came from.
    pub source: String,
    /// What the exchange shows, in a sentence.
    #[serde(default)]
    pub description: String,
    /// The instant the parser is told it is.
    #[serde(default)]
    pub now: Option<Timestamp>,
    /// The request we expect to send (for conformance tests and request snapshots).
    #[serde(default)]
    pub request: Option<FixtureRequest>,
    /// What the upstream answered.
    pub response: FixtureResponse,
    /// What the parser must make of it.
    pub expect: Expect,
}

/// The request side of a fixture.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureRequest {
    /// HTTP method, e.g. `POST`.
    #[serde(default)]
    pub method: Option<String>,
    /// The path (and no query: keys never go in URLs).
    #[serde(default)]
    pub path: Option<String>,
    /// Headers the request must carry (names lowercase; never a real secret).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body the request must match (partially).
    #[serde(default)]
    pub body_json: Option<Value>,
}

/// The response side of a fixture.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers (names lowercase).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    #[serde(default)]
    pub body_json: Option<Value>,
    /// A body given as exact text (HTML, truncated JSON, empty).
    #[serde(default)]
    pub body_text: Option<String>,
    /// A body given as base64 bytes.
    #[serde(default)]
    pub body_base64: Option<String>,
}

/// What the parser must make of a fixture's response. Fields left out are not checked.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The error kind; `None` means success.
    #[serde(default)]
    pub kind: Option<ErrorKind>,
    /// Whether the error is temporary.
    #[serde(default)]
    pub temporary: Option<bool>,
    /// The HTTP status recorded on the error.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// The upstream code recorded on the error (`RESOURCE_EXHAUSTED`).
    #[serde(default)]
    pub upstream_code: Option<String>,
    /// `retry_after` in whole milliseconds (`null` in the file: must be absent).
    #[serde(default, deserialize_with = "some_value")]
    pub retry_after_ms: Option<Option<u64>>,
    /// The quota dimension (`null`: must be absent).
    #[serde(default, deserialize_with = "some_value")]
    pub dimension: Option<Option<Dimension>>,
    /// The quota id.
    #[serde(default)]
    pub quota_id: Option<String>,
    /// The quota metric.
    #[serde(default)]
    pub quota_metric: Option<String>,
    /// The quota value (`null`: must be absent).
    #[serde(default, deserialize_with = "some_value")]
    pub quota_value: Option<Option<u64>>,
    /// The model named in the quota facts.
    #[serde(default)]
    pub model: Option<String>,
    /// The reset instant (`null`: must be absent).
    #[serde(default, deserialize_with = "some_value")]
    pub reset_at: Option<Option<Timestamp>>,
    /// Text the error message must contain.
    #[serde(default)]
    pub message_contains: Option<String>,
    /// On success: how many images.
    #[serde(default)]
    pub images: Option<usize>,
    /// On success: the images' MIME types, in order.
    #[serde(default)]
    pub mime_types: Option<Vec<String>>,
    /// On success: the upstream request id.
    #[serde(default)]
    pub request_id: Option<String>,
    /// On success: the model the upstream reported.
    #[serde(default)]
    pub served_model: Option<String>,
    /// On success: output tokens reported.
    #[serde(default)]
    pub output_tokens: Option<u64>,
}

/// Distinguishes "field absent" (`None`: not checked) from `null` (`Some(None)`: must be absent).
fn some_value<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl Fixture {
    /// Loads one fixture file; `id` is its path under `root` without `.json`.
    ///
    /// # Errors
    /// A message naming the file and what is wrong with it.
    pub fn load(root: &Path, path: &Path) -> Result<Fixture, String> {
        let text = fs::read_to_string(path)
            .map_err(|e| format!("cannot read fixture {}: {e}", path.display()))?;
        let mut fixture: Fixture = serde_json::from_str(&text).map_err(|e| {
            format!(
                "fixture {} is not in the fixture format: {e}",
                path.display()
            )
        })?;
        let relative = path.strip_prefix(root).unwrap_or(path);
        fixture.id = relative
            .with_extension("")
            .to_string_lossy()
            .replace('\\', "/");
        let bodies = [
            fixture.response.body_json.is_some(),
            fixture.response.body_text.is_some(),
            fixture.response.body_base64.is_some(),
        ];
        if bodies.iter().filter(|b| **b).count() > 1 {
            return Err(format!(
                "fixture {} gives more than one of body_json, body_text, body_base64",
                fixture.id
            ));
        }
        Ok(fixture)
    }

    /// Every fixture under `fixtures/<dir>` (recursively), sorted by id.
    ///
    /// # Errors
    /// A message naming the first file that cannot be read or parsed.
    pub fn load_dir(dir: &str) -> Result<Vec<Fixture>, String> {
        let root = fixtures_root();
        let mut paths = Vec::new();
        collect_json(&root.join(dir), &mut paths)?;
        paths.sort();
        paths.iter().map(|p| Fixture::load(&root, p)).collect()
    }

    /// Loads `fixtures/<id>.json`, e.g. `gemini/generate/rate_limited_per_minute`.
    ///
    /// # Errors
    /// A message naming the file and what is wrong with it.
    pub fn by_id(id: &str) -> Result<Fixture, String> {
        let root = fixtures_root();
        Fixture::load(&root, &root.join(format!("{id}.json")))
    }

    /// The instant the parser is told it is.
    pub fn now(&self) -> Timestamp {
        self.now
            .unwrap_or_else(|| DEFAULT_NOW.parse().unwrap_or(Timestamp::UNIX_EPOCH))
    }

    /// The response status as an `http::StatusCode` (`500` when the number is not a status).
    pub fn status(&self) -> http::StatusCode {
        http::StatusCode::from_u16(self.response.status)
            .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The response headers as an `http::HeaderMap` (unrepresentable ones are skipped).
    pub fn headers(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.response.headers {
            if let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                map.append(name, value);
            }
        }
        map
    }

    /// The exact response body bytes.
    pub fn body(&self) -> Vec<u8> {
        let response = &self.response;
        if let Some(json) = &response.body_json {
            return serde_json::to_vec(json).unwrap_or_default();
        }
        if let Some(text) = &response.body_text {
            return text.clone().into_bytes();
        }
        if let Some(b64) = &response.body_base64 {
            return base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap_or_default();
        }
        Vec::new()
    }

    /// True when the fixture expects success.
    pub fn expects_success(&self) -> bool {
        self.expect.kind.is_none()
    }

    /// The error `parse` makes of this fixture's body, for a fixture whose upstream echoes
    /// `key` back (the fuzz findings in docs/testing.md): with `key` held as a provider holds
    /// its own, the error must be the fixture's expected one and print the key neither in
    /// `Display` nor in `Debug`. The caller checks what else its provider must have kept.
    ///
    /// # Errors
    /// A message when the body no longer echoes the key, `parse` succeeds, the error is not
    /// the expected one, or the key is printed.
    pub fn error_echoing_key(
        &self,
        key: &str,
        parse: impl FnOnce(&[u8]) -> Result<GenerateResponse, Error>,
    ) -> Result<Error, String> {
        let _held = imagegate_core::secret::ApiKey::new(key);
        let body = self.body();
        if !String::from_utf8_lossy(&body).contains(key) {
            return Err(format!("{}: the fixture no longer echoes the key", self.id));
        }
        let error = match parse(&body) {
            Ok(_) => return Err(format!("{}: parsed as a success", self.id)),
            Err(error) => error,
        };
        self.expect.check(&Err(error.clone()))?;
        for text in [error.to_string(), format!("{error:?}")] {
            if text.contains(key) {
                return Err(format!("{}: the key is printed: {text}", self.id));
            }
        }
        Ok(error)
    }
}

impl Expect {
    /// Checks an outcome against the expectation; `Err` lists every mismatch.
    pub fn check(&self, outcome: &Result<GenerateResponse, Error>) -> Result<(), String> {
        let mut problems = Vec::new();
        match (self.kind, outcome) {
            (Some(kind), Err(error)) => self.check_error(kind, error, &mut problems),
            (None, Ok(response)) => self.check_success(response, &mut problems),
            (Some(kind), Ok(response)) => problems.push(format!(
                "expected error `{kind}`, got success with {} image(s)",
                response.images.len()
            )),
            (None, Err(error)) => {
                problems.push(format!("expected success, got `{}`: {error}", error.kind()));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn check_error(&self, kind: ErrorKind, error: &Error, problems: &mut Vec<String>) {
        let quota = error.quota();
        let mut same = |what: &str, expected: String, got: String| {
            if expected != got {
                problems.push(format!("{what}: expected {expected}, got {got}"));
            }
        };
        same("kind", kind.to_string(), error.kind().to_string());
        if let Some(t) = self.temporary {
            same("temporary", t.to_string(), error.is_temporary().to_string());
        }
        if let Some(s) = self.http_status {
            same(
                "http_status",
                format!("{:?}", Some(s)),
                format!("{:?}", error.http_status()),
            );
        }
        if let Some(code) = &self.upstream_code {
            same(
                "upstream_code",
                format!("{:?}", Some(code.as_str())),
                format!("{:?}", error.upstream_code()),
            );
        }
        if let Some(ms) = self.retry_after_ms {
            let got = error
                .retry_after()
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            same("retry_after_ms", format!("{ms:?}"), format!("{got:?}"));
        }
        if let Some(d) = self.dimension {
            same(
                "dimension",
                format!("{d:?}"),
                format!("{:?}", quota.dimension),
            );
        }
        if let Some(id) = &self.quota_id {
            same(
                "quota_id",
                format!("{:?}", Some(id)),
                format!("{:?}", quota.quota_id),
            );
        }
        if let Some(metric) = &self.quota_metric {
            same(
                "quota_metric",
                format!("{:?}", Some(metric)),
                format!("{:?}", quota.quota_metric),
            );
        }
        if let Some(v) = self.quota_value {
            same(
                "quota_value",
                format!("{v:?}"),
                format!("{:?}", quota.quota_value),
            );
        }
        if let Some(m) = &self.model {
            same(
                "model",
                format!("{:?}", Some(m)),
                format!("{:?}", quota.model),
            );
        }
        if let Some(at) = self.reset_at {
            same(
                "reset_at",
                format!("{at:?}"),
                format!("{:?}", quota.reset_at),
            );
        }
        if let Some(text) = &self.message_contains
            && !error.message().contains(text.as_str())
        {
            problems.push(format!(
                "message should contain {text:?}, was {:?}",
                error.message()
            ));
        }
    }

    fn check_success(&self, response: &GenerateResponse, problems: &mut Vec<String>) {
        if let Some(n) = self.images
            && response.images.len() != n
        {
            problems.push(format!(
                "images: expected {n}, got {}",
                response.images.len()
            ));
        }
        if let Some(mimes) = &self.mime_types {
            let got: Vec<_> = response
                .images
                .iter()
                .map(|i| i.mime_type.clone())
                .collect();
            if &got != mimes {
                problems.push(format!("mime_types: expected {mimes:?}, got {got:?}"));
            }
        }
        if let Some(id) = &self.request_id
            && response.request_id.as_deref() != Some(id.as_str())
        {
            problems.push(format!(
                "request_id: expected {id:?}, got {:?}",
                response.request_id
            ));
        }
        if let Some(model) = &self.served_model
            && &response.served_by.model != model
        {
            problems.push(format!(
                "served_model: expected {model:?}, got {:?}",
                response.served_by.model
            ));
        }
        if let Some(tokens) = self.output_tokens {
            let got = response.usage.map(|u| u.output_tokens);
            if got != Some(tokens) {
                problems.push(format!("output_tokens: expected {tokens}, got {got:?}"));
            }
        }
    }
}

/// The workspace's `fixtures/` directory.
///
/// Found from this crate's manifest directory (`crates/testkit/../../fixtures`), so tests find
/// it whatever their working directory; `IMAGEGATE_FIXTURES_DIR` overrides it.
pub fn fixtures_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("IMAGEGATE_FIXTURES_DIR") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), String> {
    let entries =
        fs::read_dir(dir).map_err(|e| format!("cannot list fixtures in {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot list fixtures in {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            collect_json(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(())
}

//! [`GeminiProvider`]: one `generate` call, one HTTP request, one classified outcome.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use imagegate_core::{
    Capabilities, Error, ErrorKind, GenerateRequest, GenerateResponse, ImageProvider, clock::Clock,
    clock::SystemClock, secret::ApiKey,
};
use imagegate_http::{HttpShell, sensitive_header};

use crate::batch::BatchOptions;
use crate::response::{PROVIDER, parse_response_for};
use imagegate_gemini_wire::{
    DEFAULT_MODEL, capabilities_for, check_model, endpoint_for, request_bytes,
};

/// The variable [`GeminiProvider::from_env`] reads the API key from.
pub const API_KEY_ENV: &str = "GEMINI_API_KEY";
/// The variable [`GeminiProvider::from_env`] reads an optional base URL (a relay) from.
pub const BASE_URL_ENV: &str = "GEMINI_BASE_URL";
/// Google's endpoint, used unless a base URL is given.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";
/// The default time limit for one request (the shared shell's): generation takes 30-45 s and
/// more, and a timed-out request may already be billed, so the limit is generous.
pub const DEFAULT_TIMEOUT: Duration = imagegate_http::DEFAULT_TIMEOUT;
/// Where to create a key, for messages about a missing one.
pub(crate) const KEY_HELP: &str = "create a key at https://aistudio.google.com/apikey";
/// The API's own path under the base URL; a base URL ending in it is not doubled.
const API_PATH: &str = "/v1beta";

/// The Gemini API as an [`ImageProvider`]: Gemini image models through `generateContent`,
/// Imagen through `:predict`.
///
/// # Contract
/// One [`generate`](ImageProvider::generate) call sends at most one request and never retries,
/// sleeps or falls back: the router owns that. The key travels only in the `x-goog-api-key`
/// header; it is never in a URL, an error or this type's `Debug`.
///
/// # Errors
/// Every failure is one [`Error`] classified by [`crate::parse_error`] (HTTP answers) or mapped
/// from the transport by the shared shell ([`imagegate_http::transport_error`]: timeout,
/// connect, a cut-off answer is `unavailable`). Requests the model cannot serve fail with
/// [`ErrorKind::InvalidRequest`] before anything is sent.
#[derive(Clone)]
pub struct GeminiProvider {
    pub(crate) key: ApiKey,
    pub(crate) base_url: String,
    pub(crate) http: HttpShell,
    pub(crate) project: Option<String>,
    model: String,
    pub(crate) clock: Arc<dyn Clock>,
    /// Inline/file thresholds and sizes for the Batch API calls (`crate::batch`).
    pub(crate) batch: BatchOptions,
}

impl GeminiProvider {
    /// A provider with `key`, Google's endpoint, the default model and timeout.
    pub fn new(key: ApiKey) -> Self {
        GeminiProvider {
            key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            http: HttpShell::new(),
            project: None,
            model: DEFAULT_MODEL.to_owned(),
            clock: Arc::new(SystemClock),
            batch: BatchOptions::default(),
        }
    }

    /// A provider configured from `GEMINI_API_KEY` and, when set, `GEMINI_BASE_URL`.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] naming the variable when the key is missing or empty, or
    /// the base URL is not a usable URL.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading variables through `lookup` (tests and embedders
    /// that keep configuration elsewhere).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let key = imagegate_http::key_from_lookup(API_KEY_ENV, KEY_HELP, &lookup)
            .map_err(|e| e.with_provider(PROVIDER))?;
        let provider = GeminiProvider::new(key);
        match lookup(BASE_URL_ENV).filter(|u| !u.trim().is_empty()) {
            Some(url) => provider.with_base_url(&url).map_err(|e| {
                Error::config(format!("{BASE_URL_ENV}: {}", e.message())).with_provider(PROVIDER)
            }),
            None => Ok(provider),
        }
    }

    /// Sends requests to `url` instead of Google: a relay speaking the same protocol, or a test
    /// server. Scheme, host, port and an optional path prefix; `/v1beta/models/...` is appended
    /// (a trailing `/v1beta` in `url` is accepted and not doubled).
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] when `url` is not an http(s) URL, or carries credentials,
    /// a query or a fragment (a key in a URL ends up in logs).
    pub fn with_base_url(mut self, url: &str) -> Result<Self, Error> {
        self.base_url = imagegate_http::base_url::normalise(url, "Gemini", API_PATH)
            .map_err(|e| e.with_provider(PROVIDER))?;
        Ok(self)
    }

    /// Uses `client` for every request (shared connection pools, proxies, custom TLS). Build
    /// it with `.retry(reqwest::retry::never())` and `.redirect(reqwest::redirect::Policy::none())`
    /// (see [`HttpShell::with_client`]). The provider's timeout still applies per request.
    #[must_use]
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = self.http.with_client(client);
        self
    }

    /// The time limit for one request, from connecting until the body is read.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.with_timeout(timeout);
        self
    }

    /// The largest answer accepted, in bytes (default
    /// [`imagegate_http::DEFAULT_MAX_RESPONSE_BYTES`]); a larger one is an error naming it.
    #[must_use]
    pub fn with_max_response_bytes(mut self, bytes: u64) -> Self {
        self.http = self.http.with_max_response_bytes(bytes);
        self
    }

    /// Names the Google Cloud project the key belongs to. Quotas are per project, so the
    /// router pools by it; errors and responses name it.
    #[must_use]
    pub fn with_project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// The model used when a request names none.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The clock read when an answer arrives (per-day reset instants are computed from it).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The base URL requests go to (no secret in it).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The configured per-request time limit.
    pub fn timeout(&self) -> Duration {
        self.http.timeout()
    }

    /// The full URL for `model` (without any key: the key is a header).
    pub fn url_for(&self, model: &str) -> String {
        let model = imagegate_gemini_wire::normalize_model(model);
        format!("{}{}", self.base_url, endpoint_for(model).path(model))
    }

    /// Checks `request` against what `model` can do, before anything is sent.
    pub(crate) fn check(&self, request: &GenerateRequest, model: &str) -> Result<(), Error> {
        request.validate()?;
        let caps = capabilities_for(model);
        if request.count > caps.max_images_per_call {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "{model} returns at most {} image(s) per call and {} were asked for: make several calls (the router splits requests for you)",
                    caps.max_images_per_call, request.count
                ),
            ));
        }
        caps.check(request)
            .map_err(|why| Error::new(ErrorKind::InvalidRequest, format!("{model} {why}")))
    }

    async fn send(
        &self,
        model: &str,
        request: &GenerateRequest,
    ) -> Result<GenerateResponse, Error> {
        self.check(request, model)?;
        // Reference images are base64-encoded straight into the body (no string per image).
        let body = request_bytes(request, model);
        let request = self
            .http
            .request(Method::POST, &self.url_for(model))?
            .header("x-goog-api-key", sensitive_header(self.key.expose())?)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body);
        let host = imagegate_http::base_url::host_of(&self.base_url)
            .unwrap_or_else(|| "the Gemini endpoint".to_owned());
        let answer = self.http.send(request, &host).await?;
        parse_response_for(
            model,
            answer.status,
            &answer.headers,
            &answer.body,
            self.clock.now(),
        )
    }
}

impl fmt::Debug for GeminiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeminiProvider")
            .field("key", &self.key)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("project", &self.project)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl ImageProvider for GeminiProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    fn default_model(&self) -> &str {
        &self.model
    }

    fn capabilities(&self, model: Option<&str>) -> Capabilities {
        capabilities_for(model.unwrap_or(&self.model))
    }

    async fn generate(
        &self,
        request: &GenerateRequest,
    ) -> imagegate_core::Result<GenerateResponse> {
        let asked = request.model.as_deref().unwrap_or(&self.model);
        let started = self.clock.now();
        let outcome = match check_model(asked) {
            Ok(model) => self.send(model, request).await,
            Err(e) => Err(e),
        };
        let finished = self.clock.now();
        match outcome {
            Ok(mut response) => {
                // No cost here (the response carries none): the price table lives with the router.
                response.record_call(
                    PROVIDER,
                    imagegate_gemini_wire::normalize_model(asked),
                    self.project.clone(),
                    started,
                    finished,
                );
                Ok(response)
            }
            Err(error) => {
                let mut error = error.with_provider(PROVIDER);
                if let Some(project) = &self.project {
                    error = error.with_project(project.clone());
                }
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn from_env_names_the_missing_variable() {
        let e = GeminiProvider::from_lookup(env(&[])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigInvalid);
        assert!(e.message().contains("GEMINI_API_KEY"), "{}", e.message());
        let e = GeminiProvider::from_lookup(env(&[("GEMINI_API_KEY", "  ")])).unwrap_err();
        assert!(e.message().contains("GEMINI_API_KEY"), "{}", e.message());
    }

    #[test]
    fn from_env_reads_the_base_url() {
        let p = GeminiProvider::from_lookup(env(&[
            ("GEMINI_API_KEY", "test-key-not-real"),
            ("GEMINI_BASE_URL", "http://relay.local:8080/gemini/"),
        ]))
        .unwrap();
        assert_eq!(
            p.url_for("gemini-2.5-flash-image"),
            "http://relay.local:8080/gemini/v1beta/models/gemini-2.5-flash-image:generateContent"
        );
        let e = GeminiProvider::from_lookup(env(&[
            ("GEMINI_API_KEY", "test-key-not-real"),
            ("GEMINI_BASE_URL", "ftp://x"),
        ]))
        .unwrap_err();
        assert!(e.message().contains("GEMINI_BASE_URL"), "{}", e.message());
    }

    #[test]
    fn base_urls_never_carry_secrets_and_v1beta_is_not_doubled() {
        let p = || GeminiProvider::new(ApiKey::new("test-key-not-real"));
        for bad in [
            "not a url",
            "http://u:p@host",
            "https://host/?key=abc",
            "https://host/#x",
        ] {
            assert_eq!(
                p().with_base_url(bad).unwrap_err().kind(),
                ErrorKind::ConfigInvalid,
                "{bad}"
            );
        }
        let ok = p()
            .with_base_url("https://generativelanguage.googleapis.com/v1beta/")
            .unwrap();
        assert_eq!(
            ok.url_for("imagen-4.0-generate-001"),
            "https://generativelanguage.googleapis.com/v1beta/models/imagen-4.0-generate-001:predict"
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let p = GeminiProvider::new(ApiKey::new("visible-if-leaked-123")).with_project("proj-a");
        let shown = format!("{p:?}");
        assert!(!shown.contains("visible-if-leaked-123"), "{shown}");
        assert!(shown.contains("proj-a") && shown.contains("***"), "{shown}");
    }
}

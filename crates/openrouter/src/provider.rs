//! [`OpenRouterProvider`]: the builder, the one request per call, and the key endpoint.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{AUTHORIZATION, HeaderValue};
use http::{HeaderMap, Method, StatusCode};
use imagegate_core::{
    Capabilities, Error, ErrorKind, GenerateRequest, GenerateResponse, ImageProvider, clock::Clock,
    clock::SystemClock, secret::ApiKey,
};
use imagegate_http::{HttpShell, sensitive_header};
use serde_json::Value;

use crate::base_url::{self, DEFAULT_BASE_URL};
use crate::classify::{PROVIDER, parse_error};
use crate::key::{KeyInfo, parse_key_info};
use crate::request::{build_request, capabilities};
use crate::response::respond;

/// The model used when neither the request nor [`OpenRouterProvider::with_model`] names one:
/// Gemini 2.5 Flash Image through OpenRouter, the usual fallback for Gemini direct.
pub const DEFAULT_MODEL: &str = "google/gemini-2.5-flash-image";

/// How long one request may take by default (the shared shell's). Image generation takes
/// 30-45 s and a response is about 1.5 MB of JSON, so the default is generous: a timeout that
/// fires while the upstream is still drawing wastes a billed image.
pub const DEFAULT_TIMEOUT: Duration = imagegate_http::DEFAULT_TIMEOUT;
/// Where to create a key, for messages about a missing one.
pub(crate) const KEY_HELP: &str = "create one at https://openrouter.ai/settings/keys";

/// The environment variable holding the API key.
pub const API_KEY_VAR: &str = "OPENROUTER_API_KEY";

/// The environment variable holding an optional base URL (a relay, a mock server).
pub const BASE_URL_VAR: &str = "OPENROUTER_BASE_URL";

/// Image generation through OpenRouter's chat completions, with separate billing and quota
/// from Google's: the fallback path when Gemini direct is exhausted.
///
/// One [`generate`](ImageProvider::generate) call sends exactly one request and never retries,
/// sleeps or falls back (the router does). The key travels only in the `Authorization: Bearer`
/// header; `Debug` prints `***` for it.
pub struct OpenRouterProvider {
    key: ApiKey,
    base_url: String,
    http: HttpShell,
    attribution: Option<(String, String)>,
    project: Option<String>,
    model: String,
    clock: Arc<dyn Clock>,
}

impl OpenRouterProvider {
    /// A provider for `key` against `https://openrouter.ai`, with the default model, timeout
    /// and clock, and an HTTP client that never retries by itself (so one call is at most one
    /// billable request).
    pub fn new(key: ApiKey) -> Self {
        OpenRouterProvider {
            key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            http: HttpShell::new(),
            attribution: None,
            project: None,
            model: DEFAULT_MODEL.to_owned(),
            clock: Arc::new(SystemClock),
        }
    }

    /// A provider configured from `OPENROUTER_API_KEY` and, when set, `OPENROUTER_BASE_URL`.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] naming the variable when the key is missing or empty, or
    /// when the base URL is not a valid base URL (see [`with_base_url`](Self::with_base_url)).
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading variables through `lookup` (for configuration
    /// layers and tests, which must not mutate the process environment).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let key = imagegate_http::key_from_lookup(API_KEY_VAR, KEY_HELP, &lookup)
            .map_err(|e| e.with_provider(PROVIDER))?;
        let provider = OpenRouterProvider::new(key);
        match lookup(BASE_URL_VAR).filter(|v| !v.trim().is_empty()) {
            Some(url) => provider.with_base_url(&url).map_err(|e| {
                Error::config(format!("{BASE_URL_VAR}: {}", e.message())).with_provider(PROVIDER)
            }),
            None => Ok(provider),
        }
    }

    /// Sends requests to `url` instead of `https://openrouter.ai`: the scheme, host and
    /// optional prefix before the API's `/api/v1`. A trailing `/api/v1` (the form SDKs take)
    /// is accepted and removed.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] for a URL that is not http(s), or carries credentials, a
    /// query or a fragment.
    pub fn with_base_url(mut self, url: &str) -> Result<Self, Error> {
        self.base_url = base_url::normalise(url).map_err(|e| e.with_provider(PROVIDER))?;
        Ok(self)
    }

    /// Uses `client` for every request (connection pools, proxies, TLS settings). Build it with
    /// `.retry(reqwest::retry::never())` and `.redirect(reqwest::redirect::Policy::none())`:
    /// retries belong to the router, and a followed redirect can carry the key elsewhere.
    #[must_use]
    pub fn with_http_client(mut self, client: reqwest::Client) -> Self {
        self.http = self.http.with_client(client);
        self
    }

    /// Sets the per-request timeout (default [`DEFAULT_TIMEOUT`]).
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

    /// Sends OpenRouter's optional attribution headers: `HTTP-Referer` (your site) and
    /// `X-Title` (your app's name), which rank the app on openrouter.ai.
    #[must_use]
    pub fn with_attribution(
        mut self,
        referer: impl Into<String>,
        title: impl Into<String>,
    ) -> Self {
        self.attribution = Some((referer.into(), title.into()));
        self
    }

    /// Names the account this key spends (the quota pool the router keeps for it). Keys of one
    /// OpenRouter account share its credits and limits.
    #[must_use]
    pub fn with_project(mut self, project: String) -> Self {
        self.project = Some(project);
        self
    }

    /// Sets the model used when a request names none (default [`DEFAULT_MODEL`]).
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Sets the clock whose `now` classifies errors (reset instants, `Retry-After` dates) and
    /// stamps attempts.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The normalised base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Asks `GET /api/v1/key` for the key's credits, limit reset and free-tier flag. Not a
    /// billable request.
    ///
    /// # Errors
    /// The classified error for a failed answer (401 for a bad key, ...), a transport error, or
    /// [`ErrorKind::InvalidResponse`] for an answer that is not key info.
    pub async fn key_info(&self) -> Result<KeyInfo, Error> {
        let (status, headers, body) = self.send(Method::GET, "key", None).await?;
        if status.is_success() {
            parse_key_info(&body).map_err(|e| self.tag(e))
        } else {
            Err(self.tag(parse_error(status, &headers, &body, self.clock.now())))
        }
    }

    /// One HTTP exchange; the only place the key is read.
    async fn send(
        &self,
        method: Method,
        endpoint: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, HeaderMap, Bytes), Error> {
        if self.key.is_empty() {
            return Err(self.tag(Error::config(format!(
                "the OpenRouter API key ({API_KEY_VAR}) is empty"
            ))));
        }
        let auth =
            sensitive_header(&format!("Bearer {}", self.key.expose())).map_err(|e| self.tag(e))?;
        let url = base_url::endpoint(&self.base_url, endpoint);
        let mut builder = self
            .http
            .request(method, &url)
            .map_err(|e| self.tag(e))?
            .header(AUTHORIZATION, auth);
        if let Some((referer, title)) = &self.attribution {
            let value = |what: &str, text: &str| {
                HeaderValue::from_str(text).map_err(|_| {
                    self.tag(Error::config(format!(
                        "the attribution {what} holds characters not allowed in a header"
                    )))
                })
            };
            builder = builder
                .header("HTTP-Referer", value("referer", referer)?)
                .header("X-Title", value("title", title)?);
        }
        if let Some(body) = body {
            builder = builder.json(body);
        }
        let host = imagegate_http::base_url::host_of(&self.base_url)
            .unwrap_or_else(|| "OpenRouter".to_owned());
        let answer = self
            .http
            .send(builder, &host)
            .await
            .map_err(|e| self.tag(e))?;
        tracing::debug!(
            provider = PROVIDER,
            endpoint,
            status = answer.status.as_u16(),
            "openrouter answered"
        );
        Ok((answer.status, answer.headers, answer.body))
    }

    /// Adds the provider and project to an error.
    fn tag(&self, error: Error) -> Error {
        let error = error.with_provider(PROVIDER);
        match (&self.project, error.project()) {
            (Some(project), None) => error.with_project(project.clone()),
            _ => error,
        }
    }
}

#[async_trait]
impl ImageProvider for OpenRouterProvider {
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
        capabilities(model.unwrap_or(&self.model))
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, Error> {
        request.validate().map_err(|e| self.tag(e))?;
        let model = request.model.as_deref().unwrap_or(&self.model);
        if request.count > 1 {
            return Err(self.tag(Error::new(
                ErrorKind::InvalidRequest,
                format!(
                    "{model} returns one image per call and {} were asked for: send one request per image (the router splits them)",
                    request.count
                ),
            )));
        }
        capabilities(model).check(request).map_err(|why| {
            self.tag(Error::new(
                ErrorKind::InvalidRequest,
                format!("{model} {why}"),
            ))
        })?;
        let body = build_request(request, model);
        let started = self.clock.now();
        let (status, headers, bytes) = self
            .send(Method::POST, "chat/completions", Some(&body))
            .await?;
        let now = self.clock.now();
        let mut response =
            respond(status, &headers, &bytes, model, Some(now)).map_err(|e| self.tag(e))?;
        response.record_call(PROVIDER, model, self.project.clone(), started, now);
        Ok(response)
    }
}

impl fmt::Debug for OpenRouterProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenRouterProvider")
            .field("key", &self.key)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("project", &self.project)
            .field("http", &self.http)
            .field("attribution", &self.attribution)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vars_names_the_missing_variable() {
        let err = OpenRouterProvider::from_vars(|_| None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
        assert!(err.message().contains(API_KEY_VAR), "{err}");
        let err = OpenRouterProvider::from_vars(|n| (n == API_KEY_VAR).then(|| "  \n".to_owned()))
            .unwrap_err();
        assert!(err.message().contains(API_KEY_VAR), "{err}");
        let err = OpenRouterProvider::from_vars(|n| match n {
            API_KEY_VAR => Some("test-key-value".to_owned()),
            _ => Some("not a url".to_owned()),
        })
        .unwrap_err();
        assert!(err.message().contains(BASE_URL_VAR), "{err}");
        let ok = OpenRouterProvider::from_vars(|n| match n {
            API_KEY_VAR => Some("test-key-value".to_owned()),
            _ => Some("https://openrouter.ai/api/v1".to_owned()),
        })
        .unwrap();
        assert_eq!(ok.base_url(), "https://openrouter.ai");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let provider = OpenRouterProvider::new(ApiKey::new("test-secret-value-123"))
            .with_project("acct".to_owned());
        let text = format!("{provider:?}");
        assert!(!text.contains("test-secret-value-123"), "{text}");
        assert!(text.contains("***") && text.contains("acct"), "{text}");
    }
}

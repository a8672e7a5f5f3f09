//! [`OpenAiProvider`]: the builder and the one request per call (plus the downloads of images
//! a server gave only as links).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use imagegate_core::{
    Error, ErrorKind, GenerateRequest, GenerateResponse, Image, ImageProvider, clock::Clock,
    clock::SystemClock, secret::ApiKey,
};
use imagegate_http::{Answer, HttpShell, sensitive_header};
use reqwest::multipart::{Form, Part};

use crate::classify::{PROVIDER, parse_error};
use crate::request::{ModelFamily, build_edit_form, build_request, capabilities};
use crate::response::read;

/// The model used when neither the request nor [`OpenAiProvider::with_model`] names one.
pub const DEFAULT_MODEL: &str = "gpt-image-1";

/// The public API root. As in the openai SDKs, a base URL is the API root *including* its
/// version path (`https://api.openai.com/v1`, `http://localhost:8080/v1`): the endpoints are
/// `{base}/images/generations` and `{base}/images/edits`.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// How long one request may take by default (the shared shell's: GPT-image generations take
/// up to a minute at high quality).
pub const DEFAULT_TIMEOUT: Duration = imagegate_http::DEFAULT_TIMEOUT;

/// Where to create a key, for messages about a missing one.
pub(crate) const KEY_HELP: &str = "create one at https://platform.openai.com/api-keys";

/// The environment variable holding the API key (as the openai SDKs read it).
pub const API_KEY_VAR: &str = "OPENAI_API_KEY";

/// The environment variable holding an optional base URL (as the openai SDKs read it).
pub const BASE_URL_VAR: &str = "OPENAI_BASE_URL";

/// The environment variables of the organization and project headers (as the SDKs read them).
pub(crate) const ORGANIZATION_VAR: &str = "OPENAI_ORG_ID";
pub(crate) const PROJECT_VAR: &str = "OPENAI_PROJECT_ID";

/// Image generation and editing through the OpenAI Images API, on OpenAI or any server that
/// speaks it (relays, aggregators, LocalAI).
///
/// One [`generate`](ImageProvider::generate) call sends exactly one billable request and never
/// retries, sleeps or falls back (the router does); a server that answers with image links
/// instead of base64 costs one unauthenticated download per image. The key travels only in
/// the `Authorization: Bearer` header; `Debug` prints `***` for it.
pub struct OpenAiProvider {
    key: ApiKey,
    base_url: String,
    http: HttpShell,
    organization: Option<String>,
    openai_project: Option<String>,
    project: Option<String>,
    model: String,
    clock: Arc<dyn Clock>,
}

impl OpenAiProvider {
    /// A provider for `key` against `https://api.openai.com/v1`, with the default model,
    /// timeout and clock.
    pub fn new(key: ApiKey) -> Self {
        OpenAiProvider {
            key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            http: HttpShell::new(),
            organization: None,
            openai_project: None,
            project: None,
            model: DEFAULT_MODEL.to_owned(),
            clock: Arc::new(SystemClock),
        }
    }

    /// A provider configured from `OPENAI_API_KEY` and, when set, `OPENAI_BASE_URL`,
    /// `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID`.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] naming the variable when the key is missing or empty, or
    /// when the base URL is not a valid base URL.
    pub fn from_env() -> Result<Self, Error> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) reading variables through `lookup`.
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_vars(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let key = imagegate_http::key_from_lookup(API_KEY_VAR, KEY_HELP, &lookup)
            .map_err(|e| e.with_provider(PROVIDER))?;
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut provider = OpenAiProvider::new(key);
        if let Some(org) = set(ORGANIZATION_VAR) {
            provider = provider.with_organization(org.trim());
        }
        if let Some(project) = set(PROJECT_VAR) {
            provider = provider.with_openai_project(project.trim());
        }
        match set(BASE_URL_VAR) {
            Some(url) => provider.with_base_url(&url).map_err(|e| {
                Error::config(format!("{BASE_URL_VAR}: {}", e.message())).with_provider(PROVIDER)
            }),
            None => Ok(provider),
        }
    }

    /// Sends requests to `url` instead of `https://api.openai.com/v1`: the API root as the
    /// openai SDKs take it, version path included (`http://localhost:8080/v1`).
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] for a URL that is not http(s), or carries credentials, a
    /// query or a fragment.
    pub fn with_base_url(mut self, url: &str) -> Result<Self, Error> {
        self.base_url = imagegate_http::base_url::normalise(url, "OpenAI", "")
            .map_err(|e| e.with_provider(PROVIDER))?;
        Ok(self)
    }

    /// Uses `client` for every request. Build it with `.retry(reqwest::retry::never())` and
    /// `.redirect(reqwest::redirect::Policy::none())`.
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

    /// The largest answer accepted, in bytes.
    #[must_use]
    pub fn with_max_response_bytes(mut self, bytes: u64) -> Self {
        self.http = self.http.with_max_response_bytes(bytes);
        self
    }

    /// Sends `OpenAI-Organization: org` (keys that belong to several organizations).
    #[must_use]
    pub fn with_organization(mut self, org: impl Into<String>) -> Self {
        self.organization = Some(org.into());
        self
    }

    /// Sends `OpenAI-Project: project` (the OpenAI project whose limits and billing apply).
    #[must_use]
    pub fn with_openai_project(mut self, project: impl Into<String>) -> Self {
        self.openai_project = Some(project.into());
        self
    }

    /// Names the account this key spends (the quota pool the router keeps for it).
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

    /// Sets the clock whose `now` classifies errors and stamps attempts.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The normalised base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// One billable exchange with the API; the only place the key is read.
    async fn send(&self, endpoint: &str, body: Body) -> Result<Answer, Error> {
        if self.key.is_empty() {
            return Err(self.tag(Error::config(format!(
                "the OpenAI API key ({API_KEY_VAR}) is empty"
            ))));
        }
        let auth =
            sensitive_header(&format!("Bearer {}", self.key.expose())).map_err(|e| self.tag(e))?;
        let url = format!("{}/{endpoint}", self.base_url);
        let mut builder = self
            .http
            .request(Method::POST, &url)
            .map_err(|e| self.tag(e))?
            .header(AUTHORIZATION, auth);
        for (name, value) in [
            ("OpenAI-Organization", &self.organization),
            ("OpenAI-Project", &self.openai_project),
        ] {
            if let Some(value) = value {
                let value = HeaderValue::from_str(value).map_err(|_| {
                    self.tag(Error::config(format!(
                        "the {name} header holds characters not allowed in a header"
                    )))
                })?;
                builder = builder.header(name, value);
            }
        }
        builder = match body {
            Body::Json(json) => builder.json(&json),
            Body::Form(form) => builder.multipart(form),
        };
        let host = imagegate_http::base_url::host_of(&self.base_url)
            .unwrap_or_else(|| "OpenAI".to_owned());
        let answer = self
            .http
            .send(builder, &host)
            .await
            .map_err(|e| self.tag(e))?;
        tracing::debug!(
            provider = PROVIDER,
            endpoint,
            status = answer.status.as_u16(),
            "openai answered"
        );
        Ok(answer)
    }

    /// Downloads one image a server gave as a link. No key goes with it: the link is often on
    /// another origin (a CDN), and it is signed by itself.
    async fn download(&self, position: usize, link: &str) -> Result<Image, Error> {
        let url = reqwest::Url::parse(link)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                self.tag(
                    Error::new(
                        ErrorKind::InvalidResponse,
                        format!(
                            "image {} was given as a link that is not an http(s) URL",
                            position + 1
                        ),
                    )
                    .with_http_status(200),
                )
            })?;
        let host = url.host_str().unwrap_or("the image host").to_owned();
        let builder = self
            .http
            .request(Method::GET, url.as_str())
            .map_err(|e| self.tag(e))?;
        let answer = self.http.send(builder, &host).await.map_err(|e| {
            let message = format!(
                "downloading image {} from {host}: {}",
                position + 1,
                e.message()
            );
            self.tag(Error::new(e.kind(), message))
        })?;
        if !answer.status.is_success() {
            let kind = if answer.status.is_server_error() {
                ErrorKind::Unavailable
            } else {
                ErrorKind::InvalidResponse
            };
            return Err(self.tag(
                Error::new(
                    kind,
                    format!(
                        "the link to image {} on {host} answered {} (links expire after an hour)",
                        position + 1,
                        answer.status
                    ),
                )
                .with_http_status(answer.status.as_u16()),
            ));
        }
        let declared = answer
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("image/png")
            .to_owned();
        Image::checked(answer.body, &declared).map_err(|e| self.tag(e.with_http_status(200)))
    }

    /// Adds the provider and project to an error.
    fn tag(&self, error: Error) -> Error {
        let error = error.with_provider(PROVIDER);
        match (&self.project, error.project()) {
            (Some(project), None) => error.with_project(project.clone()),
            _ => error,
        }
    }

    fn refuse(&self, message: String) -> Error {
        self.tag(Error::new(ErrorKind::InvalidRequest, message))
    }
}

/// A request body: JSON for generations, a multipart form for edits.
enum Body {
    Json(serde_json::Value),
    Form(Form),
}

#[async_trait]
impl ImageProvider for OpenAiProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }

    fn default_model(&self) -> &str {
        &self.model
    }

    fn capabilities(&self, model: Option<&str>) -> imagegate_core::Capabilities {
        capabilities(model.unwrap_or(&self.model))
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, Error> {
        request.validate().map_err(|e| self.tag(e))?;
        let model = request.model.as_deref().unwrap_or(&self.model);
        let caps = capabilities(model);
        if request.count > caps.max_images_per_call {
            return Err(self.refuse(format!(
                "{model} returns at most {} image(s) per call; {} were asked for",
                caps.max_images_per_call, request.count
            )));
        }
        caps.check(request)
            .map_err(|why| self.refuse(format!("{model} {why}")))?;
        if ModelFamily::of(model) == ModelFamily::DallE2 && request.reference_images.len() > 1 {
            return Err(self.refuse(format!(
                "{model} edits one image; {} reference images were given",
                request.reference_images.len()
            )));
        }
        let (endpoint, body) = if request.reference_images.is_empty() {
            (
                "images/generations",
                Body::Json(build_request(request, model)),
            )
        } else {
            let described = build_edit_form(request, model);
            let mut form = Form::new();
            for (name, value) in described.fields {
                form = form.text(name, value);
            }
            for image in described.images {
                let part = Part::bytes(image.bytes.to_vec())
                    .file_name(image.file_name)
                    .mime_str(&image.mime_type)
                    .map_err(|_| {
                        self.refuse(format!(
                            "a reference image's type `{}` is not a MIME type",
                            image.mime_type
                        ))
                    })?;
                form = form.part(image.field, part);
            }
            ("images/edits", Body::Form(form))
        };
        let started = self.clock.now();
        let answer = self.send(endpoint, body).await?;
        let now = self.clock.now();
        if !answer.status.is_success() {
            return Err(self.tag(parse_error(
                answer.status,
                &answer.headers,
                &answer.body,
                now,
            )));
        }
        let reading = read(
            answer.status,
            &answer.headers,
            &answer.body,
            model,
            Some(now),
        )
        .map_err(|e| self.tag(e))?;
        let mut response = reading.response;
        for (position, link) in reading.links {
            let image = self.download(position, &link).await?;
            let at = position.min(response.images.len());
            response.images.insert(at, image);
        }
        response.rate_limits = crate::ratelimit::rate_limits(&answer.headers, now);
        response.record_call(
            PROVIDER,
            model,
            self.project.clone(),
            started,
            self.clock.now(),
        );
        Ok(response)
    }
}

impl fmt::Debug for OpenAiProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiProvider")
            .field("key", &self.key)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("organization", &self.organization)
            .field("openai_project", &self.openai_project)
            .field("project", &self.project)
            .field("http", &self.http)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_vars_reads_what_the_sdk_reads() {
        let err = OpenAiProvider::from_vars(|_| None).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
        assert!(err.message().contains(API_KEY_VAR), "{err}");
        let err = OpenAiProvider::from_vars(|n| match n {
            API_KEY_VAR => Some("test-key-value".to_owned()),
            BASE_URL_VAR => Some("not a url".to_owned()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.message().contains(BASE_URL_VAR), "{err}");
        let ok = OpenAiProvider::from_vars(|n| match n {
            API_KEY_VAR => Some("test-key-value".to_owned()),
            BASE_URL_VAR => Some("http://localhost:8080/v1/".to_owned()),
            ORGANIZATION_VAR => Some("org-test".to_owned()),
            _ => None,
        })
        .unwrap();
        assert_eq!(ok.base_url(), "http://localhost:8080/v1");
        assert_eq!(ok.organization.as_deref(), Some("org-test"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let provider = OpenAiProvider::new(ApiKey::new("test-secret-value-123"))
            .with_project("acct".to_owned());
        let text = format!("{provider:?}");
        assert!(!text.contains("test-secret-value-123"), "{text}");
        assert!(text.contains("***") && text.contains("acct"), "{text}");
    }
}

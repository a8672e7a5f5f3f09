//! [`VertexProvider`]: one location of one Google Cloud project, the builder, and the one
//! request per call.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::header::AUTHORIZATION;
use http::{HeaderValue, Method, StatusCode};
use imagegate_core::{
    Capabilities, Error, ErrorKind, GenerateRequest, GenerateResponse, ImageProvider, clock::Clock,
    clock::SystemClock,
};
use imagegate_gemini_wire::{build_request, capabilities_for, check_model, endpoint_for};
use imagegate_http::{HttpShell, sensitive_header};

use crate::classify::{PROVIDER, parse_error, parse_response};
use crate::credentials::{CREDENTIALS_HELP, Credentials};
use crate::endpoint::{DEFAULT_LOCATION, check, model_path, origin_for, split_project};
use crate::token::TokenSource;

/// The model used when neither the request nor the builder names one.
pub const DEFAULT_MODEL: &str = imagegate_gemini_wire::DEFAULT_MODEL;

/// The variable naming the project (as Google's SDKs read it).
pub const PROJECT_VAR: &str = "GOOGLE_CLOUD_PROJECT";

/// The variable naming the location (as the google-genai SDK reads it).
pub const LOCATION_VAR: &str = "GOOGLE_CLOUD_LOCATION";

/// The variable pointing every location at another origin (a relay, a stand-in).
pub const BASE_URL_VAR: &str = "VERTEX_BASE_URL";

/// How long one request may take by default (the shared shell's).
pub const DEFAULT_TIMEOUT: Duration = imagegate_http::DEFAULT_TIMEOUT;

/// Gemini image models and Imagen on Vertex AI, in one project and one location.
///
/// Build one per location to let a route fall back from `us-central1` to `europe-west4` to
/// `global`: each is its own target and its own quota pool (`project()` is
/// `PROJECT/LOCATION`). One [`generate`](ImageProvider::generate) call sends exactly one
/// request to Vertex (plus, when the cached access token is missing or about to expire, one to
/// the token endpoint) and never retries.
pub struct VertexProvider {
    tokens: Arc<TokenSource>,
    project: String,
    location: String,
    /// `PROJECT/LOCATION`: each location is its own pool.
    pool: String,
    base_url: Option<String>,
    http: HttpShell,
    model: String,
    clock: Arc<dyn Clock>,
}

impl VertexProvider {
    /// A provider for `project` at `location` with tokens from `credentials`.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] when the project or location cannot be a Vertex AI id.
    pub fn new(credentials: Credentials, project: &str, location: &str) -> Result<Self, Error> {
        check("project", project)?;
        check("location", location)?;
        Ok(VertexProvider {
            tokens: Arc::new(TokenSource::new(credentials)),
            project: project.to_owned(),
            location: location.to_owned(),
            pool: format!("{project}/{location}"),
            base_url: None,
            http: HttpShell::new(),
            model: DEFAULT_MODEL.to_owned(),
            clock: Arc::new(SystemClock),
        })
    }

    /// A provider from the environment: Application Default Credentials, the project from
    /// `project` (`PROJECT` or `PROJECT/LOCATION`), else `GOOGLE_CLOUD_PROJECT`, else the
    /// credentials' own; the location from `project`, else `GOOGLE_CLOUD_LOCATION`, else
    /// `us-central1`; `VERTEX_BASE_URL` when set. Variables are read through `lookup`.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] naming what is missing or wrong.
    pub fn from_vars(
        project: Option<&str>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let credentials = Credentials::application_default(&lookup)?;
        let set = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let configured = match project.map(str::trim).filter(|p| !p.is_empty()) {
            Some(text) => Some(split_project(text)?),
            None => None,
        };
        let (project, location) = match configured {
            Some((project, location)) => (project, location),
            None => {
                match set(PROJECT_VAR).or_else(|| credentials.project_id().map(str::to_owned)) {
                    Some(project) => (project, None),
                    None => {
                        return Err(Error::config(format!(
                        "Vertex AI needs a project: set `project` (PROJECT or PROJECT/LOCATION) or \
                         {PROJECT_VAR}"
                    ))
                    .with_provider(PROVIDER));
                    }
                }
            }
        };
        let location = location
            .or_else(|| set(LOCATION_VAR))
            .unwrap_or_else(|| DEFAULT_LOCATION.to_owned());
        let provider = VertexProvider::new(credentials, &project, &location)?;
        match set(BASE_URL_VAR) {
            Some(url) => provider.with_base_url(&url).map_err(|e| {
                Error::config(format!("{BASE_URL_VAR}: {}", e.message())).with_provider(PROVIDER)
            }),
            None => Ok(provider),
        }
    }

    /// Sends every request to `url` (scheme, host, optional prefix) instead of the location's
    /// public origin; the `/v1/projects/...` path follows.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] for a URL that is not http(s), or carries credentials, a
    /// query or a fragment.
    pub fn with_base_url(mut self, url: &str) -> Result<Self, Error> {
        self.base_url = Some(
            imagegate_http::base_url::normalise(url, "Vertex AI", "/v1")
                .map_err(|e| e.with_provider(PROVIDER))?,
        );
        Ok(self)
    }

    /// Exchanges credentials at `url` instead of the endpoint they name (tests, proxies).
    ///
    /// # Errors
    /// As [`with_base_url`](Self::with_base_url).
    pub fn with_token_endpoint(mut self, url: &str) -> Result<Self, Error> {
        let credentials = self.tokens.credentials().clone();
        self.tokens = Arc::new(
            TokenSource::new(credentials)
                .with_endpoint(url)?
                .with_http(self.http.clone()),
        );
        Ok(self)
    }

    /// Shares `tokens` (one cache for every location of the same credentials).
    #[must_use]
    pub fn with_token_source(mut self, tokens: Arc<TokenSource>) -> Self {
        self.tokens = tokens;
        self
    }

    /// Uses `client` for every request to Vertex. Build it with
    /// `.retry(reqwest::retry::never())` and `.redirect(reqwest::redirect::Policy::none())`.
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

    /// Sets the model used when a request names none (default [`DEFAULT_MODEL`]).
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// Sets the clock whose `now` stamps attempts, ages tokens and classifies errors.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The location requests go to.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The URL of `model`'s method.
    pub fn url_for(&self, model: &str) -> String {
        let origin = self
            .base_url
            .clone()
            .unwrap_or_else(|| origin_for(&self.location));
        format!(
            "{origin}{}",
            model_path(&self.project, &self.location, model, endpoint_for(model))
        )
    }

    fn tag(&self, error: Error) -> Error {
        let error = error.with_provider(PROVIDER);
        match error.project() {
            None => error.with_project(self.pool.clone()),
            Some(_) => error,
        }
    }

    fn refuse(&self, message: String) -> Error {
        self.tag(Error::new(ErrorKind::InvalidRequest, message))
    }
}

#[async_trait]
impl ImageProvider for VertexProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    /// `PROJECT/LOCATION`, the pool this provider's calls draw on.
    fn project(&self) -> Option<&str> {
        Some(&self.pool)
    }

    fn default_model(&self) -> &str {
        &self.model
    }

    fn capabilities(&self, model: Option<&str>) -> Capabilities {
        capabilities_for(model.unwrap_or(&self.model))
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse, Error> {
        request.validate().map_err(|e| self.tag(e))?;
        let model = check_model(request.model.as_deref().unwrap_or(&self.model))
            .map_err(|e| self.tag(e))?
            .to_owned();
        let caps = capabilities_for(&model);
        if request.count > caps.max_images_per_call {
            return Err(self.refuse(format!(
                "{model} returns at most {} image(s) per call; {} were asked for",
                caps.max_images_per_call, request.count
            )));
        }
        caps.check(request)
            .map_err(|why| self.refuse(format!("{model} {why}")))?;
        let body = build_request(request, &model);
        let started = self.clock.now();
        let token = self.tokens.token(started).await.map_err(|e| self.tag(e))?;
        let auth =
            sensitive_header(&format!("Bearer {}", token.expose())).map_err(|e| self.tag(e))?;
        let url = self.url_for(&model);
        let mut builder = self
            .http
            .request(Method::POST, &url)
            .map_err(|e| self.tag(e))?
            .header(AUTHORIZATION, auth)
            .json(&body);
        if let Credentials::AuthorizedUser(user) = self.tokens.credentials()
            && let Some(quota_project) = &user.quota_project_id
            && let Ok(value) = HeaderValue::from_str(quota_project)
        {
            // User credentials bill the quota project only when it is named.
            builder = builder.header("x-goog-user-project", value);
        }
        let host =
            imagegate_http::base_url::host_of(&url).unwrap_or_else(|| "Vertex AI".to_owned());
        let answer = self
            .http
            .send(builder, &host)
            .await
            .map_err(|e| self.tag(e))?;
        let now = self.clock.now();
        tracing::debug!(
            provider = PROVIDER,
            location = %self.location,
            status = answer.status.as_u16(),
            "vertex answered"
        );
        if answer.status == StatusCode::UNAUTHORIZED {
            // An expired or revoked token: the next call gets a new one.
            self.tokens.invalidate().await;
            return Err(self.tag(parse_error(
                answer.status,
                &answer.headers,
                &answer.body,
                now,
            )));
        }
        let mut response =
            parse_response(answer.status, &answer.headers, &answer.body, &model, now)
                .map_err(|e| self.tag(e))?;
        response.record_call(PROVIDER, &model, Some(self.pool.clone()), started, now);
        Ok(response)
    }
}

impl fmt::Debug for VertexProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VertexProvider")
            .field("tokens", &self.tokens)
            .field("project", &self.project)
            .field("location", &self.location)
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// Where to get credentials (for the descriptor).
pub(crate) const KEY_HELP: &str = CREDENTIALS_HELP;

//! OAuth2 access tokens for Vertex AI: obtained from the credentials, cached, and refreshed
//! five minutes before they expire. A token is an [`ApiKey`]: `Debug` prints `***`, and it is
//! never logged.
//!
//! The service-account flow is the JWT-bearer grant (RFC 7523; Google's "Using OAuth 2.0 for
//! Server to Server Applications"): an RS256-signed assertion `{iss, scope, aud, iat, exp}`
//! posted to the token endpoint as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`.
//! The user flow posts the refresh token (`grant_type=refresh_token`). Both answer
//! `{"access_token", "expires_in", "token_type"}`.

use std::fmt;
use std::time::Duration;

use http::{HeaderMap, Method, StatusCode};
use imagegate_core::{Error, ErrorKind, hints, secret::ApiKey};
use imagegate_http::HttpShell;
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::classify::PROVIDER;
use crate::credentials::{Credentials, ServiceAccount};

/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// How long before its expiry a cached token is replaced, so that no request carries a token
/// that expires on the way.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How long a signed assertion asks its token to live (Google's maximum).
const ASSERTION_LIFETIME: i64 = 3_600;

/// A token and the instant it stops working.
#[derive(Clone)]
struct Cached {
    token: ApiKey,
    expires_at: Option<Timestamp>,
}

/// Gets, caches and refreshes access tokens for one set of credentials. Concurrent callers
/// share one refresh.
pub struct TokenSource {
    credentials: Credentials,
    endpoint: Option<String>,
    http: HttpShell,
    cache: Mutex<Option<Cached>>,
}

impl TokenSource {
    /// Tokens from `credentials`, from the token endpoint the credentials name.
    pub fn new(credentials: Credentials) -> TokenSource {
        TokenSource {
            credentials,
            endpoint: None,
            http: HttpShell::new(),
            cache: Mutex::new(None),
        }
    }

    /// Exchanges credentials at `url` instead of the endpoint they name (a proxy, a test).
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`] for a URL that is not http(s) or carries credentials, a
    /// query or a fragment.
    pub fn with_endpoint(mut self, url: &str) -> Result<TokenSource, Error> {
        self.endpoint = Some(
            imagegate_http::base_url::normalise(url, "OAuth2 token", "")
                .map_err(|e| e.with_provider(PROVIDER))?,
        );
        Ok(self)
    }

    /// Sends the exchanges through `http` (its timeout and bounds).
    #[must_use]
    pub fn with_http(mut self, http: HttpShell) -> TokenSource {
        self.http = http;
        self
    }

    /// The credentials tokens come from.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// A token valid for at least [`REFRESH_MARGIN`] after `now`: the cached one, else a new
    /// one from the token endpoint.
    ///
    /// # Errors
    /// [`ErrorKind::Unauthorized`] when the endpoint refuses the credentials
    /// (`invalid_grant`: a deleted key, a revoked refresh token); transport errors as kinds;
    /// [`ErrorKind::ConfigInvalid`] for a private key that is not an RSA PEM key.
    pub async fn token(&self, now: Timestamp) -> Result<ApiKey, Error> {
        let mut cache = self.cache.lock().await;
        if let Some(cached) = cache.as_ref()
            && cached
                .expires_at
                .is_none_or(|at| hints::until(now, at) > REFRESH_MARGIN)
        {
            return Ok(cached.token.clone());
        }
        let fresh = self.fetch(now).await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// Forgets the cached token (the upstream refused it), so the next call gets a new one.
    pub async fn invalidate(&self) {
        if !matches!(self.credentials, Credentials::AccessToken(_)) {
            *self.cache.lock().await = None;
        }
    }

    async fn fetch(&self, now: Timestamp) -> Result<Cached, Error> {
        let (uri, form): (&str, Vec<(&str, String)>) = match &self.credentials {
            Credentials::AccessToken(token) => {
                return Ok(Cached {
                    token: token.clone(),
                    expires_at: None,
                });
            }
            Credentials::ServiceAccount(sa) => {
                let uri = self.endpoint.as_deref().unwrap_or(&sa.token_uri);
                let assertion = jwt_assertion(sa, uri, now)?;
                (
                    uri,
                    vec![
                        (
                            "grant_type",
                            "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
                        ),
                        ("assertion", assertion),
                    ],
                )
            }
            Credentials::AuthorizedUser(user) => (
                self.endpoint.as_deref().unwrap_or(&user.token_uri),
                vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("client_id", user.client_id.clone()),
                    ("client_secret", user.client_secret.expose().to_owned()),
                    ("refresh_token", user.refresh_token.expose().to_owned()),
                ],
            ),
        };
        let host = imagegate_http::base_url::host_of(uri)
            .unwrap_or_else(|| "the token endpoint".to_owned());
        let request = self
            .http
            .request(Method::POST, uri)
            .map_err(|e| e.with_provider(PROVIDER))?
            .form(&form);
        let answer = self.http.send(request, &host).await.map_err(|e| {
            let message = format!("getting an access token from {host}: {}", e.message());
            Error::new(e.kind(), message).with_provider(PROVIDER)
        })?;
        let (token, expires_at) =
            parse_token_answer(answer.status, &answer.headers, &answer.body, now)?;
        tracing::debug!(provider = PROVIDER, host, expires_at = ?expires_at, "got an access token");
        Ok(Cached {
            token,
            expires_at: Some(expires_at),
        })
    }
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("credentials", &self.credentials)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

/// The signed JWT a service account trades for an access token at `audience` (the token
/// endpoint), valid for an hour from `now`.
///
/// # Errors
/// [`ErrorKind::ConfigInvalid`] when the key is not an RSA private key in PEM form (the
/// message never repeats it).
pub fn jwt_assertion(sa: &ServiceAccount, audience: &str, now: Timestamp) -> Result<String, Error> {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(sa.private_key.expose().as_bytes()).map_err(
        |_| {
            Error::config(format!(
                "the private key of service account {} is not an RSA private key in PEM form",
                sa.client_email
            ))
            .with_provider(PROVIDER)
        },
    )?;
    let iat = now.as_second();
    let claims = Claims {
        iss: &sa.client_email,
        scope: CLOUD_PLATFORM_SCOPE,
        aud: audience,
        iat,
        exp: iat + ASSERTION_LIFETIME,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .map_err(|e| {
        Error::config(format!(
            "cannot sign the token request for {}: {e}",
            sa.client_email
        ))
        .with_provider(PROVIDER)
    })
}

/// Reads a token endpoint's answer: the token and when it expires (`now + expires_in`).
///
/// # Errors
/// - 400/401 (`invalid_grant`, `invalid_client`, ...): [`ErrorKind::Unauthorized`] with the
///   endpoint's `error` and `error_description`;
/// - 429: [`ErrorKind::RateLimited`]; 5xx: [`ErrorKind::Unavailable`];
/// - a 200 without `access_token`: [`ErrorKind::InvalidResponse`].
pub fn parse_token_answer(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: Timestamp,
) -> Result<(ApiKey, Timestamp), Error> {
    let value: Option<Value> = serde_json::from_slice(body).ok();
    let text = |name: &str| {
        value
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if !status.is_success() {
        let what = match (text("error"), text("error_description")) {
            (Some(code), Some(description)) => format!("{code}: {description}"),
            (Some(code), None) => code,
            _ => format!("HTTP {}", status.as_u16()),
        };
        let kind = match status.as_u16() {
            400 | 401 | 403 => ErrorKind::Unauthorized,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Unavailable,
            _ => ErrorKind::Unexpected,
        };
        let mut error = Error::new(
            kind,
            format!("the OAuth2 token endpoint refused the credentials ({what})"),
        )
        .with_provider(PROVIDER)
        .with_http_status(status.as_u16());
        if let Some(code) = text("error") {
            error = error.with_upstream_code(code);
        }
        if let Some(wait) = hints::retry_after_headers(headers, now) {
            error = error.with_retry_after(wait);
        }
        return Err(error);
    }
    let invalid = |why: &str| {
        Error::new(
            ErrorKind::InvalidResponse,
            format!("the OAuth2 token endpoint's answer {why}"),
        )
        .with_provider(PROVIDER)
        .with_http_status(status.as_u16())
    };
    let token = text("access_token")
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| invalid("holds no access_token"))?;
    let lifetime = value
        .as_ref()
        .and_then(|v| v.get("expires_in"))
        .and_then(Value::as_i64)
        .filter(|s| *s > 0)
        .ok_or_else(|| invalid("holds no positive expires_in"))?;
    let expires_at = now
        .checked_add(SignedDuration::from_secs(lifetime))
        .map_err(|_| invalid("has an expires_in too large to add"))?;
    Ok((ApiKey::new(token), expires_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-01-15T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn token_answers_and_refusals() {
        let ok = br#"{"access_token": "test-access-token-1", "expires_in": 3599, "token_type": "Bearer"}"#;
        let (token, at) = parse_token_answer(StatusCode::OK, &HeaderMap::new(), ok, now()).unwrap();
        assert_eq!(token.expose(), "test-access-token-1");
        assert_eq!(at, "2026-01-15T12:59:59Z".parse().unwrap());
        let refused =
            br#"{"error": "invalid_grant", "error_description": "Invalid JWT Signature."}"#;
        let err = parse_token_answer(StatusCode::BAD_REQUEST, &HeaderMap::new(), refused, now())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        assert!(err.message().contains("Invalid JWT Signature"), "{err}");
        assert_eq!(err.upstream_code(), Some("invalid_grant"));
        let busy = parse_token_answer(
            StatusCode::SERVICE_UNAVAILABLE,
            &HeaderMap::new(),
            b"",
            now(),
        )
        .unwrap_err();
        assert_eq!(busy.kind(), ErrorKind::Unavailable);
        for body in [&b"{}"[..], b"{\"access_token\": \"x\"}", b"<html>"] {
            let err =
                parse_token_answer(StatusCode::OK, &HeaderMap::new(), body, now()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidResponse);
        }
    }

    #[test]
    fn a_key_that_is_not_pem_is_a_config_error_that_does_not_repeat_it() {
        let sa = ServiceAccount {
            client_email: "a@p.iam.gserviceaccount.com".to_owned(),
            private_key: ApiKey::new("definitely-not-pem-material"),
            token_uri: "https://oauth2.googleapis.com/token".to_owned(),
            project_id: None,
        };
        let err = jwt_assertion(&sa, &sa.token_uri, now()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
        assert!(!err.to_string().contains("definitely-not-pem-material"));
    }
}

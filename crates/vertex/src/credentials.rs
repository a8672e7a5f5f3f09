//! Google credentials: a service-account key file, the `authorized_user` file that
//! `gcloud auth application-default login` writes, or a ready access token. Read tolerantly;
//! errors name the file and the field, never a secret's value.

use std::fmt;
use std::path::{Path, PathBuf};

use imagegate_core::{Error, secret::ApiKey};
use serde_json::Value;

use crate::classify::PROVIDER;

/// Google's OAuth2 token endpoint, used when a credentials file names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The variable naming a credentials file (Application Default Credentials' first step).
pub const CREDENTIALS_VAR: &str = "GOOGLE_APPLICATION_CREDENTIALS";

/// Where to get credentials, for messages about missing ones.
pub(crate) const CREDENTIALS_HELP: &str = "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run `gcloud auth application-default login`";

/// A service account's key (the JSON file the Cloud console downloads).
#[derive(Clone)]
pub struct ServiceAccount {
    /// The account, the JWT's issuer.
    pub client_email: String,
    pub(crate) private_key: ApiKey,
    /// Where the signed assertion is exchanged for an access token.
    pub token_uri: String,
    /// The project the key belongs to.
    pub project_id: Option<String>,
}

/// A user's refresh token (`gcloud auth application-default login`).
#[derive(Clone)]
pub struct AuthorizedUser {
    /// The OAuth client.
    pub client_id: String,
    pub(crate) client_secret: ApiKey,
    pub(crate) refresh_token: ApiKey,
    /// Where the refresh token is exchanged for an access token.
    pub token_uri: String,
    /// The project billed for the calls (`x-goog-user-project`).
    pub quota_project_id: Option<String>,
}

/// What an access token is obtained from.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// A service-account key: the JWT-bearer grant (RFC 7523).
    ServiceAccount(ServiceAccount),
    /// A user's refresh token: the refresh-token grant.
    AuthorizedUser(AuthorizedUser),
    /// A ready access token (`gcloud auth print-access-token`, a workload's own): used as is,
    /// never refreshed.
    AccessToken(ApiKey),
}

impl Credentials {
    /// Reads a credentials file's JSON. `origin` names it in messages.
    ///
    /// # Errors
    /// [`imagegate_core::ErrorKind::ConfigInvalid`] naming `origin` and the missing or wrong
    /// field (never a value).
    pub fn from_json(bytes: &[u8], origin: &str) -> Result<Credentials, Error> {
        let bad = |why: String| {
            Error::config(format!("the Google credentials {origin}: {why}")).with_provider(PROVIDER)
        };
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            bad(format!(
                "not JSON (line {}, column {})",
                e.line(),
                e.column()
            ))
        })?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let required = |name: &str| field(name).ok_or_else(|| bad(format!("no `{name}`")));
        let token_uri = field("token_uri").unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        match field("type").as_deref() {
            Some("service_account") => Ok(Credentials::ServiceAccount(ServiceAccount {
                client_email: required("client_email")?,
                private_key: ApiKey::new(required("private_key")?),
                token_uri,
                project_id: field("project_id"),
            })),
            Some("authorized_user") => Ok(Credentials::AuthorizedUser(AuthorizedUser {
                client_id: required("client_id")?,
                client_secret: ApiKey::new(required("client_secret")?),
                refresh_token: ApiKey::new(required("refresh_token")?),
                token_uri,
                quota_project_id: field("quota_project_id"),
            })),
            Some(other) => Err(bad(format!(
                "type `{other}` is not supported (service_account or authorized_user; for \
                 workload identity federation pass an access token)"
            ))),
            None => Err(bad(
                "no `type` (expected service_account or authorized_user)".to_owned(),
            )),
        }
    }

    /// Reads a credentials file.
    ///
    /// # Errors
    /// As [`from_json`](Self::from_json), and when the file cannot be read.
    pub fn from_file(path: &Path) -> Result<Credentials, Error> {
        let origin = format!("file {}", path.display());
        let bytes = std::fs::read(path).map_err(|e| {
            Error::config(format!("cannot read the Google credentials {origin}: {e}"))
                .with_provider(PROVIDER)
        })?;
        Credentials::from_json(&bytes, &origin)
    }

    /// Application Default Credentials, as Google's client libraries find them: the file named
    /// by `GOOGLE_APPLICATION_CREDENTIALS`, else the one `gcloud auth application-default
    /// login` wrote (`$HOME/.config/gcloud/application_default_credentials.json`, or under
    /// `%APPDATA%\gcloud` on Windows). Variables are read through `lookup`.
    ///
    /// # Errors
    /// [`imagegate_core::ErrorKind::ConfigInvalid`] saying how to provide credentials when
    /// there are none, or what is wrong with the file found.
    pub fn application_default(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Credentials, Error> {
        if let Some(path) = lookup(CREDENTIALS_VAR).filter(|v| !v.trim().is_empty()) {
            return Credentials::from_file(Path::new(path.trim()));
        }
        let gcloud_file = lookup("APPDATA")
            .map(|dir| PathBuf::from(dir).join("gcloud"))
            .or_else(|| lookup("HOME").map(|home| PathBuf::from(home).join(".config/gcloud")))
            .map(|dir| dir.join("application_default_credentials.json"));
        match gcloud_file {
            Some(path) if path.is_file() => Credentials::from_file(&path),
            _ => Err(Error::config(format!(
                "Vertex AI needs Google credentials: {CREDENTIALS_HELP}"
            ))
            .with_provider(PROVIDER)),
        }
    }

    /// The project the credentials name (a service account's `project_id`, a user's
    /// `quota_project_id`).
    pub fn project_id(&self) -> Option<&str> {
        match self {
            Credentials::ServiceAccount(sa) => sa.project_id.as_deref(),
            Credentials::AuthorizedUser(user) => user.quota_project_id.as_deref(),
            Credentials::AccessToken(_) => None,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::ServiceAccount(sa) => f
                .debug_struct("ServiceAccount")
                .field("client_email", &sa.client_email)
                .field("private_key", &sa.private_key)
                .field("token_uri", &sa.token_uri)
                .field("project_id", &sa.project_id)
                .finish(),
            Credentials::AuthorizedUser(user) => f
                .debug_struct("AuthorizedUser")
                .field("client_id", &user.client_id)
                .field("client_secret", &user.client_secret)
                .field("refresh_token", &user.refresh_token)
                .field("token_uri", &user.token_uri)
                .finish(),
            Credentials::AccessToken(token) => f.debug_tuple("AccessToken").field(token).finish(),
        }
    }
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Credentials::ServiceAccount(self.clone()), f)
    }
}

impl fmt::Debug for AuthorizedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&Credentials::AuthorizedUser(self.clone()), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegate_core::ErrorKind;

    #[test]
    fn both_file_types_and_what_is_wrong_with_others() {
        let sa = br#"{"type": "service_account", "project_id": "p1", "client_email": "a@p1.iam.gserviceaccount.com", "private_key": "not-really-a-key-value"}"#;
        let c = Credentials::from_json(sa, "test").unwrap();
        assert_eq!(c.project_id(), Some("p1"));
        let Credentials::ServiceAccount(inner) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(inner.token_uri, DEFAULT_TOKEN_URI);
        assert!(!format!("{c:?}").contains("not-really-a-key-value"));
        let user = br#"{"type": "authorized_user", "client_id": "id", "client_secret": "cs-value-1", "refresh_token": "rt-value-2", "quota_project_id": "qp"}"#;
        let c = Credentials::from_json(user, "test").unwrap();
        assert_eq!(c.project_id(), Some("qp"));
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("cs-value-1") && !shown.contains("rt-value-2"),
            "{shown}"
        );
        for (bad, names) in [
            (&b"{"[..], "not JSON"),
            (b"{\"type\": \"external_account\"}", "external_account"),
            (
                b"{\"type\": \"service_account\", \"client_email\": \"x\"}",
                "private_key",
            ),
            (b"{}", "type"),
        ] {
            let err = Credentials::from_json(bad, "file k.json").unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
            assert!(
                err.message().contains(names) && err.message().contains("k.json"),
                "{err}"
            );
        }
    }

    #[test]
    fn application_default_names_what_to_do_when_there_is_nothing() {
        let err = Credentials::application_default(|_| None).unwrap_err();
        assert!(err.message().contains(CREDENTIALS_VAR), "{err}");
        let err = Credentials::application_default(|n| {
            (n == CREDENTIALS_VAR).then(|| "/nonexistent/key.json".to_owned())
        })
        .unwrap_err();
        assert!(err.message().contains("/nonexistent/key.json"), "{err}");
    }
}

//! The `[server]` section: where to listen, how long a request may wait, how much may queue,
//! which model names map to which routes, and the clients with their hashed keys.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use imagegate_core::Priority;
use serde::Deserialize;

/// The largest request body by default (32 MiB: a few reference images in base64).
pub const DEFAULT_MAX_BODY: u64 = 32 * 1024 * 1024;

/// The gateway's settings (`[server]` in the configuration file).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Where to listen (`--listen` wins); default 127.0.0.1:8080.
    pub listen: Option<String>,
    /// How long a request may wait for capacity when the client says nothing (30 s).
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// Requests the gateway holds at once (waiting or in flight); one more is a 429 at once.
    pub max_queue: usize,
    /// The largest request body in bytes; larger is a 413.
    pub max_body: u64,
    /// Upstream calls in flight across every route (the router's concurrency; 16).
    pub concurrency: usize,
    /// How long requests in flight may finish after SIGTERM/SIGINT before they get a 503.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// The route for a model name neither `models` nor a route's name knows.
    pub default_route: Option<String>,
    /// A client's model name -> the route that serves it.
    pub models: BTreeMap<String, String>,
    /// The clients and their keys; none means any key is accepted (loopback only).
    pub clients: Vec<ClientConfig>,
    /// How long `response_format: "url"` images stay fetchable (60 minutes, as OpenAI's URLs).
    #[serde(with = "humantime_serde")]
    pub files_ttl: Duration,
    /// The most bytes of such images kept on disk; the oldest go first.
    pub files_max_bytes: u64,
    /// The base of `url` answers (default: `http://` + the request's Host header).
    pub public_url: Option<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: None,
            max_wait: Duration::from_secs(30),
            max_queue: 1024,
            max_body: DEFAULT_MAX_BODY,
            concurrency: 16,
            shutdown_grace: Duration::from_secs(30),
            default_route: None,
            models: BTreeMap::new(),
            clients: Vec::new(),
            files_ttl: Duration::from_secs(3_600),
            files_max_bytes: 512 * 1024 * 1024,
            public_url: None,
        }
    }
}

/// One client (`[[server.clients]]`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Its name: what logs, metrics and budgets say instead of its key.
    pub name: String,
    /// The lowercase hex SHA-256 of its key (`imagegate keys new NAME` prints both).
    pub key_sha256: String,
    /// The routes it may use; none means every route.
    #[serde(default)]
    pub routes: Option<Vec<String>>,
    /// Its place in the router's queue: interactive before background.
    #[serde(default)]
    pub priority: Priority,
    /// What it may spend per UTC day, in US dollars.
    #[serde(default)]
    pub budget_usd_per_day: Option<f64>,
}

impl fmt::Debug for ClientConfig {
    // The hash is not the key, but there is no reason to print it either.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("name", &self.name)
            .field("routes", &self.routes)
            .field("priority", &self.priority)
            .field("budget_usd_per_day", &self.budget_usd_per_day)
            .finish_non_exhaustive()
    }
}

/// A `[server]` section that cannot work, naming the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl ServerConfig {
    /// Checks what serde cannot against the router's routes.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key: a mapping or client naming an unknown route, a key hash
    /// that is not 64 hex digits, two clients with one name, a zero queue or body limit.
    pub fn validate(&self, routes: &[String]) -> Result<(), ConfigError> {
        let known = |route: &str| routes.iter().any(|r| r == route);
        let list = routes.join(", ");
        for (model, route) in &self.models {
            if !known(route) {
                return Err(ConfigError(format!(
                    "server.models.\"{model}\" names the route `{route}`, which is not configured (known: {list})"
                )));
            }
        }
        if let Some(route) = &self.default_route
            && !known(route)
        {
            return Err(ConfigError(format!(
                "server.default_route names the route `{route}`, which is not configured (known: {list})"
            )));
        }
        if self.max_queue == 0 {
            return Err(ConfigError(
                "server.max_queue must be at least 1".to_owned(),
            ));
        }
        if self.concurrency == 0 {
            return Err(ConfigError(
                "server.concurrency must be at least 1".to_owned(),
            ));
        }
        if self.max_body == 0 {
            return Err(ConfigError(
                "server.max_body must be at least 1 byte".to_owned(),
            ));
        }
        for (i, client) in self.clients.iter().enumerate() {
            if client.name.trim().is_empty() {
                return Err(ConfigError(format!("server.clients[{i}].name is empty")));
            }
            if self.clients[..i].iter().any(|c| c.name == client.name) {
                return Err(ConfigError(format!(
                    "server.clients[{i}].name `{}` is used twice",
                    client.name
                )));
            }
            if client.key_sha256.len() != 64
                || !client.key_sha256.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(ConfigError(format!(
                    "server.clients[{i}].key_sha256 (client `{}`) must be 64 hex digits: the SHA-256 `imagegate keys new` prints",
                    client.name
                )));
            }
            for route in client.routes.iter().flatten() {
                if !known(route) {
                    return Err(ConfigError(format!(
                        "server.clients[{i}].routes (client `{}`) names the route `{route}`, which is not configured (known: {list})",
                        client.name
                    )));
                }
            }
            if let Some(budget) = client.budget_usd_per_day
                && !(budget.is_finite() && budget >= 0.0)
            {
                return Err(ConfigError(format!(
                    "server.clients[{i}].budget_usd_per_day (client `{}`) must be a number of dollars, 0 or more",
                    client.name
                )));
            }
        }
        Ok(())
    }

    /// The route serving a client's model name: the mapping, a route of that name, else the
    /// default route.
    pub(crate) fn route_for(&self, model: Option<&str>, routes: &[String]) -> Option<String> {
        if let Some(model) = model {
            let model = model.strip_prefix("models/").unwrap_or(model);
            if let Some(route) = self.models.get(model) {
                return Some(route.clone());
            }
            if routes.iter().any(|r| r == model) {
                return Some(model.to_owned());
            }
        }
        self.default_route.clone()
    }

    /// The model names clients may use: the mapped names, then the routes' names.
    pub(crate) fn model_names(&self, routes: &[String]) -> Vec<String> {
        let mut names: Vec<String> = self.models.keys().cloned().collect();
        for route in routes {
            if !names.contains(route) {
                names.push(route.clone());
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<String> {
        vec!["default".to_owned(), "fast".to_owned()]
    }

    #[test]
    fn a_model_maps_by_table_then_route_name_then_default() {
        let mut config = ServerConfig::default();
        config.models.insert("gpt-image-1".into(), "fast".into());
        let r = routes();
        assert_eq!(
            config.route_for(Some("gpt-image-1"), &r).as_deref(),
            Some("fast")
        );
        assert_eq!(
            config.route_for(Some("models/fast"), &r).as_deref(),
            Some("fast")
        );
        assert_eq!(config.route_for(Some("dall-e-3"), &r), None);
        config.default_route = Some("default".into());
        assert_eq!(
            config.route_for(Some("dall-e-3"), &r).as_deref(),
            Some("default")
        );
        assert_eq!(config.route_for(None, &r).as_deref(), Some("default"));
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = ServerConfig::default();
        config.models.insert("x".into(), "nowhere".into());
        let e = config.validate(&routes()).unwrap_err();
        assert!(e.0.contains("server.models.\"x\""), "{e}");
        let mut config = ServerConfig::default();
        config.clients.push(ClientConfig {
            name: "app".into(),
            key_sha256: "abc".into(),
            routes: None,
            priority: Priority::Interactive,
            budget_usd_per_day: None,
        });
        let e = config.validate(&routes()).unwrap_err();
        assert!(e.0.contains("server.clients[0].key_sha256"), "{e}");
        assert!(!format!("{:?}", config.clients[0]).contains("abc"));
    }
}

//! Where imagegate keeps what it learned between runs, and the quota pools of a provider.
//!
//! Quota state (use in the current windows, learned limits, blocks) lives in one JSON file that
//! every imagegate process shares through `FileQuotaStore`: `generate` counts what it sends and
//! learns from every error, `quota` shows it. Without it each run would start blind.
//!
//! `[state] store = "redis://HOST:PORT/DB"` shares it through Redis instead, across processes
//! on any number of machines (docs/scaling.md); the password comes from the environment
//! variable `password_env` names, never from the file.

use std::collections::BTreeSet;
use std::path::PathBuf;

use imagegate_core::quota::{FileQuotaStore, PoolConfig, PoolId};
use imagegate_redis::{OnStoreError, RedisQuotaStore, RedisStoreOptions};
use serde::Deserialize;

use crate::config::{Config, ProviderConfig};
use crate::failure::Failure;

/// The quota state's file name in the state directory.
pub(crate) const STATE_FILE: &str = "quota.json";

/// The project name pools use when the configuration does not name one.
pub(crate) const UNNAMED_PROJECT: &str = "default";

/// The state directory: `state_dir` in the configuration (or `IMAGEGATE_STATE_DIR`), else
/// `$XDG_STATE_HOME/imagegate`, else `~/.local/state/imagegate`.
pub(crate) fn state_dir(config: &Config) -> Option<PathBuf> {
    if let Some(dir) = &config.state_dir {
        return Some(dir.clone());
    }
    let from_env = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from_env("XDG_STATE_HOME")
        .map(|d| d.join("imagegate"))
        .or_else(|| from_env("HOME").map(|h| h.join(".local/state/imagegate")))
}

/// `[state]`: where quota state is shared.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateConfig {
    /// `file` (the default: `quota.json` in the state directory), or `redis://HOST:PORT/DB`
    /// (`rediss://` for TLS) to share the quota with every instance using that server.
    #[serde(default)]
    pub store: Option<String>,
    /// The environment variable holding the Redis password (a password in `store` is refused).
    #[serde(default)]
    pub password_env: Option<String>,
    /// Prefix of every Redis key (default `imagegate`): deployments sharing one Redis apart.
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// `fail` (default: refuse to send without the shared quota) or `local` (fall back to this
    /// process's own ledger while Redis is unreachable).
    #[serde(default)]
    pub on_store_error: Option<String>,
}

/// The per-minute window every store counts with: the upstream's 60 s plus a one-second guard.
/// A store stamps a use when it admits it; the upstream counts it when the request arrives, a
/// trip later. A slot that frees exactly 60 s after its admission is taken by a request that
/// may arrive before the upstream's own 60 s have passed for the earlier one (a faster trip),
/// and is refused: three gateways sharing Redis met 8 such 429s in 180 admissions, and one
/// gateway over the file store about 40 a minute at saturation (docs/performance.md, "Soak").
/// The guard covers any trip shorter than a second, at a cost of at most 1/61 of a minute's
/// quota (none at all when the window is not the bottleneck).
pub(crate) const ADMISSION_WINDOW: std::time::Duration = std::time::Duration::from_secs(61);

/// The Redis quota store `[state] store` names, or `None` for the file store.
///
/// # Errors
/// [`Failure::Usage`] for an address that is not a Redis URL or carries a password, a
/// password variable that is not set, or an unknown `on_store_error`.
pub(crate) fn open_redis(config: &Config) -> Result<Option<RedisQuotaStore>, Failure> {
    let Some(state) = &config.state else {
        return Ok(None);
    };
    let url = match state.store.as_deref().map(str::trim) {
        None | Some("file") => return Ok(None),
        Some(url) => url,
    };
    let usage = |m: String| Failure::usage(format!("[state] store: {m}"));
    let mut options = RedisStoreOptions::new(url).with_window(ADMISSION_WINDOW);
    if let Some(var) = &state.password_env {
        let password = std::env::var(var)
            .map_err(|_| usage(format!("password_env names `{var}`, which is not set")))?;
        options = options.with_password(password);
    }
    if let Some(prefix) = &state.key_prefix {
        options = options.with_key_prefix(prefix.clone());
    }
    if let Some(on) = &state.on_store_error {
        let on: OnStoreError = on
            .parse()
            .map_err(|e: imagegate_core::Error| usage(e.message().to_owned()))?;
        options = options.with_on_store_error(on);
    }
    RedisQuotaStore::new(options)
        .map(Some)
        .map_err(|e| usage(e.message().to_owned()))
}

/// Opens the shared quota state, or explains why it cannot.
///
/// # Errors
/// [`Failure::Usage`] naming the file when it is damaged or cannot be created.
pub(crate) fn open_store(config: &Config) -> Result<Option<FileQuotaStore>, Failure> {
    let Some(dir) = state_dir(config) else {
        tracing::warn!("no state directory (set HOME or state_dir): quota use is not remembered");
        return Ok(None);
    };
    let store = FileQuotaStore::open(dir.join(STATE_FILE))
        .map_err(|e| Failure::usage(format!("quota state: {}", e.message())))?
        .with_window(ADMISSION_WINDOW);
    // A state that can be read but not written would let every call through unrecorded:
    // the configured limits would hold for nothing. Found now, before anything is sent, and
    // refused like an unwritable state directory. The probe is a write that changes nothing
    // (clearing the blocks of a pool no configuration can name).
    let probe = PoolId::new("imagegate", "write-probe", "\u{0}none");
    store.clear_blocks(&probe).map_err(|e| {
        Failure::usage(format!(
            "quota state {} cannot be written ({}): the configured limits could not be kept. \
             Make the file and its directory writable, or set state_dir (or \
             IMAGEGATE_STATE_DIR) to a writable directory",
            store.path().display(),
            e.message()
        ))
    })?;
    Ok(Some(store))
}

/// The pool one provider's model draws on.
///
/// # Errors
/// [`Failure::Usage`] when the quota configuration does not resolve (an unknown zone).
pub(crate) fn pool_for(
    name: &str,
    config: &ProviderConfig,
    model: &str,
) -> Result<Option<PoolConfig>, Failure> {
    let Some(kind) = config.kind_for(name) else {
        return Ok(None);
    };
    let project = config.project.as_deref().unwrap_or(UNNAMED_PROJECT);
    config
        .quota_or_default()
        .pool_for(kind.descriptor(), project, model)
        .map(Some)
        .map_err(|e| Failure::usage(format!("provider `{name}`: {}", e.message())))
}

/// The pools one provider's configuration describes: its default model's, every model with
/// its own quota entry, and every shared pool.
///
/// # Errors
/// As [`pool_for`].
pub(crate) fn pools_of(name: &str, config: &ProviderConfig) -> Result<Vec<PoolConfig>, Failure> {
    let Some(kind) = config.kind_for(name) else {
        return Ok(Vec::new());
    };
    let quota = config.quota_or_default();
    let mut models = BTreeSet::new();
    models.insert(
        config
            .model
            .clone()
            .unwrap_or_else(|| kind.default_model().to_owned()),
    );
    models.extend(quota.models.keys().cloned());
    for shared in &quota.shared_pools {
        models.extend(shared.models.iter().cloned());
    }
    let mut pools = Vec::new();
    for model in &models {
        if let Some(pool) = pool_for(name, config, model)? {
            pools.push(pool);
        }
    }
    Ok(pools)
}

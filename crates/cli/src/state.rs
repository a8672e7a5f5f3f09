//! Where imagegate keeps what it learned between runs, and the quota pools of a provider.
//!
//! Quota state (use in the current windows, learned limits, blocks) lives in one JSON file that
//! every imagegate process shares through `FileQuotaStore`: `generate` counts what it sends and
//! learns from every error, `quota` shows it. Without it each run would start blind.

use std::collections::BTreeSet;
use std::path::PathBuf;

use imagegate_core::quota::{FileQuotaStore, PoolConfig, PoolId};

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
        .map_err(|e| Failure::usage(format!("quota state: {}", e.message())))?;
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

//! `imagegate quota`: every configured pool, its limits, use, what remains and when it resets.
//!
//! A pool is (provider kind, project, model or shared pool), so two configured providers on
//! the same project show one pool: the quota is the project's, not the key's.

use std::collections::{BTreeMap, BTreeSet};

use imagegate_core::quota::{MemoryQuotaStore, PoolConfig, PoolId, render_table};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::config::{Config, ProviderConfig};
use crate::failure::Failure;

/// The project name pools use when the configuration does not name one.
const UNNAMED_PROJECT: &str = "default";

/// Arguments of `imagegate quota`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only this provider's pools (its configured name).
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,

    /// Print one JSON object (`{"pools": [...]}`) instead of a table.
    #[arg(long)]
    json: bool,

    /// The instant to report at; for reproducible output.
    #[arg(long, hide = true, value_name = "RFC3339")]
    now: Option<Timestamp>,
}

/// The pools one provider's configuration describes: its default model's, every model with
/// its own quota entry, and every shared pool.
fn pools_of(name: &str, config: &ProviderConfig) -> Result<Vec<PoolConfig>, Failure> {
    let Some(kind) = config.kind_for(name) else {
        return Ok(Vec::new());
    };
    let quota = config.quota_or_default();
    let project = config.project.as_deref().unwrap_or(UNNAMED_PROJECT);
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
    models
        .iter()
        .map(|model| {
            quota
                .pool_for(kind.as_str(), project, model)
                .map_err(|e| Failure::usage(format!("provider `{name}`: {}", e.message())))
        })
        .collect()
}

/// Runs the command.
///
/// # Errors
/// [`Failure::Usage`] for an unknown provider or a quota configuration that does not resolve.
pub(crate) fn run(config: &Config, args: &Args) -> Result<(), Failure> {
    let now = args.now.unwrap_or_else(Timestamp::now);
    let store = MemoryQuotaStore::new();
    let mut configured = 0;
    // Two providers on one project draw on the same pools; an explicit `quota` section wins
    // over presets, and two explicit sections must agree.
    let mut pools: BTreeMap<PoolId, (PoolConfig, bool, &str)> = BTreeMap::new();
    for (name, provider) in &config.providers {
        if args.provider.as_ref().is_some_and(|wanted| wanted != name) {
            continue;
        }
        configured += 1;
        let explicit = provider.quota.is_some();
        for pool in pools_of(name, provider)? {
            match pools.get(&pool.id) {
                Some((_, true, _)) if !explicit => {}
                Some((earlier, true, other)) if earlier != &pool => {
                    return Err(Failure::usage(format!(
                        "providers `{other}` and `{name}` share pool {} but configure its \
                         quota differently; configure it once",
                        pool.id
                    )));
                }
                _ => {
                    pools.insert(pool.id.clone(), (pool, explicit, name));
                }
            }
        }
    }
    for (pool, _, _) in pools.into_values() {
        store.configure_now(pool, now);
    }
    if let Some(wanted) = &args.provider
        && configured == 0
    {
        return Err(Failure::usage(format!(
            "no provider named `{wanted}` is configured"
        )));
    }
    let statuses = store.statuses_now(now);
    if args.json {
        let text = serde_json::to_string(&serde_json::json!({ "pools": statuses }))
            .map_err(|e| Failure::io(format!("cannot render JSON: {e}")))?;
        println!("{text}");
    } else if statuses.is_empty() {
        println!(
            "no quota pools: configure a provider (or set GEMINI_API_KEY / OPENROUTER_API_KEY); \
             the mock provider has no quotas"
        );
    } else {
        print!("{}", render_table(&statuses, &TimeZone::system()));
        println!(
            "(use counts cover this process only: imagegate keeps no quota state between runs)"
        );
    }
    Ok(())
}

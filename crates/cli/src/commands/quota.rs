//! `imagegate quota`: every configured pool, its limits, use, what remains and when it resets.
//!
//! A pool is (provider kind, project, model or shared pool), so two configured providers on
//! the same project show one pool: the quota is the project's, not the key's.

use std::collections::BTreeMap;
use std::sync::Arc;

use imagegate_core::quota::{PoolConfig, PoolId, PoolStatus, QuotaStore, render_table};
use imagegate_redis::RedisQuotaStore;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::commands::quota_serve;
use crate::config::Config;
use crate::failure::Failure;
use crate::providers::PROVIDERS;
use crate::state::{open_redis, open_store, pools_of};

/// Arguments of `imagegate quota`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only this provider's pools (its configured name).
    #[arg(long, value_name = "NAME")]
    provider: Option<String>,

    /// Lift every block (billing required, daily, delay) recorded in the state, e.g. after
    /// attaching billing; counts and learned limits stay.
    #[arg(long)]
    clear_blocks: bool,

    /// Print one JSON object (`{"pools": [...]}`) instead of a table.
    #[arg(long)]
    json: bool,

    /// Serve the status page over this quota state (the gateway's page, pools only) instead
    /// of printing; the first line says where. Loopback only.
    #[arg(long, conflicts_with = "json")]
    serve: bool,

    /// Where `--serve` listens (default 127.0.0.1:8081; port 0 picks a free port).
    #[arg(long, value_name = "ADDR", requires = "serve")]
    listen: Option<String>,

    /// The instant to report at; for reproducible output.
    #[arg(long, hide = true, value_name = "RFC3339")]
    now: Option<Timestamp>,
}

/// Runs the command.
///
/// # Errors
/// [`Failure::Usage`] for an unknown provider or a quota configuration that does not resolve.
pub(crate) fn run(config: &Config, args: &Args) -> Result<(), Failure> {
    let now = args.now.unwrap_or_else(Timestamp::now);
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
    if let Some(store) = open_redis(config)? {
        let pools = pools.into_values().map(|(pool, _, _)| pool).collect();
        return tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(shared(store, pools, args, now))
        });
    }
    let Some(store) = open_store(config)? else {
        return Err(Failure::usage(
            "no state directory: set HOME, IMAGEGATE_STATE_DIR or state_dir",
        ));
    };
    for (pool, _, _) in pools.into_values() {
        store.configure_now(pool);
    }
    if args.clear_blocks {
        let cleared = store
            .clear_all_blocks()
            .map_err(|e| Failure::usage(format!("quota state: {}", e.message())))?;
        eprintln!(
            "imagegate: cleared {cleared} block(s) in {}",
            store.path().display()
        );
    }
    if let Some(wanted) = &args.provider
        && configured == 0
    {
        return Err(Failure::usage(format!(
            "no provider named `{wanted}` is configured"
        )));
    }
    if args.serve {
        let store: Arc<dyn QuotaStore> = Arc::new(store);
        return serve_page(store, args);
    }
    let statuses = store
        .statuses_now(now)
        .map_err(|e| Failure::usage(format!("quota state: {}", e.message())))?;
    if args.json {
        let text = serde_json::to_string(&serde_json::json!({ "pools": statuses }))
            .map_err(|e| Failure::io(format!("cannot render JSON: {e}")))?;
        println!("{text}");
    } else if statuses.is_empty() {
        let keys: Vec<&str> = PROVIDERS
            .iter()
            .filter_map(|d| d.key_vars.first().copied())
            .collect();
        println!(
            "no quota pools: configure a provider (or set {})",
            keys.join(" / ")
        );
    } else {
        print!("{}", render_table(&statuses, &TimeZone::system()));
        println!("(state: {})", store.path().display());
    }
    Ok(())
}

/// `--serve` on the file store: the page, from inside the CLI's runtime.
fn serve_page(store: Arc<dyn QuotaStore>, args: &Args) -> Result<(), Failure> {
    let listen = args
        .listen
        .as_deref()
        .unwrap_or(quota_serve::DEFAULT_LISTEN);
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(quota_serve::serve(store, listen))
    })
}

/// `imagegate quota` on the Redis store: the shared state every instance sees.
async fn shared(
    store: RedisQuotaStore,
    pools: Vec<PoolConfig>,
    args: &Args,
    now: Timestamp,
) -> Result<(), Failure> {
    let failed = |e: imagegate_core::Error| Failure::usage(format!("quota state: {}", e.message()));
    let ids: Vec<PoolId> = pools.iter().map(|p| p.id.clone()).collect();
    for pool in pools {
        store.configure(pool, now).await.map_err(failed)?;
    }
    if args.clear_blocks {
        let mut cleared = 0;
        for id in &ids {
            if store.clear_blocks(id).await.map_err(failed)? {
                cleared += 1;
            }
        }
        eprintln!("imagegate: cleared {cleared} block(s) in {}", store.name());
    }
    if args.serve {
        let listen = args
            .listen
            .as_deref()
            .unwrap_or(quota_serve::DEFAULT_LISTEN);
        return quota_serve::serve(Arc::new(store), listen).await;
    }
    let statuses: Vec<PoolStatus> = store.statuses(now).await.map_err(failed)?;
    if args.json {
        let text = serde_json::to_string(&serde_json::json!({ "pools": statuses }))
            .map_err(|e| Failure::io(format!("cannot render JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render_table(&statuses, &TimeZone::system()));
        println!("(state: {})", store.name());
    }
    Ok(())
}

//! From the command line to a ready `Router`: one path for every call.
//!
//! `--route NAME` is a configured route; `--provider NAME` (or the default provider) is a
//! one-target route. Either way the calls go through the same `Router` over the same shared
//! quota state (`FileQuotaStore`), so admission, waiting, retries, learning and recording
//! happen in one place, and a per-day 429 stops `--provider` and `--route` alike.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use imagegate_core::quota::{MemoryQuotaStore, QuotaStore};
use imagegate_core::{Error, ErrorKind, ImageProvider, clock::SystemClock, human_duration};
use imagegate_router::{
    Budget, DEFAULT_ROUTE, Event, MaxWait, Router, RouterBuilder, Target, ThrottleReason,
};

use crate::config::{Config, ProviderConfig};
use crate::failure::Failure;
use crate::providers::{Selected, build, select};
use crate::state::{ADMISSION_WINDOW, open_redis, open_store, pool_for};

/// Calls in flight when a route does not say.
const DEFAULT_CONCURRENCY: usize = 4;

/// A router ready for one command, and how to name what it sends to.
#[derive(Debug)]
pub(crate) struct Routed {
    pub router: Router,
    /// The router's route to send on (its default route: the configured route's targets, or
    /// the one provider).
    pub route: String,
    /// `route:NAME` or the provider's name, for messages and `--json`.
    pub label: String,
    /// The provider's project, for a single provider that names one.
    pub project: Option<String>,
    /// Images one call may ask for: the provider's own limit for a single provider; one for
    /// a route (so each image is written the moment it arrives, whichever target made it).
    pub per_call: u32,
    /// The shared quota state file, when there is one (for the note on a recorded block).
    pub state_file: Option<PathBuf>,
}

impl Routed {
    /// The note to print after `error` when it comes from a block recorded in the state file.
    pub(crate) fn block_note(&self, error: &Error) -> Option<String> {
        let path = self.state_file.as_ref()?;
        matches!(
            error.kind(),
            ErrorKind::QuotaExhausted | ErrorKind::BillingRequired
        )
        .then(|| {
            format!(
                "the block is recorded in {}; `imagegate quota --clear-blocks` lifts it",
                path.display()
            )
        })
    }
}

/// The router for `--route` (when `route` is `Some`) or for one provider (`--provider`, else
/// the configured or detected default), with `budget`.
///
/// # Errors
/// [`Failure::Usage`] for an unknown route or provider, a target that cannot be built (no
/// key), or a quota configuration or state file that does not resolve.
pub(crate) fn routed(
    config: &Config,
    route: Option<&str>,
    provider: Option<&str>,
    model: Option<&str>,
    budget: Budget,
) -> Result<Routed, Failure> {
    // Everything that can be wrong with the invocation is found before the quota state is
    // opened (which creates its directory): a usage error leaves no trace.
    match route {
        Some(route) => Ok(Routed {
            router: build_router_with(config, route, budget)?,
            // The router holds the configured route's targets in order: its default route.
            route: DEFAULT_ROUTE.to_owned(),
            label: format!("route:{route}"),
            project: None,
            per_call: 1,
            state_file: state_file(config),
        }),
        None => {
            let Selected {
                name,
                provider,
                config: provider_config,
            } = select(config, provider)?;
            let model = model.map_or_else(|| provider.default_model().to_owned(), str::to_owned);
            let per_call = provider
                .capabilities(Some(&model))
                .max_images_per_call
                .max(1);
            let project = provider.project().map(str::to_owned);
            let target = target(&name, &name, provider, &provider_config, model)?;
            let (builder, state_file) = builder(config, budget)?;
            let router = builder
                .target(target)
                .build()
                .map_err(|e| Failure::usage(format!("provider `{name}`: {}", e.message())))?;
            Ok(Routed {
                router,
                route: DEFAULT_ROUTE.to_owned(),
                label: name,
                project,
                per_call,
                state_file,
            })
        }
    }
}

/// A builder over the shared quota state, with the configured prices and `budget`.
fn builder(config: &Config, budget: Budget) -> Result<(RouterBuilder, Option<PathBuf>), Failure> {
    let builder = Router::builder(Arc::new(SystemClock))
        .prices(config.price_table())
        .budget(budget);
    with_shared_store(builder, config)
}

/// `builder` over the quota state every command shares, and the state file when it is one.
///
/// # Errors
/// [`Failure::Usage`] when the configured store cannot be opened.
pub(crate) fn with_shared_store(
    mut builder: RouterBuilder,
    config: &Config,
) -> Result<(RouterBuilder, Option<PathBuf>), Failure> {
    let mut state_file = None;
    // `[state] store = "redis://..."` shares the quota across instances; otherwise the state
    // file shares it across the processes of this machine; without a state directory this
    // process counts alone. Each counts with the guarded window.
    let store: Arc<dyn QuotaStore> = if let Some(store) = open_redis(config)? {
        Arc::new(store)
    } else if let Some(store) = open_store(config)? {
        state_file = Some(store.path().to_path_buf());
        Arc::new(store)
    } else {
        Arc::new(MemoryQuotaStore::new().with_window(ADMISSION_WINDOW))
    };
    builder = builder.store(store);
    Ok((builder, state_file))
}

/// The quota state file the router will use, for messages.
fn state_file(config: &Config) -> Option<PathBuf> {
    crate::state::state_dir(config).map(|dir| dir.join(crate::state::STATE_FILE))
}

/// One target: `provider` asked for `model`, drawing on its pool.
fn target(
    name: &str,
    kind_name: &str,
    provider: Arc<dyn ImageProvider>,
    provider_config: &ProviderConfig,
    model: String,
) -> Result<Target, Failure> {
    let Some(pool) = pool_for(kind_name, provider_config, &model)? else {
        return Err(Failure::usage(format!(
            "target `{name}`: the provider's kind is unknown"
        )));
    };
    Ok(Target::new(name, provider, model, pool))
}

/// The router for the configured route `route`, with `budget`.
fn build_router_with(config: &Config, route: &str, budget: Budget) -> Result<Router, Failure> {
    let Some(route_config) = config.routes.get(route) else {
        let known: Vec<&str> = config.routes.keys().map(String::as_str).collect();
        return Err(Failure::usage(format!(
            "no route named `{route}` is configured (known: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        )));
    };
    let mut targets = Vec::with_capacity(route_config.targets.len());
    for entry in &route_config.targets {
        targets.push(route_target(route, entry, config)?);
    }
    let (mut builder, _) = builder(config, budget)?;
    builder = builder.concurrency(route_config.concurrency.unwrap_or(DEFAULT_CONCURRENCY));
    for target in targets {
        builder = builder.target(target);
    }
    builder
        .build()
        .map_err(|e| Failure::usage(format!("route `{route}`: {}", e.message())))
}

/// The target `entry` of `route` (`provider` or `provider:model`), built from the provider's
/// configuration (a provider that needs none, such as `mock`, gets the defaults) and drawing on
/// its pool. `generate --route`, `batch --route` and the gateway build their targets here.
///
/// # Errors
/// [`Failure::Usage`] naming the route and the entry.
pub(crate) fn route_target(route: &str, entry: &str, config: &Config) -> Result<Target, Failure> {
    let (name, model) = split_target(entry);
    let provider_config = config.providers.get(name).cloned().unwrap_or_default();
    let provider: Arc<dyn ImageProvider> = build(name, &provider_config).map_err(|e| {
        Failure::usage(format!(
            "route `{route}`, target `{entry}`: {}",
            e.message()
        ))
    })?;
    let model = model.map_or_else(|| provider.default_model().to_owned(), str::to_owned);
    target(entry, name, provider, &provider_config, model).map_err(|_| {
        Failure::usage(format!(
            "route `{route}`, target `{entry}`: the provider's kind is unknown"
        ))
    })
}

/// A route's target entry: `provider` (its default model) or `provider:model`.
pub(crate) fn split_target(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once(':') {
        Some((name, model)) => (name, Some(model)),
        None => (entry, None),
    }
}

/// `--max-wait` as the router's rule: the given duration, else the command's default.
pub(crate) fn max_wait(given: Option<Duration>, default: MaxWait) -> MaxWait {
    given.map_or(default, MaxWait::UpTo)
}

/// Why a request waits, in words, naming the pool.
pub(crate) fn throttle_reason(reason: &ThrottleReason) -> String {
    let pool = |pool: &Option<imagegate_core::quota::PoolId>| {
        pool.as_ref()
            .map_or_else(String::new, |p| format!("pool {p} "))
    };
    match reason {
        ThrottleReason::QuotaWindow { dimension, pool: p } => match dimension {
            Some(d) => format!("{}{d} window", pool(p)),
            None => format!("{}a requested delay", pool(p)),
        },
        ThrottleReason::DailyQuota { pool: p } => format!("{}daily quota", pool(p)),
        ThrottleReason::Backoff { target, retry } => {
            format!("{target} backoff (retry {retry})")
        }
        ThrottleReason::Concurrency => "the concurrency limit".to_owned(),
        ThrottleReason::PreferredTarget { target } => format!("the cheaper {target}"),
        _ => "the router".to_owned(),
    }
}

/// Prints every wait of a second or more on stderr while `generate` runs: never a silent
/// wait.
pub(crate) fn announce_waits(router: &Router) -> tokio::task::JoinHandle<()> {
    let mut events = router.subscribe();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match events.recv().await {
                Ok(Event::Throttled { wait, reason, .. }) if wait >= Duration::from_secs(1) => {
                    eprintln!(
                        "imagegate: waiting {}: {}",
                        human_duration(wait),
                        throttle_reason(&reason)
                    );
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => break,
            }
        }
    })
}

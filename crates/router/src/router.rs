//! [`Router`] and its [`RouterBuilder`]: the public face of the crate.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use imagegate_core::quota::{PoolStatus, TokenEstimator};
use imagegate_core::{
    Capabilities, Error, GenerateRequest, GenerateResponse, ImageProvider, Result, clock::Clock,
    quota::MemoryQuotaStore, quota::PriceTable, quota::QuotaStore,
};
use tokio::sync::{Notify, OnceCell, broadcast, mpsc};

use crate::backoff::{Jitter, SeededJitter};
use crate::budget::{Budget, Ledger};
use crate::cache::Cache;
use crate::events::{Event, Events};
use crate::inner::Inner;
use crate::options::RequestOptions;
use crate::policy::Policy;
use crate::queue::Gate;
use crate::serve::DEFAULT_ROUTE;
use crate::target::{Target, TargetState};

/// One [`ImageProvider`] over many targets: admission against each target's quota pool,
/// fallback, the error rules, retries with backoff, a priority queue, concurrency limits, a
/// budget, a cache and an event stream. Cheap to clone (shared state).
///
/// Build it with [`Router::builder`]; send with [`ImageProvider::generate`] (the default route)
/// or [`Router::generate_on`] (a named route). See `docs/router.md`.
#[derive(Clone)]
pub struct Router {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self
            .inner
            .targets
            .iter()
            .map(|t| t.target.name.as_str())
            .collect();
        f.debug_struct("Router")
            .field("targets", &names)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Router`].
#[derive(Debug)]
pub struct RouterBuilder {
    clock: Arc<dyn Clock>,
    store: Option<Arc<dyn QuotaStore>>,
    targets: Vec<Target>,
    routes: Vec<(String, Vec<String>)>,
    concurrency: Option<usize>,
    target_concurrency: Option<usize>,
    policy: Policy,
    seed: u64,
    jitter: Option<Arc<dyn Jitter>>,
    estimator: TokenEstimator,
    prices: PriceTable,
    budget: Budget,
    cache: Option<(PathBuf, Duration)>,
    sink: Option<mpsc::UnboundedSender<Event>>,
}

impl Router {
    /// A builder; every wait the router makes goes through `clock`.
    pub fn builder(clock: Arc<dyn Clock>) -> RouterBuilder {
        RouterBuilder {
            clock,
            store: None,
            targets: Vec::new(),
            routes: Vec::new(),
            concurrency: None,
            target_concurrency: None,
            policy: Policy::default(),
            seed: 0,
            jitter: None,
            estimator: TokenEstimator::default(),
            prices: PriceTable::default(),
            budget: Budget::default(),
            cache: None,
            sink: None,
        }
    }

    /// Sends `request` on the route called `route` ([`DEFAULT_ROUTE`] is every target in the
    /// order added).
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](imagegate_core::ErrorKind::ConfigInvalid) for an unknown
    /// route; otherwise the error that ended the request (see `docs/router.md`).
    pub async fn generate_on(
        &self,
        route: &str,
        request: &GenerateRequest,
    ) -> Result<GenerateResponse> {
        self.generate_with(route, request, RequestOptions::default())
            .await
    }

    /// [`generate_on`](Self::generate_on) with per-request options (the cache).
    ///
    /// # Errors
    /// As [`generate_on`](Self::generate_on).
    pub async fn generate_with(
        &self,
        route: &str,
        request: &GenerateRequest,
        options: RequestOptions,
    ) -> Result<GenerateResponse> {
        crate::serve::serve(&self.inner, route, request, options).await
    }

    /// A receiver of every [`Event`] from now on (lossy when it lags more than 1,024 events
    /// behind; tracing always gets every event).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// The state of every pool the router's targets draw on, ordered by pool id.
    ///
    /// # Errors
    /// When the quota store fails.
    pub async fn pool_statuses(&self) -> Result<Vec<PoolStatus>> {
        self.inner.ensure_configured().await?;
        let now = self.inner.clock.now();
        let mut out = Vec::with_capacity(self.inner.pools.len());
        for pool in &self.inner.pools {
            out.push(self.inner.store.status(&pool.id, now).await?);
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// The targets' names, in the order added.
    pub fn target_names(&self) -> Vec<String> {
        self.inner
            .targets
            .iter()
            .map(|t| t.target.name.clone())
            .collect()
    }

    /// The route names, sorted.
    pub fn route_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.inner.routes.keys().cloned().collect();
        names.sort();
        names
    }

    /// Targets disabled so far (billing, key, region, model), with the error that disabled
    /// each (its advice says what to do).
    pub fn disabled_targets(&self) -> Vec<(String, Error)> {
        self.inner
            .targets
            .iter()
            .filter_map(|t| t.disabled().map(|e| (t.target.name.clone(), e)))
            .collect()
    }

    /// US dollars spent (or reserved by calls in flight) since the router was built.
    pub fn spent_usd(&self) -> f64 {
        self.inner.budget.spent_run()
    }

    /// US dollars spent (or reserved) in the UTC day holding `now`, as the daily budget counts
    /// them (a status page shows them against [`budget`](Self::budget)).
    pub fn spent_today_usd(&self, now: jiff::Timestamp) -> f64 {
        self.inner.budget.spent_day(now)
    }

    /// The budget this router enforces (per run and per UTC day; `None` is no limit).
    pub fn budget(&self) -> Budget {
        self.inner.budget.budget()
    }

    /// Whether the budget ever refused a call: from then on a batch starts nothing new.
    pub fn budget_reached(&self) -> bool {
        self.inner.budget.was_refused()
    }

    /// The quota store (shared, so a caller can inspect or pre-load it).
    pub fn store(&self) -> Arc<dyn QuotaStore> {
        Arc::clone(&self.inner.store)
    }
}

impl RouterBuilder {
    /// Where quota state lives (default: a fresh [`MemoryQuotaStore`]). The router configures
    /// its pools in it on first use.
    #[must_use]
    pub fn store(mut self, store: Arc<dyn QuotaStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Adds a target; the order of `target` calls is the default route's preference order.
    #[must_use]
    pub fn target(mut self, target: Target) -> Self {
        self.targets.push(target);
        self
    }

    /// Adds a named route: target names in preference order.
    #[must_use]
    pub fn route(mut self, name: impl Into<String>, targets: Vec<String>) -> Self {
        self.routes.push((name.into(), targets));
        self
    }

    /// At most `n` upstream calls in flight across all targets; callers beyond it queue,
    /// interactive before background.
    #[must_use]
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = Some(n);
        self
    }

    /// At most `n` calls in flight per target.
    #[must_use]
    pub fn target_concurrency(mut self, n: usize) -> Self {
        self.target_concurrency = Some(n);
        self
    }

    /// The decision policy.
    #[must_use]
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Seeds the backoff jitter (default 0): the same seed gives the same waits.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Replaces the jitter source (overrides [`seed`](Self::seed)).
    #[must_use]
    pub fn jitter(mut self, jitter: Arc<dyn Jitter>) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// How requests are costed in tokens for TPM admission.
    #[must_use]
    pub fn estimator(mut self, estimator: TokenEstimator) -> Self {
        self.estimator = estimator;
        self
    }

    /// Prices, for the budget, attempts' costs and the wait-versus-fallback rule.
    #[must_use]
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// The spending limit.
    #[must_use]
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Turns on the on-disk cache in `dir`, entries living `ttl`.
    #[must_use]
    pub fn cache(mut self, dir: impl Into<PathBuf>, ttl: Duration) -> Self {
        self.cache = Some((dir.into(), ttl));
        self
    }

    /// Also sends every event to `sender` (never lossy; see also [`Router::subscribe`]).
    #[must_use]
    pub fn events(mut self, sender: mpsc::UnboundedSender<Event>) -> Self {
        self.sink = Some(sender);
        self
    }

    /// Builds the router.
    ///
    /// # Errors
    /// [`ErrorKind::ConfigInvalid`](imagegate_core::ErrorKind::ConfigInvalid) when there is no
    /// target, two targets share a name, a route names an unknown target or is empty, or a
    /// concurrency limit is 0.
    pub fn build(self) -> Result<Router> {
        if self.targets.is_empty() {
            return Err(Error::config("the router needs at least one target"));
        }
        if self.concurrency == Some(0) || self.target_concurrency == Some(0) {
            return Err(Error::config("a concurrency limit must be at least 1"));
        }
        let mut index: HashMap<String, usize> = HashMap::new();
        for (i, t) in self.targets.iter().enumerate() {
            if index.insert(t.name.clone(), i).is_some() {
                return Err(Error::config(format!(
                    "two targets are named `{}`: target names must be unique",
                    t.name
                )));
            }
        }
        let mut routes: HashMap<String, Vec<usize>> = HashMap::new();
        routes.insert(DEFAULT_ROUTE.to_owned(), (0..self.targets.len()).collect());
        for (name, members) in self.routes {
            if members.is_empty() {
                return Err(Error::config(format!("route `{name}` names no target")));
            }
            let mut list = Vec::with_capacity(members.len());
            for member in &members {
                let i = index.get(member).copied().ok_or_else(|| {
                    Error::config(format!(
                        "route `{name}` names `{member}`, which is not a target"
                    ))
                })?;
                list.push(i);
            }
            routes.insert(name, list);
        }
        let mut seen = HashSet::new();
        let pools = self
            .targets
            .iter()
            .filter(|t| seen.insert(t.pool.id.clone()))
            .map(|t| t.pool.clone())
            .collect();
        let capabilities = union_capabilities(&self.targets);
        let default_model = self.targets[0].model.clone();
        let targets = self
            .targets
            .into_iter()
            .map(|t| TargetState::new(t, self.target_concurrency))
            .collect();
        let store = self
            .store
            .unwrap_or_else(|| Arc::new(MemoryQuotaStore::new()));
        let jitter = self
            .jitter
            .unwrap_or_else(|| Arc::new(SeededJitter::new(self.seed)));
        Ok(Router {
            inner: Arc::new(Inner {
                clock: self.clock,
                store,
                targets,
                routes,
                pools,
                configured: OnceCell::new(),
                policy: self.policy,
                jitter,
                estimator: self.estimator,
                prices: self.prices,
                budget: Ledger::new(self.budget),
                cache: self.cache.map(|(dir, ttl)| Cache::new(dir, ttl)),
                gate: Gate::new(self.concurrency),
                room: crate::room::Room::default(),
                events: Events::new(self.sink),
                next_request: AtomicU64::new(1),
                freed: Arc::new(Notify::new()),
                warned: Mutex::new(HashMap::new()),
                capabilities,
                default_model,
                shared: Mutex::new(HashMap::new()),
                any_shared: AtomicBool::new(false),
            }),
        })
    }
}

/// What the router as a whole can do: anything some target can (it picks a target that fits),
/// and any number of images (it splits them into calls).
fn union_capabilities(targets: &[Target]) -> Capabilities {
    let mut caps = Capabilities::new(u32::MAX);
    let mut any_size = false;
    let mut any_ratio = false;
    for t in targets {
        let c = t.provider.capabilities(Some(&t.model));
        caps.editing |= c.editing;
        caps.seed |= c.seed;
        any_size |= c.sizes.is_empty();
        any_ratio |= c.aspect_ratios.is_empty();
        for s in c.sizes {
            if !caps.sizes.contains(&s) {
                caps.sizes.push(s);
            }
        }
        for r in c.aspect_ratios {
            if !caps.aspect_ratios.contains(&r) {
                caps.aspect_ratios.push(r);
            }
        }
    }
    if any_size {
        caps.sizes.clear();
    }
    if any_ratio {
        caps.aspect_ratios.clear();
    }
    caps.sizes.sort();
    caps
}

#[async_trait]
impl ImageProvider for Router {
    fn name(&self) -> &str {
        "router"
    }

    fn default_model(&self) -> &str {
        &self.inner.default_model
    }

    fn capabilities(&self, _model: Option<&str>) -> Capabilities {
        self.inner.capabilities.clone()
    }

    /// Sends `request` on the default route.
    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse> {
        self.generate_on(DEFAULT_ROUTE, request).await
    }
}

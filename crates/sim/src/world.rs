//! One run's world: the simulated upstreams (one per provider x project, each classifying with
//! the real provider crate's `parse_error`) and the client's targets bound to them.

use std::collections::BTreeMap;
use std::sync::Arc;

use imagegate_core::{Clock, Limits};
use imagegate_mock::sim::{
    BatchConfig, Classifier, Latency, SimulatedBatch, SimulatedUpstream, UpstreamConfig,
    UpstreamKind,
};

use crate::scenario::Scenario;

/// The real classifier of `kind`: simulated errors take the same path as real ones.
pub fn classifier(kind: UpstreamKind) -> Classifier {
    match crate::providers::descriptor(kind).parse_error {
        Some(parse) => Arc::new(parse),
        // Every simulated kind has a wire format (a test in `providers` checks it); were one
        // missing, its errors would still be classified, as unexpected.
        None => Arc::new(|status, _: &_, _: &_, _| {
            imagegate_core::Error::new(
                imagegate_core::ErrorKind::Unexpected,
                format!("no classifier for this upstream (HTTP {status})"),
            )
        }),
    }
}

/// A seed for `label` derived from the scenario's seed (FNV-1a over the label, then SplitMix64),
/// so every random stream is independent of the others and of how many there are.
pub fn derive_seed(seed: u64, label: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for byte in label.bytes() {
        h ^= u64::from(byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = h.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One client target, bound to the upstream that serves it.
#[derive(Clone, Debug)]
pub struct SimTarget {
    /// Which provider.
    pub kind: UpstreamKind,
    /// Which project.
    pub project: String,
    /// Which model.
    pub model: String,
    /// The client's pool name (the model unless the scenario names a shared pool).
    pub pool: String,
    /// What the client believes the limits are; `None`: it must learn them.
    pub limits: Option<Limits>,
    /// The upstream serving it.
    pub upstream: Arc<SimulatedUpstream>,
    /// The batch API of its model's pool, if the pool has one.
    pub batch: Option<Arc<SimulatedBatch>>,
}

/// Every upstream and target of one run.
#[derive(Clone, Debug)]
pub struct World {
    /// The simulated clock.
    pub clock: Arc<dyn Clock>,
    /// Upstreams by (provider, project).
    pub upstreams: BTreeMap<(UpstreamKind, String), Arc<SimulatedUpstream>>,
    /// Targets in preference order.
    pub targets: Vec<SimTarget>,
    /// The scenario's seed.
    pub seed: u64,
    /// The router knobs of `[client.router]`.
    pub router: crate::scenario::RouterKnobs,
    /// Every pool's batch API, in pool order, with the pool's models (each one at most once).
    pub batches: Vec<Arc<SimulatedBatch>>,
    /// How the client uses them (`[client.batch]`).
    pub batch_policy: crate::scenario::ClientBatch,
    /// Jobs in flight at once (`client.concurrency`).
    pub concurrency: usize,
    /// The upstream latency range (a client planning with it takes its maximum).
    pub latency: Latency,
}

impl World {
    /// The first target, in preference order, whose pool has a batch API.
    pub fn batch_target(&self) -> Option<&SimTarget> {
        self.targets.iter().find(|t| t.batch.is_some())
    }
}

impl World {
    /// Builds the upstreams of `scenario` on `clock`.
    pub fn build(scenario: &Scenario, clock: Arc<dyn Clock>) -> World {
        let mut grouped: BTreeMap<(UpstreamKind, String), Vec<_>> = BTreeMap::new();
        for pool in &scenario.upstream.pools {
            grouped
                .entry((pool.kind, pool.project.clone()))
                .or_default()
                .push(pool.pool.clone());
        }
        let upstreams: BTreeMap<_, _> = grouped
            .into_iter()
            .map(|((kind, project), pools)| {
                let seed = derive_seed(
                    scenario.seed,
                    &format!("upstream/{}/{project}", kind.as_str()),
                );
                let config = UpstreamConfig {
                    kind,
                    project: project.clone(),
                    pools,
                    latency: scenario.upstream.latency,
                    reject_latency: scenario.upstream.reject_latency,
                    overload_rate: scenario.upstream.overload_rate,
                    seed,
                };
                let upstream = SimulatedUpstream::new(config, clock.clone(), classifier(kind));
                ((kind, project), Arc::new(upstream))
            })
            .collect();
        let mut batches = Vec::new();
        let mut batch_of: BTreeMap<(UpstreamKind, String, String), Arc<SimulatedBatch>> =
            BTreeMap::new();
        for (i, pool) in scenario.upstream.pools.iter().enumerate() {
            let Some(b) = pool.batch else { continue };
            let seed = derive_seed(
                scenario.seed,
                &format!("batch/{}/{}/{i}", pool.kind.as_str(), pool.project),
            );
            let config = BatchConfig {
                turnaround: b.turnaround,
                enqueued_tokens: b.enqueued_tokens,
                seed,
            };
            let batch = Arc::new(SimulatedBatch::new(config, clock.clone()));
            for model in &pool.pool.models {
                batch_of.insert(
                    (pool.kind, pool.project.clone(), model.clone()),
                    batch.clone(),
                );
            }
            batches.push(batch);
        }
        let targets = scenario
            .client
            .targets
            .iter()
            .filter_map(|t| {
                let upstream = upstreams.get(&(t.kind, t.project.clone()))?.clone();
                Some(SimTarget {
                    kind: t.kind,
                    project: t.project.clone(),
                    model: t.model.clone(),
                    pool: t.pool.clone().unwrap_or_else(|| t.model.clone()),
                    limits: t.limits,
                    upstream,
                    batch: batch_of
                        .get(&(t.kind, t.project.clone(), t.model.clone()))
                        .cloned(),
                })
            })
            .collect();
        World {
            clock,
            upstreams,
            targets,
            seed: scenario.seed,
            router: scenario.client.router,
            batches,
            batch_policy: scenario.client.batch,
            concurrency: scenario.client.concurrency,
            latency: scenario.upstream.latency,
        }
    }
}

//! `imagegate`: the router (imagegate-router) over the scenario's targets, configured the way a
//! user would configure it: each target's pool is (provider, project, the target's `pool` name
//! or its model) with the limits the client believes (none when it must learn them), its day
//! ending where the provider's does, and the router's retry jitter seeded from the scenario.

use std::sync::Arc;

use async_trait::async_trait;
use imagegate_core::quota::{PoolConfig, PoolId};
use imagegate_core::{Error, ImageProvider, quota::Limits};
use imagegate_router::{Policy, Router, Target};

use super::{Job, Served, Strategy};
use crate::world::{World, derive_seed};

/// Whether this build can run the router strategy.
pub(crate) const BUILT: bool = true;

/// The router strategy.
#[derive(Debug)]
pub struct Imagegate {
    router: Router,
}

pub(crate) fn build(world: &World) -> Result<Arc<dyn Strategy>, String> {
    let knobs = world.router;
    let mut policy = Policy::default();
    if let Some(edf) = knobs.earliest_deadline_first {
        policy = policy.with_earliest_deadline_first(edf);
    }
    if let Some(quantile) = knobs.latency_quantile {
        policy = policy.with_latency_quantile(quantile);
    }
    if let Some(aging) = knobs.background_aging {
        policy = policy.with_background_aging(aging);
    }
    let mut builder = Router::builder(world.clock.clone())
        .policy(policy)
        .seed(derive_seed(world.seed, "strategy/imagegate"))
        .prices(crate::providers::prices());
    for t in &world.targets {
        let id = PoolId::new(t.kind.as_str(), t.project.clone(), t.pool.clone());
        let pool = PoolConfig::new(
            id,
            t.limits.unwrap_or(Limits::NONE),
            crate::providers::zone(t.kind),
        );
        let provider: Arc<dyn ImageProvider> = t.upstream.clone();
        let name = format!("{}/{}/{}", t.kind.as_str(), t.project, t.model);
        builder = builder.target(Target::new(name, provider, t.model.clone(), pool));
    }
    let router = builder.build().map_err(|e| e.to_string())?;
    Ok(Arc::new(Imagegate { router }))
}

#[async_trait]
impl Strategy for Imagegate {
    async fn run(&self, job: &Job) -> Result<Served, Error> {
        let request = job
            .request
            .clone()
            .with_count(job.images)
            .with_deadline(job.deadline);
        let response = self.router.generate(&request).await?;
        Ok(vec![
            response.served_by.model.clone();
            response.images.len()
        ])
    }
}

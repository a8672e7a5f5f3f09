//! `oracle`: knows the true pools and sends exactly when capacity exists, so it never gets a
//! 429. The physical limit every other strategy is measured against (goodput 1.0).
//!
//! With a batch API it also takes the cheapest plan that meets every deadline: it knows the
//! true turnaround range, so a job goes to the batch API (half price) exactly when even the
//! slowest turnaround ends by its deadline and the batch quota takes it now.

use std::sync::Arc;

use async_trait::async_trait;
use imagegate_core::clock::add;
use imagegate_core::{Clock, Error, ErrorKind};
use imagegate_mock::sim::{BATCH_EXPIRY, Capacity};
use imagegate_router::via::Via;

use super::{Job, Served, Strategy, call, served_model};
use crate::world::{SimTarget, World};

/// The oracle: for each image, the first target (in preference order) whose true pool admits
/// the request now; when none does, sleep until the earliest instant one will. A 503 is not a
/// quota event the oracle could foresee, so it simply asks again.
#[derive(Debug)]
pub struct Oracle {
    clock: Arc<dyn Clock>,
    targets: Vec<SimTarget>,
    batch: Option<SimTarget>,
}

impl Oracle {
    /// The oracle over `world`'s targets.
    pub fn new(world: &World) -> Self {
        Oracle {
            clock: world.clock.clone(),
            targets: world.targets.clone(),
            batch: world.batch_target().cloned(),
        }
    }

    async fn one_image(&self, job: &Job) -> Result<String, Error> {
        loop {
            let mut earliest = None;
            let mut sent = None;
            for target in &self.targets {
                let request = job.request.clone().with_model(target.model.clone());
                match target.upstream.capacity(&target.model, &request) {
                    // No await between the check and the call's first poll: nothing can take
                    // the capacity in between.
                    Capacity::Now => {
                        sent = Some(call(target, job).await);
                        break;
                    }
                    Capacity::At(at) => {
                        earliest = Some(earliest.map_or(at, |e: jiff::Timestamp| e.min(at)));
                    }
                    Capacity::Never => {}
                }
            }
            match sent {
                Some(Ok(response)) => return Ok(served_model(&response)),
                Some(Err(e)) if e.kind() == ErrorKind::Unavailable => continue,
                Some(Err(e)) => return Err(e),
                None => match earliest {
                    Some(at) => self.clock.sleep_until(at).await,
                    None => {
                        return Err(Error::new(
                            ErrorKind::BillingRequired,
                            "no target can ever serve this request",
                        ));
                    }
                },
            }
        }
    }
}

#[async_trait]
impl Strategy for Oracle {
    async fn run(&self, job: &Job) -> Result<Served, Error> {
        let mut served = Vec::new();
        for _ in 0..job.images {
            served.push(self.one_image(job).await?);
        }
        Ok(served)
    }

    async fn via(&self, job: &Job) -> Via {
        let Some(batch) = self.batch.as_ref().and_then(|t| t.batch.as_ref()) else {
            return Via::Interactive;
        };
        // A job past the expiry has no results: the slowest turnaround must also come before it.
        let slowest_turnaround = batch.config().turnaround.max;
        if slowest_turnaround > BATCH_EXPIRY {
            return Via::Interactive;
        }
        let slowest = add(self.clock.now(), slowest_turnaround);
        let fits = batch
            .room(&job.request)
            .is_none_or(|room| room >= u64::from(job.images));
        if slowest <= job.deadline && fits {
            Via::Batch
        } else {
            Via::Interactive
        }
    }
}

//! `key-rotation`: the multi-project rotation (Solution 3) of
//! the public guide "Gemini Image 429 Error Fix: Billing, Quotas, Batch 2026".
//!
//! ```python
//! api_keys = ["KEY_1", "KEY_2", "KEY_3", "KEY_4", "KEY_5"]
//! key_pool = itertools.cycle(api_keys)
//! def generate_with_rotation(prompt):
//!     key = next(key_pool)
//!     return send_request(prompt, api_key=key)
//! ```
//!
//! Adaptations: the keys are the distinct projects among the targets of the first target's
//! provider, in target order, each sending that project's first target's model (the guide
//! rotates keys of one endpoint). The guide leaves a 429 to the caller; as docs/simulate.md
//! specifies for this strategy, a 429 takes the next key from the same cycle once, and then the job gives
//! up; any other error gives up at once. The cycle is shared by all workers.

use std::sync::Mutex;
use std::sync::PoisonError;

use async_trait::async_trait;
use imagegate_core::Error;

use super::{Job, Served, Strategy, call, served_model};
use crate::world::{SimTarget, World};

/// Seed 002's rotation.
#[derive(Debug)]
pub struct KeyRotation {
    keys: Vec<SimTarget>,
    next: Mutex<usize>,
}

impl KeyRotation {
    /// The rotation over `world`'s projects.
    pub fn new(world: &World) -> Self {
        let mut keys: Vec<SimTarget> = Vec::new();
        let kind = world.targets.first().map(|t| t.kind);
        for target in &world.targets {
            if Some(target.kind) == kind && !keys.iter().any(|k| k.project == target.project) {
                keys.push(target.clone());
            }
        }
        KeyRotation {
            keys,
            next: Mutex::new(0),
        }
    }

    /// The projects in rotation order.
    pub fn projects(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.project.as_str()).collect()
    }

    /// `next(key_pool)`.
    fn next_key(&self) -> Option<&SimTarget> {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let key = self.keys.get(*next % self.keys.len().max(1));
        *next = next.wrapping_add(1);
        key
    }

    async fn generate(&self, job: &Job) -> Result<String, Error> {
        let Some(key) = self.next_key() else {
            return Err(Error::config("the scenario has no target"));
        };
        match call(key, job).await {
            Ok(response) => Ok(served_model(&response)),
            Err(e) if e.http_status() == Some(429) => {
                let Some(again) = self.next_key() else {
                    return Err(e);
                };
                call(again, job).await.map(|r| served_model(&r))
            }
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Strategy for KeyRotation {
    async fn run(&self, job: &Job) -> Result<Served, Error> {
        let mut served = Vec::new();
        for _ in 0..job.images {
            served.push(self.generate(job).await?);
        }
        Ok(served)
    }
}

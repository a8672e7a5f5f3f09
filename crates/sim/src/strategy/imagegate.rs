//! `imagegate`: the router over the scenario's targets. Wired once imagegate-router's first
//! working version lands; until then this build reports it as not built.

use std::sync::Arc;

use super::Strategy;
use crate::world::World;

/// Whether this build can run the router strategy.
pub(crate) const BUILT: bool = false;

pub(crate) fn build(_world: &World) -> Result<Arc<dyn Strategy>, String> {
    Err("not built: this build predates imagegate-router's first working version".to_owned())
}

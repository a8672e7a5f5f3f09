#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod backoff;
mod budget;
mod cache;
mod decide;
mod events;
mod policy;
mod queue;
mod router;
mod target;

pub use backoff::{Jitter, NoJitter, SeededJitter};
pub use budget::Budget;
pub use events::{BudgetScope, Event, ThrottleReason};
pub use policy::Policy;
pub use router::{DEFAULT_ROUTE, RequestOptions, Router, RouterBuilder};
pub use target::Target;

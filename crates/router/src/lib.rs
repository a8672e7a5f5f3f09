#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod admit;
pub mod backoff;
mod budget;
mod cache;
mod call;
mod ctx;
mod events;
mod inner;
mod latency;
mod linking;
mod options;
mod policy;
mod queue;
mod room;
mod router;
mod rules;
mod send;
mod serve;
mod target;
pub mod via;
mod wait;

pub use backoff::{Jitter, NoJitter, SeededJitter};
pub use budget::Budget;
pub use events::{BudgetScope, Event, ThrottleReason};
pub use options::{MaxWait, RequestOptions};
pub use policy::{DEFAULT_BACKGROUND_AGING, DEFAULT_LATENCY_QUANTILE, Policy};
pub use router::{Router, RouterBuilder};
pub use serve::DEFAULT_ROUTE;
pub use target::Target;

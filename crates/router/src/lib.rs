//! # imagegate-router
//!
//! One [`ImageProvider`](imagegate_core::ImageProvider) over many targets: throttling,
//! retries, fallback, queue, cache and budget.
//!
//! A [`Router`] holds [`Target`]s (provider x model x project, each with its quota pool) and
//! routes (ordered lists of targets). For each request it takes the first target whose pool
//! admits the call now, waits for the earliest capacity within the request's deadline when none
//! does, and acts on every error by kind: learn and move on after a 429, park a pool until its
//! daily reset, disable a target that lacks billing or a valid key, back off and retry an
//! unavailable upstream, return at once on a bad request. Every attempt is listed in the
//! response and reported as an [`Event`]. `docs/router.md` is the user-facing description.
//!
//! ```
//! use std::sync::Arc;
//!
//! use imagegate_core::quota::{Limits, PoolConfig, PoolId, PACIFIC};
//! use imagegate_core::{GenerateRequest, ImageProvider, ImageSize, SystemClock};
//! use imagegate_mock::MockProvider;
//! use imagegate_router::{Router, Target};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), imagegate_core::Error> {
//! let pool = PoolConfig::new(
//!     PoolId::new("mock", "demo", "mock-image-1"),
//!     Limits { rpm: Some(10), ..Limits::NONE },
//!     PACIFIC.clone(),
//! );
//! let router = Router::builder(Arc::new(SystemClock))
//!     .target(Target::new("mock", Arc::new(MockProvider::new()), "mock-image-1", pool))
//!     .build()?;
//! let response = router
//!     .generate(&GenerateRequest::new("a lighthouse").with_size(ImageSize::Half))
//!     .await?;
//! assert_eq!(response.attempts.len(), 1);
//! assert_eq!(response.attempts[0].target, "mock");
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod admit;
pub mod backoff;
mod budget;
mod cache;
mod call;
mod ctx;
mod events;
mod inner;
mod linking;
mod options;
mod policy;
mod queue;
mod router;
mod rules;
mod send;
mod serve;
mod target;
mod wait;

pub use backoff::{Jitter, NoJitter, SeededJitter};
pub use budget::Budget;
pub use events::{BudgetScope, Event, ThrottleReason};
pub use policy::Policy;
pub use options::{MaxWait, RequestOptions};
pub use router::{Router, RouterBuilder};
pub use serve::DEFAULT_ROUTE;
pub use target::Target;

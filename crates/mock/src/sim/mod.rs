//! A simulated upstream: providers that enforce a scenario's *true* quota pools and fail with
//! exactly the errors the real services produce.
//!
//! One [`SimulatedUpstream`] stands for one provider x project. It owns the project's true
//! pools ([`TruePool`]: models sharing a pool, RPM/RPD/IPM/TPM, sliding or calendar-minute
//! windows, the day ending at midnight Pacific for Gemini and midnight UTC for OpenRouter), and
//! over quota it renders the service's real wire answer ([`wire`]) and classifies it with an
//! injected [`Classifier`], which the simulator sets to the provider crate's own `parse_error`.
//! Simulated and real errors therefore take one code path. Rejected requests do not consume
//! quota; everything waits on an injected clock, so under tokio's paused time a simulated day
//! runs in milliseconds.
//!
//! [`SimulatedBatch`] is a pool's batch API (Gemini's Batch API): jobs accepted or refused
//! whole against their own enqueued-token quota, their results after a seeded turnaround.
//!
//! [`SimulatedUpstream::decide`] is the same decision without the waiting and the classifying:
//! it hands back the raw wire answer (status, headers, body) or the latency of an admitted
//! call, so the emulator (`imagegate-emulator`) can serve the truth over real HTTP;
//! [`SimulatedUpstream::snapshot`] and [`SimulatedUpstream::reset`] back its statistics.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use imagegate_core::quota::PACIFIC;
//! use imagegate_core::{Error, ErrorKind, GenerateRequest, ImageProvider, quota::Limits, clock::ManualClock};
//! use imagegate_mock::sim::{
//!     Classifier, Latency, SimulatedUpstream, TruePool, UpstreamConfig, wire::UpstreamKind,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = Arc::new(ManualClock::new("2026-03-07T10:00:00Z".parse()?));
//! // A stand-in classifier; the simulator passes imagegate_gemini::parse_error.
//! let classifier: Classifier =
//!     Arc::new(|status, _, _, _| Error::new(ErrorKind::RateLimited, status.to_string()));
//! let limits = Limits { rpm: Some(1), ..Limits::NONE };
//! let upstream = SimulatedUpstream::new(
//!     UpstreamConfig {
//!         kind: UpstreamKind::Gemini,
//!         project: "proj-a".into(),
//!         pools: vec![TruePool::new(vec!["gemini-2.5-flash-image".into()], limits, PACIFIC.clone())],
//!         latency: Latency::fixed(Duration::from_secs(10)),
//!         reject_latency: Duration::from_millis(500),
//!         overload_rate: 0.0,
//!         seed: 7,
//!     },
//!     clock.clone(),
//!     classifier,
//! );
//! let request = GenerateRequest::new("a lighthouse");
//! assert_eq!(upstream.generate(&request).await?.images.len(), 1);
//! let err = upstream.generate(&request).await.unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::RateLimited);
//! assert_eq!(upstream.calls().len(), 2);
//! # Ok(())
//! # }
//! ```

mod batch;
mod pool;
mod upstream;
pub mod upstream_table;
pub mod wire;

pub use batch::{BATCH_EXPIRY, BatchConfig, BatchFull, BatchJobRecord, SimulatedBatch};
pub use pool::{InUse, TruePool, Usage, Violation, Window};
pub use upstream::{
    CallOutcome, CallRecord, Capacity, Classifier, Decision, Latency, PoolCounters, PoolSnapshot,
    SimulatedUpstream, UpstreamConfig, usage_of,
};

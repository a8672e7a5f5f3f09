#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod batch;
mod book;
mod config;
mod emulator;
mod files;
mod gemini;
mod http_util;
mod observe;
mod openrouter;
mod parse;

pub use batch::{BatchCounters, BatchEndpoint, BatchPool, HoldPhase, HoldView, JOB_LIFETIME};
pub use book::{LogEntry, Outcome};
pub use config::{ConfigError, DEFAULT_REJECT_LATENCY, EmulatorConfig, KeyEntry, PoolEntry};
pub use emulator::{Emulator, MAX_BODY_BYTES};
pub use observe::{Counters, InUseView, LimitsView, LogPage, PoolStats, Stats};

#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod batch;
mod book;
mod config;
mod emulator;
mod faults;
mod files;
mod gemini;
mod http_util;
mod observe;
mod openai;
mod openrouter;
mod parse;
mod vertex;

pub use batch::{BatchCounters, BatchEndpoint, BatchPool, HoldPhase, HoldView, JOB_LIFETIME};
pub use book::{LogEntry, Outcome};
pub use config::{ConfigError, DEFAULT_REJECT_LATENCY, EmulatorConfig, KeyEntry, PoolEntry};
pub use emulator::{Emulator, MAX_BODY_BYTES};
pub use faults::{
    DEFAULT_BURST_LENGTH, DEFAULT_OVERSIZED_BODY_BYTES, DEFAULT_SLOW_BODY_BYTES_PER_SECOND, Fault,
    FaultConfig,
};
pub use observe::{Counters, InUseView, LimitsView, LogPage, PoolStats, Stats};

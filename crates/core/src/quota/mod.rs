//! The quota model: pools, four dimensions, the Pacific day, admission, learning and costs.
//!
//! A quota belongs to a [`PoolId`] (provider, project, pool). [`QuotaStore::admit`] answers
//! whether a [`Cost`] may be sent now, reserving it atomically on every dimension
//! ([`Admission::Go`]), when to come back ([`Admission::WaitUntil`]) or until when the pool is
//! done ([`Admission::ExhaustedUntil`]). Errors and headers from the upstream teach the model
//! the real limits (`observe_error`, `observe_success`). [`PriceTable`] prices a request before
//! it is sent. `docs/quota-model.md` explains the model to users.
//!
//! ```
//! use imagegate_core::quota::{Admission, Cost, Limits, MemoryQuotaStore, PoolConfig, PoolId, PACIFIC};
//!
//! let now: jiff::Timestamp = "2026-11-23T10:00:00Z".parse()?;
//! let id = PoolId::new("gemini", "proj-a", "gemini-2.5-flash-image");
//! let limits = Limits { rpm: Some(1), ..Limits::NONE };
//! let store = MemoryQuotaStore::with_pools([PoolConfig::new(id.clone(), limits, PACIFIC.clone())], now);
//! let first = store.admit_now(&id, Cost::new(1, 1, 1_290), now)?;
//! assert!(first.is_go());
//! let second = store.admit_now(&id, Cost::new(1, 1, 1_290), now)?;
//! assert!(matches!(second, Admission::WaitUntil { .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::str::FromStr;

use jiff::tz::TimeZone;
pub use crate::dimension::Dimension;
use crate::error::Error;

mod admission;
mod config;
mod cost;
mod file_store;
mod ledger;
mod observe;
mod pool;
mod price;
mod snapshot;
mod status;
mod store;
mod tier;

pub use admission::{Admission, Exhausted, Reservation};
pub use config::{ModelQuotaConfig, ProviderQuotaConfig, SharedPoolConfig, TokensPerImage};
pub use cost::{
    Cost, DEFAULT_TOKENS_PER_IMAGE, DEFAULT_TOKENS_PER_REFERENCE_IMAGE, ModelTokens,
    TokenEstimator, Usage,
};
pub use file_store::FileQuotaStore;
pub use ledger::PoolLedger;
pub use observe::{
    MAX_WINDOW_HOLD, RateLimitSnapshot, SharedPoolSuspicion, is_daily_refusal, plausible_delay,
    quota_id_says_per_day,
};
pub use pool::{Limits, PoolConfig, PoolId, zone_name, zone_named};
pub use price::{DEFAULT_BATCH_FACTOR, PerSize, PriceTable, PriceTableConfig};
pub use snapshot::LedgerSnapshot;
pub use status::{Block, BlockReason, DimensionStatus, PoolStatus, render_table};
pub use store::{MemoryQuotaStore, QuotaStore};
pub use tier::{ModelFamily, Tier, preset};

/// The zone Gemini's daily quotas reset in: midnight America/Los_Angeles.
pub static PACIFIC: std::sync::LazyLock<TimeZone> = std::sync::LazyLock::new(|| {
    // The bundled tz database always has this zone; fall back to a fixed PST offset only so
    // that a broken build cannot panic.
    TimeZone::get("America/Los_Angeles").unwrap_or_else(|_| TimeZone::fixed(jiff::tz::offset(-8)))
});

/// Parsed here rather than beside the type so that `dimension` imports nothing: the error type
/// names a dimension, and a dimension's parse error is an error.
impl FromStr for Dimension {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_lowercase().as_str() {
            "rpm" => Ok(Dimension::Rpm),
            "rpd" => Ok(Dimension::Rpd),
            "tpm" => Ok(Dimension::Tpm),
            "ipm" => Ok(Dimension::Ipm),
            other => Err(Error::config(format!(
                "unknown quota dimension `{other}`: expected rpm, rpd, tpm or ipm"
            ))),
        }
    }
}

/// The next midnight in `zone` strictly after `now`: when a daily quota resets.
///
/// Computed on the zone's calendar, so it is right on the days daylight saving starts and ends
/// (a Pacific day is then 23 or 25 hours long).
pub fn next_midnight(now: jiff::Timestamp, zone: &TimeZone) -> jiff::Timestamp {
    let zoned = now.to_zoned(zone.clone());
    zoned
        .date()
        .tomorrow()
        .and_then(|d| d.to_zoned(zone.clone()))
        .map(|z| z.timestamp())
        .unwrap_or(jiff::Timestamp::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_pacific_midnight_follows_daylight_saving() {
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        // An ordinary winter day: PST, UTC-8.
        assert_eq!(
            next_midnight(at("2026-11-22T20:00:00Z"), &PACIFIC),
            at("2026-11-23T08:00:00Z")
        );
        // 2026-03-08: clocks spring forward; the next midnight is 00:00 PDT (UTC-7) on the 9th.
        assert_eq!(
            next_midnight(at("2026-03-08T12:00:00Z"), &PACIFIC),
            at("2026-03-09T07:00:00Z")
        );
        // 2026-11-01: clocks fall back; the day is 25 hours long and ends at 08:00 UTC on the 2nd.
        assert_eq!(
            next_midnight(at("2026-11-01T07:30:00Z"), &PACIFIC),
            at("2026-11-02T08:00:00Z")
        );
        // Exactly at midnight: the *next* one.
        assert_eq!(
            next_midnight(at("2026-11-23T08:00:00Z"), &PACIFIC),
            at("2026-11-24T08:00:00Z")
        );
    }
}

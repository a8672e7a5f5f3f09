//! The dry run's time estimate, from the configured limits of the pools the batch draws on.
//!
//! A deliberately simple bound, not the simulator: each call makes one image, so the pools
//! together make at most `sum over pools of min(rpm, ipm)` images a minute, and at most
//! `sum of rpd` a day. The estimate is `images / per-minute capacity` (plus whole days when the
//! daily limits are the tighter bound). Upstream latency, 429s and `--concurrency` are not in
//! it: with few calls in flight and slow answers, the real run is slower. A pool with no
//! configured per-minute limit leaves the time unbounded by configuration, and it says so.

use std::collections::BTreeMap;

use imagegate_core::quota::PoolConfig;
use serde::Serialize;

/// The estimated time and how it was computed.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TimeEstimate {
    /// Seconds to make the images, when the limits bound it.
    pub seconds: Option<f64>,
    /// Images a minute the pools allow together (None: some pool has no per-minute limit).
    pub images_per_minute: Option<u64>,
    /// Images a day the pools allow together, when every pool has a daily limit.
    pub images_per_day: Option<u64>,
    /// The method, in words.
    pub method: String,
}

/// Estimates the time to make `images` on `pools` (duplicates, same pool id, count once).
pub(crate) fn time_for(images: u64, pools: &[PoolConfig]) -> TimeEstimate {
    let mut distinct: BTreeMap<String, &PoolConfig> = BTreeMap::new();
    for pool in pools {
        distinct.entry(pool.id.to_string()).or_insert(pool);
    }
    let per_minute: Option<u64> = distinct
        .values()
        .map(|pool| match (pool.limits.rpm, pool.limits.ipm) {
            (Some(rpm), Some(ipm)) => Some(rpm.min(ipm)),
            (rpm, ipm) => rpm.or(ipm),
        })
        .sum();
    let per_day: Option<u64> = distinct.values().map(|pool| pool.limits.rpd).sum();
    let names: Vec<String> = distinct.keys().cloned().collect();
    let Some(per_minute) = per_minute.filter(|n| *n > 0) else {
        return TimeEstimate {
            seconds: None,
            images_per_minute: None,
            images_per_day: per_day,
            method: format!(
                "unbounded by configuration: a pool of {} has no per-minute limit, so the \
                 time depends on upstream latency and --concurrency",
                names.join(", ")
            ),
        };
    };
    #[allow(clippy::cast_precision_loss)]
    let mut seconds = images as f64 * 60.0 / per_minute as f64;
    let mut method = format!(
        "{images} image(s) at {per_minute} a minute (one image per call; the sum over pools \
         {} of min(RPM, IPM)); latency and 429s not counted",
        names.join(", ")
    );
    if let Some(per_day) = per_day.filter(|d| *d > 0 && images > *d) {
        // Each full day's quota used up waits for the next day.
        let full_days = (images - 1) / per_day;
        #[allow(clippy::cast_precision_loss)]
        {
            seconds += full_days as f64 * 86_400.0;
        }
        method.push_str(&format!(
            "; {per_day} a day in all, so {full_days} daily reset(s) to wait for"
        ));
    }
    TimeEstimate {
        seconds: Some(seconds),
        images_per_minute: Some(per_minute),
        images_per_day: per_day,
        method,
    }
}

#[cfg(test)]
mod tests {
    use imagegate_core::quota::{Limits, PACIFIC, PoolId};

    use super::*;

    fn pool(project: &str, rpm: Option<u64>, rpd: Option<u64>) -> PoolConfig {
        PoolConfig::new(
            PoolId::new("gemini", project, "m"),
            Limits {
                rpm,
                rpd,
                ..Limits::NONE
            },
            PACIFIC.clone(),
        )
    }

    #[test]
    fn pools_add_up_and_a_shared_pool_counts_once() {
        let a = pool("a", Some(10), None);
        let estimate = time_for(60, &[a.clone(), a, pool("b", Some(20), None)]);
        assert_eq!(estimate.images_per_minute, Some(30));
        assert_eq!(estimate.seconds, Some(120.0));
    }

    #[test]
    fn daily_limits_add_resets_and_no_rpm_is_unbounded() {
        let estimate = time_for(250, &[pool("a", Some(100), Some(100))]);
        assert_eq!(estimate.seconds, Some(150.0 + 2.0 * 86_400.0));
        assert_eq!(time_for(5, &[pool("a", None, None)]).seconds, None);
    }
}

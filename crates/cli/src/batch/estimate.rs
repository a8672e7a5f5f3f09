//! The dry run's time estimate, from the configured limits of the pools the batch draws on.
//!
//! Two numbers. [`simulated`] runs the simulator's engine (`imagegate_sim::engine::run`, the
//! `imagegate` strategy: the router over the targets) in paused time on a scenario made from
//! the configuration: the true upstream pools are the configured limits, every image one job
//! arriving at once, `--concurrency` jobs in flight, and an ASSUMED upstream latency
//! ([`ASSUMED_LATENCY`]) since a dry run has no measurement. [`time_for`] is the simple bound
//! it is checked against (a lower bound), and the fallback when the engine cannot model a target (the mock
//! provider): each call makes one image, so the pools together make at most
//! `sum over pools of min(rpm, ipm)` images a minute and `sum of rpd` a day; the bound is the
//! minute windows (and day resets) the images must wait for. Upstream latency, 429s and `--concurrency` are not in
//! it: with few calls in flight and slow answers, the real run is slower. A pool with no
//! configured per-minute limit leaves the time unbounded by configuration, and it says so.

use std::collections::BTreeMap;
use std::path::Path;

use imagegate_core::quota::PoolConfig;
use imagegate_sim::{scenario::Scenario, strategy::StrategyName};
use jiff::Timestamp;
use serde::Serialize;

/// The upstream latency the simulation assumes (uniform range): Gemini image calls commonly
/// take 8 to 20 seconds.
pub(crate) const ASSUMED_LATENCY: &str = "8s..20s";

/// One target the batch may send to: the pool it draws on and its model.
#[derive(Debug, Clone)]
pub(crate) struct PlannedTarget {
    pub pool: PoolConfig,
    pub model: String,
}

/// The simulator's estimate.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Simulated {
    /// Simulated seconds from the start to the last image.
    pub seconds: f64,
    pub upstream_calls: u64,
    pub upstream_429: u64,
    /// Images the simulation could not make (e.g. a day limit of 0).
    pub failed: u64,
    pub method: String,
}

/// Runs the simulator's engine over `images` one-image jobs on `targets` (in route order).
///
/// # Errors
/// Why the engine cannot model this configuration (a provider it does not simulate, a
/// scenario it refuses); the caller falls back to [`time_for`].
pub(crate) fn simulated(
    images: u64,
    targets: &[PlannedTarget],
    concurrency: usize,
) -> Result<Simulated, String> {
    if images == 0 || targets.is_empty() {
        return Err("nothing to simulate".to_owned());
    }
    // A pool still learning its limits has no true quota to simulate: the run would look as
    // fast as the latency allows, which the first 429 will disprove.
    if let Some(pool) = targets.iter().map(|t| &t.pool).find(|p| unknown(p)) {
        return Err(format!(
            "the limits of {} are not known yet (no `tier` configured; they are learned \
             from the first 429)",
            pool.id
        ));
    }
    let text = scenario_text(images, targets, concurrency)?;
    let scenario = Scenario::parse(Path::new("dry-run.toml"), &text).map_err(|e| e.to_string())?;
    let run = imagegate_sim::engine::run(&scenario, StrategyName::Imagegate)?;
    let report = run.report;
    Ok(Simulated {
        seconds: report.makespan_s,
        upstream_calls: report.upstream_calls,
        upstream_429: report.upstream_429,
        failed: report.failed,
        method: format!(
            "the simulator's engine (imagegate strategy) over {images} one-image job(s), \
             --concurrency {concurrency}, the configured limits as the true quotas, an assumed \
             upstream latency of {ASSUMED_LATENCY} and no 503s"
        ),
    })
}

/// The scenario TOML (docs/simulate.md) for this batch.
fn scenario_text(
    images: u64,
    targets: &[PlannedTarget],
    concurrency: usize,
) -> Result<String, String> {
    let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned());
    let mut text = format!(
        "name = \"batch dry run\"\nstart = {}\nseed = 0\n\n[workload]\njobs = {images}\n\
         arrival = \"burst\"\ndeadline = \"3650days\"\n\n[upstream]\nlatency = {}\n\
         overload_rate = 0.0\n",
        quote(&Timestamp::now().to_string()),
        quote(ASSUMED_LATENCY)
    );
    let mut pools: BTreeMap<String, &PoolConfig> = BTreeMap::new();
    for target in targets {
        let provider = target.pool.id.provider.as_str();
        if imagegate_sim::providers::kind_named(provider).is_none() {
            return Err(format!("the simulator does not model `{provider}` targets"));
        }
        pools
            .entry(target.pool.id.to_string())
            .or_insert(&target.pool);
    }
    let limits = |pool: &PoolConfig| {
        let mut out = Vec::new();
        for (key, value) in [
            ("rpm", pool.limits.rpm),
            ("rpd", pool.limits.rpd),
            ("ipm", pool.limits.ipm),
            ("tpm", pool.limits.tpm),
        ] {
            if let Some(value) = value {
                out.push(format!("{key} = {value}"));
            }
        }
        out
    };
    for pool in pools.values() {
        let mut models: Vec<String> = pool.models.clone();
        for target in targets.iter().filter(|t| t.pool.id == pool.id) {
            if !models.contains(&target.model) {
                models.push(target.model.clone());
            }
        }
        let models: Vec<String> = models.iter().map(|m| quote(m)).collect();
        text.push_str(&format!(
            "\n[[upstream.pool]]\nprovider = {}\nproject = {}\nmodels = [{}]\n",
            quote(&pool.id.provider),
            quote(&pool.id.project),
            models.join(", ")
        ));
        for line in limits(pool) {
            text.push_str(&line);
            text.push('\n');
        }
    }
    text.push_str(&format!(
        "\n[client]\nconcurrency = {}\n",
        concurrency.max(1)
    ));
    for target in targets {
        let known = limits(&target.pool);
        text.push_str(&format!(
            "\n[[client.target]]\nprovider = {}\nproject = {}\nmodel = {}\npool = {}\n",
            quote(&target.pool.id.provider),
            quote(&target.pool.id.project),
            quote(&target.model),
            quote(&target.pool.id.pool),
        ));
        if !known.is_empty() {
            text.push_str(&format!("limits = {{ {} }}\n", known.join(", ")));
        }
    }
    Ok(text)
}

/// True for a pool whose per-minute limits are not known yet (a tiered provider with no
/// `tier` configured and no limits of its own): they will be learned, not estimated.
fn unknown(pool: &PoolConfig) -> bool {
    pool.learning && pool.limits.rpm.is_none() && pool.limits.ipm.is_none()
}

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
    let learning: Vec<String> = distinct
        .iter()
        .filter(|(_, pool)| unknown(pool))
        .map(|(name, _)| name.clone())
        .collect();
    if !learning.is_empty() {
        return TimeEstimate {
            seconds: None,
            images_per_minute: None,
            images_per_day: per_day,
            method: format!(
                "unknown: the limits of {} are not known yet (no `tier` configured; imagegate \
                 learns them from the first 429). Set `tier` or the limits in \
                 [providers.NAME.quota] for an estimate",
                learning.join(", ")
            ),
        };
    }
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
    // Per-minute windows: the first `per_minute` images go at once, each further batch of
    // them waits for the next window. Daily limits: each full day's quota waits for a reset.
    let (days, last_day) = match per_day.filter(|d| *d > 0 && images > *d) {
        Some(per_day) => {
            let days = (images - 1) / per_day;
            (days, images - days * per_day)
        }
        None => (0, images),
    };
    let windows = last_day.div_ceil(per_minute).saturating_sub(1);
    #[allow(clippy::cast_precision_loss)]
    let seconds = days as f64 * 86_400.0 + windows as f64 * 60.0;
    let mut method = format!(
        "a lower bound from the limits alone: {images} image(s) at {per_minute} a minute (one \
         image per call; the sum over pools {} of min(RPM, IPM)), so {windows} more minute \
         window(s) to wait for; latency and 429s not counted",
        names.join(", ")
    );
    if days > 0 {
        method.push_str(&format!("; {days} daily reset(s) to wait for"));
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
        let estimate = time_for(61, &[a.clone(), a, pool("b", Some(20), None)]);
        assert_eq!(estimate.images_per_minute, Some(30));
        assert_eq!(
            estimate.seconds,
            Some(120.0),
            "30 now, 30 a minute later, 1 after two"
        );
        assert_eq!(
            time_for(30, &[pool("c", Some(30), None)]).seconds,
            Some(0.0)
        );
    }

    #[test]
    fn the_simulator_paces_a_limited_pool() {
        let target = PlannedTarget {
            pool: pool("a", Some(10), None),
            model: "m".to_owned(),
        };
        let sim = simulated(20, std::slice::from_ref(&target), 4).unwrap();
        assert_eq!(sim.failed, 0, "{sim:?}");
        assert!(
            sim.seconds >= 60.0,
            "20 images at 10 RPM take over a minute: {sim:?}"
        );
        assert!(sim.seconds < 300.0, "{sim:?}");
        assert!(
            simulated(
                1,
                &[PlannedTarget {
                    pool: PoolConfig::new(
                        PoolId::new("mock", "p", "m"),
                        Limits::NONE,
                        PACIFIC.clone()
                    ),
                    model: "m".into()
                }],
                1
            )
            .is_err()
        );
    }

    #[test]
    fn daily_limits_add_resets_and_no_rpm_is_unbounded() {
        let estimate = time_for(250, &[pool("a", Some(100), Some(100))]);
        assert_eq!(
            estimate.seconds,
            Some(2.0 * 86_400.0),
            "100, 100, then 50 at once"
        );
        assert_eq!(time_for(5, &[pool("a", None, None)]).seconds, None);
    }

    #[test]
    fn a_pool_still_learning_its_limits_is_not_estimated() {
        let learning = pool("a", None, None).with_learning(true);
        let bound = time_for(50, std::slice::from_ref(&learning));
        assert_eq!(bound.seconds, None);
        assert!(bound.method.contains("not known yet"), "{}", bound.method);
        assert!(bound.method.contains("tier"), "{}", bound.method);
        let target = PlannedTarget {
            pool: learning,
            model: "m".to_owned(),
        };
        let why = simulated(50, &[target], 4).unwrap_err();
        assert!(why.contains("not known yet"), "{why}");
        // A learning pool with a configured per-minute limit is estimated as usual.
        let rpm_known = pool("b", Some(10), None).with_learning(true);
        assert!(time_for(20, &[rpm_known]).seconds.is_some());
    }
}

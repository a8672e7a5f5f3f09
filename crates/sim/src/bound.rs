//! The bound: the most jobs any strategy could complete, from the true limits alone.
//!
//! The oracle is a greedy first-come-first-served sender, not an optimum: under overload with
//! short deadlines it can lose to a sender that picks better. The bound is what no sender can
//! beat. Per pool a client target reaches, count the admissions its true limits allow between
//! the start and the horizon (the latest deadline minus the minimum latency: an image admitted
//! later cannot arrive in time), within its daily limit: requests are capped by RPM (per
//! window) and RPD (per day), images by IPM and by requests times the largest job (a call
//! never carries more images than one job needs). Then the jobs, smallest first, that fit in
//! the images of every pool together, capped by the jobs. Token limits and per-job deadlines
//! are left out: either could only lower it, so what remains is still an upper bound.
//!
//! A batch API on a reached pool adds every job with at least its shortest turnaround between
//! arrival and deadline (a batch job could return it in time; its quota is left out, as it could
//! only lower the count); the pools' images then go to the other jobs.

use std::time::Duration;

use imagegate_mock::sim::{TruePool, Window};
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::engine::jobs;
use crate::scenario::Scenario;

/// Windows of `width` a sliding limit can fill in `[start, end]`: the span cut into blocks of
/// `width`, each inside one window.
fn sliding_windows(start: Timestamp, end: Timestamp, width: Duration) -> u64 {
    let span = u64::try_from(end.as_millisecond() - start.as_millisecond()).unwrap_or(0);
    let width = u64::try_from(width.as_millis()).unwrap_or(u64::MAX).max(1);
    span / width + 1
}

/// Calendar minutes (UTC, where fixed windows turn) that `[start, end]` touches.
fn fixed_windows(start: Timestamp, end: Timestamp) -> u64 {
    let minute = |t: Timestamp| t.as_second().div_euclid(60);
    u64::try_from(minute(end) - minute(start)).unwrap_or(0) + 1
}

/// Days in `zone` that `[start, end]` touches.
fn days(start: Timestamp, end: Timestamp, zone: &TimeZone) -> Option<u64> {
    let first = start.to_zoned(zone.clone()).date();
    let last = end.to_zoned(zone.clone()).date();
    let span = first.until(last).ok()?;
    u64::try_from(span.get_days()).ok().map(|d| d + 1)
}

/// What `pool` can admit in `[start, end]`: (requests, images); `u64::MAX` for no limit.
pub fn admissions(pool: &TruePool, start: Timestamp, end: Timestamp, per_call: u32) -> (u64, u64) {
    if end < start {
        return (0, 0);
    }
    let windows = match pool.window {
        Window::Sliding => sliding_windows(start, end, Duration::from_secs(60)),
        Window::Fixed => fixed_windows(start, end),
    };
    let limits = &pool.limits;
    let mut requests = u64::MAX;
    if let Some(rpm) = limits.rpm {
        requests = requests.min(rpm.saturating_mul(windows));
    }
    if let Some(rpd) = limits.rpd {
        let days = days(start, end, &pool.day_zone).unwrap_or(u64::MAX);
        requests = requests.min(rpd.saturating_mul(days));
    }
    let mut images = requests.saturating_mul(u64::from(per_call));
    if let Some(ipm) = limits.ipm {
        images = images.min(ipm.saturating_mul(windows));
    }
    (requests, images)
}

/// The most jobs any strategy could complete in `scenario`.
pub fn bound(scenario: &Scenario) -> u64 {
    let all = jobs(scenario);
    let Some(latest) = all.iter().map(|j| j.deadline).max() else {
        return 0;
    };
    let min_latency = scenario.upstream.latency.min;
    let Ok(horizon) = latest.checked_sub(
        jiff::SignedDuration::try_from(min_latency).unwrap_or(jiff::SignedDuration::MAX),
    ) else {
        return 0;
    };
    let per_call = all.iter().map(|j| j.images).max().unwrap_or(1);
    let reached = |pool: &crate::scenario::Pool| {
        scenario.client.targets.iter().any(|t| {
            t.kind == pool.kind && t.project == pool.project && pool.pool.models.contains(&t.model)
        })
    };
    let mut images: u64 = 0;
    for pool in scenario.upstream.pools.iter().filter(|p| reached(p)) {
        let (_, pool_images) = admissions(&pool.pool, scenario.start, horizon, per_call);
        images = images.saturating_add(pool_images);
    }
    let fastest_batch = scenario
        .upstream
        .pools
        .iter()
        .filter(|p| reached(p))
        .filter_map(|p| p.batch.map(|b| b.turnaround.min))
        .filter(|t| *t <= imagegate_mock::sim::BATCH_EXPIRY)
        .min();
    let by_batch = |job: &crate::strategy::Job| {
        fastest_batch.is_some_and(|t| imagegate_core::clock::add(job.arrival, t) <= job.deadline)
    };
    let mut done = all.iter().filter(|j| by_batch(j)).count() as u64;
    let mut sizes: Vec<u64> = all
        .iter()
        .filter(|j| !by_batch(j))
        .map(|j| u64::from(j.images))
        .collect();
    sizes.sort_unstable();
    for size in sizes {
        if size > images {
            break;
        }
        images -= size;
        done += 1;
    }
    done
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed expectation is a failed test

    use std::path::Path;

    use super::*;

    /// A scenario of `jobs` bursting at `start`, deadline `deadline`, fixed `latency`, one pool
    /// with `limits` (TOML keys) reached by one target, plus `extra` TOML for the workload.
    fn scenario(
        start: &str,
        jobs: u64,
        deadline: &str,
        latency: &str,
        limits: &str,
        extra: &str,
    ) -> Scenario {
        let text = format!(
            r#"
name = "bound"
start = "{start}"
seed = 1
[workload]
jobs = {jobs}
deadline = "{deadline}"
{extra}
[upstream]
latency = "{latency}"
[[upstream.pool]]
provider = "gemini"
project = "p"
models = ["m"]
{limits}
[[upstream.pool]]
provider = "gemini"
project = "unreached"
models = ["m"]
rpm = 1000
[client]
concurrency = 4
[[client.target]]
provider = "gemini"
project = "p"
model = "m"
"#
        );
        Scenario::parse(Path::new("bound.toml"), &text).unwrap()
    }

    const NOON: &str = "2026-03-04T12:00:00-08:00";

    #[test]
    fn rpm_over_the_horizon_the_unreached_pool_adds_nothing() {
        // Horizon 5 min - 20 s = 280 s: blocks [0,60) .. [240,280]: 5 windows x 10 = 50.
        let s = scenario(NOON, 100, "5m", "20s", "rpm = 10", "");
        assert_eq!(bound(&s), 50);
    }

    #[test]
    fn a_batch_api_adds_the_jobs_its_fastest_turnaround_returns_in_time() {
        // 5-minute deadlines: a 4-minute turnaround could return all 100; a 6-minute one none,
        // leaving the interactive 50.
        let fast = scenario(
            NOON,
            100,
            "5m",
            "20s",
            "rpm = 10\nbatch_turnaround = \"4m..40m\"",
            "",
        );
        assert_eq!(bound(&fast), 100);
        let slow = scenario(
            NOON,
            100,
            "5m",
            "20s",
            "rpm = 10\nbatch_turnaround = \"6m..40m\"",
            "",
        );
        assert_eq!(bound(&slow), 50);
    }

    #[test]
    fn capped_by_the_jobs() {
        let s = scenario(NOON, 20, "5m", "20s", "rpm = 10", "");
        assert_eq!(bound(&s), 20);
    }

    #[test]
    fn within_rpd() {
        let s = scenario(NOON, 100, "5m", "20s", "rpm = 10\nrpd = 30", "");
        assert_eq!(bound(&s), 30);
    }

    #[test]
    fn rpd_twice_when_the_horizon_crosses_the_pools_midnight() {
        // 23:58 Pacific + 5 min - 1 s ends at 00:02:59 the next Pacific day: two days x 3.
        let s = scenario("2026-03-04T23:58:00-08:00", 100, "5m", "1s", "rpd = 3", "");
        assert_eq!(bound(&s), 6);
    }

    #[test]
    fn images_per_minute_and_images_per_job() {
        // 5 windows x 10 images = 50 images; 2 per job: 25 jobs.
        let s = scenario(
            NOON,
            100,
            "5m",
            "20s",
            "rpm = 100\nipm = 10",
            "images_per_job = 2",
        );
        assert_eq!(bound(&s), 25);
    }

    #[test]
    fn fixed_windows_count_the_calendar_minutes_touched() {
        // 12:00:30 .. 12:05:10 touches minutes 12:00 .. 12:05: 6 x 10 = 60.
        let s = scenario(
            "2026-03-04T12:00:30-08:00",
            100,
            "5m",
            "20s",
            "rpm = 10\nwindow = \"fixed\"",
            "",
        );
        assert_eq!(bound(&s), 60);
    }

    #[test]
    fn arrivals_stretch_the_horizon_to_the_last_deadline() {
        // 40 jobs one every 6 s: the last arrives at 234 s, its deadline 294 s, horizon 284 s:
        // 5 windows x 5 = 25.
        let s = scenario(NOON, 40, "1m", "10s", "rpm = 5", "arrival = \"10/min\"");
        assert_eq!(bound(&s), 25);
    }

    #[test]
    fn smaller_jobs_fit_first_across_classes() {
        // 50 images over the horizon; classes dealt 1:1, jobs of 1 and 4 images, 60 jobs:
        // 30 one-image jobs (30 images), then 5 four-image jobs (20 images): 35.
        let classes = r#"
[[workload.class]]
name = "small"
share = 1
images_per_job = 1
[[workload.class]]
name = "large"
share = 1
images_per_job = 4
"#;
        let s = scenario(NOON, 60, "5m", "20s", "ipm = 10", classes);
        assert_eq!(bound(&s), 35);
    }
}

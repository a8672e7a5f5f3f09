//! Each strategy pins one known trajectory: a small scenario where its code implies the exact
//! sequence of upstream calls.

#![allow(clippy::unwrap_used, clippy::panic)] // a failed expectation is a failed test

use imagegate_mock::sim::{CallOutcome, CallRecord};
use imagegate_sim::world::derive_seed;
use imagegate_sim::{
    engine::JobOutcome, engine::Run, engine::run, scenario::Scenario, strategy::StrategyName,
};
use jiff::Timestamp;
use std::path::Path;

const T0: &str = "2026-03-04T17:00:00Z";

fn scenario(jobs: u64, latency: &str, pools: &str, targets: &str) -> Scenario {
    let text = format!(
        r#"
name = "pinned"
start = "{T0}"
seed = 42
[workload]
jobs = {jobs}
deadline = "1h"
[upstream]
latency = "{latency}"
reject_latency = "500ms"
{pools}
[client]
concurrency = 1
{targets}
"#
    );
    Scenario::parse(Path::new("pinned.toml"), &text).unwrap()
}

fn pool(project: &str, model: &str, limits: &str) -> String {
    format!(
        "[[upstream.pool]]\nprovider = \"gemini\"\nproject = \"{project}\"\nmodels = [\"{model}\"]\n{limits}\n"
    )
}

fn target(project: &str, model: &str, extra: &str) -> String {
    format!(
        "[[client.target]]\nprovider = \"gemini\"\nproject = \"{project}\"\nmodel = \"{model}\"\n{extra}\n"
    )
}

/// Every call, in arrival order: (seconds after T0, project, model, status).
fn calls(run: &Run) -> Vec<(f64, String, String, u16)> {
    let t0: Timestamp = T0.parse().unwrap();
    let mut all: Vec<(String, CallRecord)> = run
        .calls
        .iter()
        .flat_map(|((_, project), calls)| calls.iter().map(|c| (project.clone(), c.clone())))
        .collect();
    all.sort_by_key(|(_, c)| c.at);
    all.into_iter()
        .map(|(project, c)| {
            let secs = c.at.duration_since(t0).as_secs_f64();
            (secs, project, c.model, c.status)
        })
        .collect()
}

fn outcomes(run: &Run) -> Vec<(u64, bool)> {
    let mut jobs: Vec<_> = run
        .jobs
        .iter()
        .map(|j| (j.index, matches!(j.outcome, JobOutcome::Completed(_))))
        .collect();
    jobs.sort();
    jobs
}

fn close(a: f64, b: f64) -> bool {
    // tokio's timer ticks in whole milliseconds and rounds sleeps up.
    (a - b).abs() <= 0.002
}

#[test]
fn naive_backoff_retries_five_times_on_the_first_model_and_never_falls_back() {
    let s = scenario(
        2,
        "10s",
        &(pool("proj-a", "m-first", "rpm = 1") + &pool("proj-a", "m-second", "")),
        &(target("proj-a", "m-first", "") + &target("proj-a", "m-second", "")),
    );
    let run = run(&s, StrategyName::NaiveBackoff).unwrap();
    let calls = calls(&run);
    // tenacity: after failed attempt n, uniform(0, min(60, 2 ** (n - 1))).
    let mut rng = fastrand::Rng::with_seed(derive_seed(42, "strategy/naive-backoff"));
    let mut expected = vec![0.0, 10.0];
    for n in 1..5 {
        let wait = rng.f64() * f64::from(1u32 << (n - 1));
        expected.push(expected.last().unwrap() + 0.5 + wait);
    }
    assert_eq!(calls.len(), 6, "{calls:?}");
    for (call, at) in calls.iter().zip(&expected) {
        assert!(close(call.0, *at), "{calls:?} vs {expected:?}");
        assert_eq!(
            call.2, "m-first",
            "RetryError's str() has no 429: no fallback"
        );
    }
    let statuses: Vec<u16> = calls.iter().map(|c| c.3).collect();
    assert_eq!(statuses, [200, 429, 429, 429, 429, 429]);
    assert_eq!(outcomes(&run), [(0, true), (1, false)]);
}

#[test]
fn naive_backoff_counts_eight_a_minute_from_its_creation() {
    let s = scenario(
        10,
        "1s",
        &pool("proj-a", "m", ""),
        &target("proj-a", "m", ""),
    );
    let run = run(&s, StrategyName::NaiveBackoff).unwrap();
    let times: Vec<f64> = calls(&run).iter().map(|c| c.0).collect();
    let expected = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 60.0, 61.0];
    assert_eq!(times.len(), expected.len());
    for (t, e) in times.iter().zip(expected) {
        assert!(close(*t, e), "{times:?}");
    }
}

#[test]
fn fixed_interval_sends_every_sixty_over_rpm_seconds_with_three_tries() {
    let s = scenario(
        4,
        "1s",
        &pool("proj-a", "m", "rpm = 2"),
        &target("proj-a", "m", "limits = { rpm = 10 }"),
    );
    let run = run(&s, StrategyName::FixedInterval).unwrap();
    let calls = calls(&run);
    let statuses: Vec<u16> = calls.iter().map(|c| c.3).collect();
    assert_eq!(
        statuses,
        [200, 200, 429, 429, 429, 429, 429, 429],
        "{calls:?}"
    );
    // One request every 60/10 = 6 s: the 429 sleeps (1 + u, 2 + u) fit inside the interval.
    for (call, at) in calls.iter().zip([0.0, 6.0, 12.0, 18.0, 24.0]) {
        assert!(close(call.0, at), "{calls:?}");
    }
    let mut rng = fastrand::Rng::with_seed(derive_seed(42, "strategy/fixed-interval"));
    let u: Vec<f64> = (0..3).map(|_| 2.0 * rng.f64()).collect();
    // Job 2 gives up after its third 429 and a last sleep of 4 + u; job 3 then waits out the
    // interval from the last send at 24 s.
    let job2_end = 24.5 + 4.0 + u[2];
    assert!(close(calls[5].0, job2_end.max(30.0)), "{calls:?}");
    for pair in calls[5..].windows(2) {
        assert!(pair[1].0 - pair[0].0 >= 6.0 - 0.002, "{calls:?}");
    }
    assert_eq!(
        outcomes(&run),
        [(0, true), (1, true), (2, false), (3, false)]
    );
}

#[test]
fn key_rotation_tries_the_next_key_once_then_gives_up() {
    let s = scenario(
        4,
        "1s",
        &(pool("proj-a", "m", "rpm = 1") + &pool("proj-b", "m", "rpm = 1")),
        &(target("proj-a", "m", "") + &target("proj-b", "m", "")),
    );
    let run = run(&s, StrategyName::KeyRotation).unwrap();
    let got: Vec<(f64, String, u16)> = calls(&run)
        .into_iter()
        .map(|(t, project, _, status)| (t, project, status))
        .collect();
    let expected = [
        (0.0, "proj-a", 200),
        (1.0, "proj-b", 200),
        (2.0, "proj-a", 429),
        (2.5, "proj-b", 429),
        (3.0, "proj-a", 429),
        (3.5, "proj-b", 429),
    ];
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for ((t, p, s), (et, ep, es)) in got.iter().zip(expected) {
        assert!(close(*t, et) && p == ep && *s == es, "{got:?}");
    }
    assert_eq!(
        outcomes(&run),
        [(0, true), (1, true), (2, false), (3, false)]
    );
}

#[test]
fn oracle_sends_exactly_when_the_window_frees() {
    let s = scenario(
        3,
        "10s",
        &pool("proj-a", "m", "rpm = 1"),
        &target("proj-a", "m", ""),
    );
    let run = run(&s, StrategyName::Oracle).unwrap();
    let calls = calls(&run);
    let times: Vec<f64> = calls.iter().map(|c| c.0).collect();
    assert_eq!(times, [0.0, 60.0, 120.0]);
    assert!(calls.iter().all(|c| c.3 == 200));
    assert_eq!(run.report.makespan_s, 130.0);
    let served = run.calls.values().flatten();
    assert_eq!(
        served.filter(|c| c.outcome == CallOutcome::Served).count(),
        3
    );
}

#[test]
fn imagegate_disables_an_unbilled_project_after_one_429_and_paces_the_next() {
    let s = scenario(
        2,
        "10s",
        &(pool("proj-nobill", "m", "rpm = 0") + &pool("proj-b", "m", "rpm = 1")),
        &(target("proj-nobill", "m", "limits = { rpm = 1 }")
            + &target("proj-b", "m", "limits = { rpm = 1 }")),
    );
    let run = run(&s, StrategyName::Imagegate).unwrap();
    let got: Vec<(f64, String, u16)> = calls(&run)
        .into_iter()
        .map(|(t, project, _, status)| (t, project, status))
        .collect();
    let expected = [
        (0.0, "proj-nobill", 429),
        (0.5, "proj-b", 200),
        (60.5, "proj-b", 200),
    ];
    assert_eq!(got.len(), expected.len(), "{got:?}");
    for ((t, p, s), (et, ep, es)) in got.iter().zip(expected) {
        assert!(close(*t, et) && p == ep && *s == es, "{got:?}");
    }
    assert_eq!(outcomes(&run), [(0, true), (1, true)]);
}

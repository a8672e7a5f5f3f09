//! The Batch API in the simulator: the `auto` policy against all-interactive sending, on the
//! shipped batch scenarios. The figures in docs/performance.md are these runs' output
//! (`cargo test -p imagegate-sim --release --test batch -- --nocapture`).

#![allow(clippy::unwrap_used, clippy::panic)] // a failed expectation is a failed test

use std::path::PathBuf;
use std::time::Duration;

use imagegate_mock::sim::Latency;
use imagegate_sim::scenario::{PoolBatch, ViaMode};
use imagegate_sim::{Scenario, StrategyName, StrategyReport, run, simulate};

fn dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/scenarios"
    ))
}

fn load(file: &str) -> Scenario {
    Scenario::load(&dir().join(file)).unwrap_or_else(|e| panic!("{e}"))
}

fn with_via(mut scenario: Scenario, via: ViaMode) -> Scenario {
    scenario.client.batch.via = via;
    scenario
}

/// The imagegate strategy's row, printed with the scenario's name.
fn imagegate(scenario: &Scenario, label: &str) -> StrategyReport {
    let report = run(scenario, StrategyName::Imagegate).unwrap().report;
    println!(
        "{} [{label}]: completed {} failed {} makespan_s {} cost_usd {} wasted_usd {} \
         batch_images {} calls {} 429 {}",
        scenario.name,
        report.completed,
        report.failed,
        report.makespan_s,
        report.cost_usd,
        report.wasted_usd,
        report.batch_images,
        report.upstream_calls,
        report.upstream_429,
    );
    report
}

#[test]
fn a_deadline_that_allows_the_batch_api_pays_about_half_and_delivers_every_image_in_time() {
    let scenario = load("batch-10k-due-30h.toml");
    let auto = imagegate(&scenario, "auto");
    let interactive = imagegate(
        &with_via(scenario.clone(), ViaMode::Interactive),
        "interactive",
    );
    let jobs = scenario.workload.jobs;
    // Like for like: interactively every image arrives in time too, at the full price.
    assert_eq!((interactive.completed, interactive.batch_images), (jobs, 0));
    assert_eq!((auto.completed, auto.failed, auto.lost), (jobs, 0, 0));
    assert_eq!(auto.batch_images, jobs);
    assert_eq!(auto.wasted_usd, 0.0);
    let ratio = auto.cost_usd / interactive.cost_usd;
    println!("cost ratio auto / interactive: {ratio:.4}");
    assert!(ratio <= 0.55, "{ratio}: {auto:?} vs {interactive:?}");
    // Every image in time: the latest job ended before the 30-hour deadline.
    assert!(auto.makespan_s < 30.0 * 3_600.0, "{auto:?}");
}

#[test]
fn the_oracle_takes_the_cheapest_plan_and_the_router_matches_its_cost() {
    let scenario = load("batch-10k-due-30h.toml");
    let report = simulate(&scenario, &[StrategyName::Oracle, StrategyName::Imagegate]).unwrap();
    println!("{}", report.table());
    let (oracle, router) = (&report.results[0], &report.results[1]);
    assert_eq!(oracle.completed, scenario.workload.jobs);
    assert_eq!(
        oracle.upstream_calls, 0,
        "every image through the batch API"
    );
    assert_eq!(report.bound, scenario.workload.jobs);
    assert!(
        router.cost_usd <= oracle.cost_usd + 1e-9,
        "{router:?} vs {oracle:?}"
    );
}

/// `scenario` with every job due `deadline` after it arrives.
fn due_in(mut scenario: Scenario, deadline: Duration) -> Scenario {
    scenario.workload.deadline = deadline;
    for class in &mut scenario.workload.classes {
        class.deadline = deadline;
    }
    scenario
}

/// `scenario` without any batch API: the simulator as it was before the Batch API.
fn without_batch(mut scenario: Scenario) -> Scenario {
    for pool in &mut scenario.upstream.pools {
        pool.batch = None;
    }
    scenario
}

#[test]
fn a_deadline_too_close_for_the_batch_api_is_served_exactly_as_without_it() {
    // The 10,000 images due in 4 hours (interactively they take about 2.8: all in time) and in
    // 2 hours (the per-minute windows leave some late): the batch API's 24-hour target fits
    // neither, and per-minute windows, not a daily quota, are what limit the pool, so nothing
    // spills: the run is the one without a batch API.
    for hours in [4, 2] {
        let scenario = due_in(
            load("batch-10k-due-30h.toml"),
            Duration::from_secs(hours * 3_600),
        );
        let auto = imagegate(&scenario, &format!("auto, due in {hours} h"));
        let today = imagegate(
            &without_batch(scenario),
            &format!("no batch API, due in {hours} h"),
        );
        assert_eq!(auto.batch_images, 0);
        assert_eq!(
            auto, today,
            "no slower (and no different) than without a batch API"
        );
    }
}

#[test]
fn on_the_mixed_day_the_catalog_goes_to_batch_and_late_previews_spill_there() {
    let scenario = load("batch-mixed-day.toml");
    let interactive_run = run(
        &with_via(scenario.clone(), ViaMode::Interactive),
        StrategyName::Imagegate,
    )
    .unwrap();
    // Interactively the day's 1,440 requests are gone by noon Pacific (six hours in).
    let served: Vec<_> = interactive_run
        .calls
        .values()
        .flatten()
        .filter(|c| c.outcome == imagegate_mock::sim::CallOutcome::Served)
        .map(|c| c.at)
        .collect();
    let last_of_day = served[1_439];
    let noon: jiff::Timestamp = "2026-03-04T12:00:00-08:00".parse().unwrap();
    println!(
        "interactively, the day's last request was admitted at {} Pacific",
        last_of_day.in_tz("America/Los_Angeles").unwrap().time()
    );
    let off = (last_of_day.as_second() - noon.as_second()).abs();
    assert!(
        off <= 15 * 60,
        "the quota ran out at {last_of_day}, not near noon"
    );
    let interactive = &interactive_run.report;
    let preview = |r: &StrategyReport| r.classes[0].completed_share;
    assert!(preview(interactive) < 0.3, "{interactive:?}");

    let auto = imagegate(&scenario, "auto");
    assert_eq!((auto.completed, auto.failed), (scenario.workload.jobs, 0));
    // The catalog (2,880 images) plus the previews after the pool parked went to the batch API.
    let catalog = scenario.workload.jobs / 2;
    assert!(auto.batch_images > catalog, "{auto:?}");
    assert!(auto.batch_images < scenario.workload.jobs, "{auto:?}");
    // Cheaper per delivered image.
    let per_image = |r: &StrategyReport| r.cost_usd / r.completed as f64;
    assert!(per_image(&auto) < 0.7 * per_image(interactive));
}

#[test]
fn a_batch_api_never_makes_a_shipped_scenario_worse() {
    // Every shipped scenario that has no batch API, given one on each Gemini pool: the router
    // completes at least as many jobs; where no deadline reaches the 24-hour minimum, exactly
    // the same run.
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut checked = 0;
    for file in files {
        let today = Scenario::load(&file).unwrap();
        if today.upstream.pools.iter().any(|p| p.batch.is_some()) {
            continue;
        }
        let mut with = today.clone();
        for pool in &mut with.upstream.pools {
            if pool.kind == imagegate_mock::sim::UpstreamKind::Gemini {
                pool.batch = Some(PoolBatch {
                    turnaround: Latency {
                        min: Duration::from_secs(1_800),
                        max: Duration::from_secs(8 * 3_600),
                    },
                    enqueued_tokens: None,
                });
            }
        }
        let before = imagegate(&today, "as shipped");
        let after = imagegate(&with, "with a batch API");
        let long = today
            .workload
            .classes
            .iter()
            .any(|c| c.deadline >= with.client.batch.min_deadline);
        if long {
            assert!(after.completed >= before.completed, "{}", today.name);
        } else {
            assert_eq!(after, before, "{}", today.name);
        }
        checked += 1;
    }
    assert!(checked >= 8, "{checked}");
}

#[test]
fn with_a_batch_api_the_same_seed_gives_the_same_run_and_another_seed_other_turnarounds() {
    let scenario = load("batch-mixed-day.toml");
    for name in [StrategyName::Oracle, StrategyName::Imagegate] {
        let (a, b) = (run(&scenario, name).unwrap(), run(&scenario, name).unwrap());
        assert_eq!(a.report, b.report, "{name}");
        assert_eq!(a.calls, b.calls, "{name}");
        assert_eq!(a.jobs, b.jobs, "{name}");
        assert_eq!(a.batch_jobs, b.batch_jobs, "{name}");
        assert!(!a.batch_jobs.is_empty(), "{name}");
    }
    let mut other = scenario.clone();
    other.seed += 1;
    let a = run(&scenario, StrategyName::Oracle).unwrap();
    let b = run(&other, StrategyName::Oracle).unwrap();
    assert_ne!(a.batch_jobs, b.batch_jobs);
}

#[test]
fn a_batch_job_past_48_hours_expires_unpaid_and_the_oracle_does_not_count_on_it() {
    let mut scenario = due_in(
        load("batch-10k-due-30h.toml"),
        Duration::from_secs(72 * 3_600),
    );
    scenario.workload.jobs = 50;
    for pool in &mut scenario.upstream.pools {
        pool.batch = Some(PoolBatch {
            turnaround: Latency {
                min: Duration::from_secs(49 * 3_600),
                max: Duration::from_secs(50 * 3_600),
            },
            enqueued_tokens: None,
        });
    }
    let forced = with_via(scenario.clone(), ViaMode::Batch);
    let batch = run(&forced, StrategyName::Imagegate).unwrap();
    assert_eq!(batch.report.completed, 0);
    assert_eq!(batch.report.failed, 50);
    assert_eq!((batch.report.cost_usd, batch.report.batch_images), (0.0, 0));
    assert!(batch.batch_jobs.iter().all(|j| j.expired));
    let expired_at = 48 * 3_600;
    assert!(batch.jobs.iter().all(|j| {
        j.end.as_second() - j.arrival.as_second() == expired_at
            && matches!(&j.outcome, imagegate_sim::JobOutcome::Failed(why) if why.contains("expired"))
    }));
    let oracle = run(&scenario, StrategyName::Oracle).unwrap();
    assert_eq!(oracle.report.completed, 50);
    assert!(oracle.batch_jobs.is_empty());
}

//! What surrounds the decisions: the priority queue, concurrency limits, the budget, the cache,
//! splitting images into calls, daily-limit warnings and composition.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use imagegate_core::quota::{Limits, PerSize};
use imagegate_core::{
    Capabilities, ErrorKind, GenerateRequest, ImageProvider, ImageSize, Priority, quota::PriceTable,
};
use imagegate_mock::{Outcome, ScriptedProvider};
use imagegate_router::{Budget, BudgetScope, Event, RequestOptions, Router, Target};

fn request() -> GenerateRequest {
    GenerateRequest::new("a lighthouse at dusk")
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

/// Lets spawned tasks run until they block (on paused time, before any timer fires).
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn the_queue_serves_interactive_before_background_and_first_come_first_served_within() {
    let clock = clock();
    let slow = Outcome::image().after(Duration::from_secs(10));
    let a = always("a", &clock, slow);
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .concurrency(1)
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for (prompt, priority) in [
        ("bg-first", Priority::Background),
        ("bg-second", Priority::Background),
        ("bg-third", Priority::Background),
        ("ia-first", Priority::Interactive),
        ("ia-second", Priority::Interactive),
    ] {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            router
                .generate(&GenerateRequest::new(prompt).with_priority(priority))
                .await
                .unwrap()
        }));
        settle().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let order: Vec<String> = a.calls().iter().map(|c| c.request.prompt.clone()).collect();
    assert_eq!(
        order,
        ["bg-first", "ia-first", "ia-second", "bg-second", "bg-third"]
    );
    let starts: Vec<u64> = a
        .calls()
        .iter()
        .map(|c| imagegate_core::hints::until(t0(), c.at).as_secs())
        .collect();
    assert_eq!(starts, [0, 10, 20, 30, 40], "one call at a time");
}

#[tokio::test(start_paused = true)]
async fn per_target_concurrency_overflows_to_the_next_target_then_queues() {
    let clock = clock();
    let slow = || Outcome::image().after(Duration::from_secs(10));
    let a = always("a", &clock, slow());
    let b = always("b", &clock, slow());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .target(target("b", &b, unlimited()))
        .target_concurrency(2)
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            router
                .generate(&GenerateRequest::new(format!("p{i}")))
                .await
                .unwrap()
        }));
        settle().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = |p: &Arc<ScriptedProvider>| -> Vec<u64> {
        p.calls()
            .iter()
            .map(|c| imagegate_core::hints::until(t0(), c.at).as_secs())
            .collect()
    };
    // Two on A, two on B at once; the last two wait for a freed slot (on A, the preferred).
    assert_eq!(secs(&a), [0, 0, 10, 10]);
    assert_eq!(secs(&b), [0, 0]);
}

#[tokio::test(start_paused = true)]
async fn the_budget_stops_before_sending() {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let prices = PriceTable::default().with_model("model-a", PerSize::flat(0.05));
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .prices(prices)
        .budget(Budget::new(Some(0.10), None))
        .build()
        .unwrap();
    let mut events = router.subscribe();
    let first = router.generate(&request()).await.unwrap();
    assert!((first.attempts[0].cost_usd - 0.05).abs() < 1e-9);
    router.generate(&request()).await.unwrap();
    let err = router.generate(&request()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(err.message().contains("budget"), "{err}");
    assert_eq!(a.call_count(), 2, "the third call was never sent");
    assert!((router.spent_usd() - 0.10).abs() < 1e-9);
    let reached: Vec<Event> = drain(&mut events)
        .into_iter()
        .filter(|e| matches!(e, Event::BudgetReached { .. }))
        .collect();
    assert!(matches!(
        reached.as_slice(),
        [Event::BudgetReached {
            scope: BudgetScope::Run,
            ..
        }]
    ));
    // Two images cost 0.10: over budget even on a fresh day.
    let day = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .prices(PriceTable::default().with_model("model-a", PerSize::flat(0.05)))
        .budget(Budget::new(None, Some(0.08)))
        .build()
        .unwrap();
    let err = day.generate(&request().with_count(2)).await.unwrap_err();
    assert!(err.message().contains("per-day"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_budget_refusal_falls_back_to_a_cheaper_target() {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let b = always("b", &clock, Outcome::image());
    let prices = PriceTable::default()
        .with_model("model-a", PerSize::flat(0.24))
        .with_model("model-b", PerSize::flat(0.04));
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .target(target("b", &b, unlimited()))
        .prices(prices)
        .budget(Budget::new(Some(0.30), None))
        .build()
        .unwrap();
    router.generate(&request()).await.unwrap();
    let second = router.generate(&request()).await.unwrap();
    assert_eq!(second.attempts[0].target, "b");
    assert_eq!((a.call_count(), b.call_count()), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_cache_hit_costs_no_upstream_call_and_expires_after_its_ttl() {
    let clock = clock();
    let dir = tempfile::tempdir().unwrap();
    let a = always("a", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, rpm(1)))
        .cache(dir.path(), Duration::from_secs(3_600))
        .build()
        .unwrap();
    let mut events = router.subscribe();
    let req = request().with_size(ImageSize::Half);
    let first = router.generate(&req).await.unwrap();
    let hit = router.generate(&req).await.unwrap();
    assert_eq!(a.call_count(), 1);
    assert_eq!(hit.images, first.images);
    assert!(hit.attempts.is_empty());
    assert_eq!(hit.cost_usd, Some(0.0));
    assert!(
        drain(&mut events)
            .iter()
            .any(|e| matches!(e, Event::CacheHit { .. }))
    );
    // No quota was spent by the hit: the RPM-1 pool still counts one request.
    let status = &router.pool_statuses().await.unwrap()[0];
    assert_eq!(status.dimensions[0].used, 1);

    // Bypassed per request: sent (after the RPM window frees).
    router
        .generate_with("default", &req, RequestOptions::default().with_cache(false))
        .await
        .unwrap();
    assert_eq!(a.call_count(), 2);

    // After the TTL, a miss.
    tokio::time::sleep(Duration::from_secs(3_601)).await;
    router.generate(&req).await.unwrap();
    assert_eq!(a.call_count(), 3);
    // A different request is a miss.
    router.generate(&req.clone().with_seed(9)).await.unwrap();
    assert_eq!(a.call_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn images_are_split_into_calls_as_the_target_allows() {
    let clock = clock();
    let mut caps = Capabilities::new(2);
    caps.seed = true;
    let a = Arc::new(
        ScriptedProvider::new("a", dyn_clock(&clock))
            .with_capabilities(caps)
            .otherwise(Outcome::image()),
    );
    let router = Router::builder(dyn_clock(&clock))
        .target(target(
            "a",
            &a,
            Limits {
                ipm: Some(10),
                ..Limits::NONE
            },
        ))
        .build()
        .unwrap();
    let response = router
        .generate(&request().with_count(5).with_seed(100))
        .await
        .unwrap();
    assert_eq!(response.images.len(), 5);
    let counts: Vec<u32> = a.calls().iter().map(|c| c.request.count).collect();
    assert_eq!(counts, [2, 2, 1]);
    let seeds: Vec<Option<u64>> = a.calls().iter().map(|c| c.request.seed).collect();
    assert_eq!(seeds, [Some(100), Some(102), Some(104)]);
    assert_eq!(response.attempts.len(), 3);
    // The pool counted images, not requests, on IPM.
    let status = &router.pool_statuses().await.unwrap()[0];
    let ipm = status
        .dimensions
        .iter()
        .find(|d| d.dimension == imagegate_core::quota::Dimension::Ipm)
        .unwrap();
    assert_eq!(ipm.used, 5);
}

#[tokio::test(start_paused = true)]
async fn warnings_fire_once_at_70_and_90_percent_of_a_daily_limit() {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target(
            "a",
            &a,
            Limits {
                rpd: Some(10),
                ..Limits::NONE
            },
        ))
        .build()
        .unwrap();
    let mut events = router.subscribe();
    let mut seen = Vec::new();
    for i in 1..=10 {
        router.generate(&request()).await.unwrap();
        for e in drain(&mut events) {
            if let Event::DailyQuotaWarning { percent, used, .. } = e {
                seen.push((i, percent, used));
            }
        }
    }
    assert_eq!(seen, [(7, 70, 7), (9, 90, 9)]);
    // The eleventh waits for the day's reset; with a deadline it fails at once.
    let err = router
        .generate(&request().with_deadline(at("2026-11-23T12:00:00Z")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExhausted);
}

#[tokio::test(start_paused = true)]
async fn named_routes_choose_their_own_targets_and_order() {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let b = always("b", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .target(target("b", &b, unlimited()))
        .route("b-first", vec!["b".into(), "a".into()])
        .build()
        .unwrap();
    let r = router.generate_on("b-first", &request()).await.unwrap();
    assert_eq!(r.attempts[0].target, "b");
    let err = router.generate_on("nope", &request()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    let bad = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .route("r", vec!["zzz".into()])
        .build()
        .unwrap_err();
    assert!(bad.message().contains("zzz"), "{bad}");
}

#[tokio::test(start_paused = true)]
async fn targets_with_equal_pool_ids_share_one_pool() {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let b = always("b", &clock, Outcome::image());
    let shared = pool("gemini", "proj", "free-image", rpm(2));
    let router = Router::builder(dyn_clock(&clock))
        .target(Target::new("a", a.clone(), "flash-a", shared.clone()))
        .target(Target::new("b", b.clone(), "flash-b", shared))
        .build()
        .unwrap();
    for _ in 0..3 {
        router.generate(&request()).await.unwrap();
    }
    // Two fit the shared RPM of 2 at once; the third waited a minute.
    assert_eq!(a.call_count() + b.call_count(), 3);
    assert_eq!(elapsed(&clock), Duration::from_secs(60));
    assert_eq!(router.pool_statuses().await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_router_is_an_image_provider_and_composes() {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let inner = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .build()
        .unwrap();
    let outer = Router::builder(dyn_clock(&clock))
        .target(Target::new(
            "inner",
            Arc::new(inner),
            "model-a",
            pool("router", "all", "inner", unlimited()),
        ))
        .build()
        .unwrap();
    assert_eq!(outer.name(), "router");
    let r = outer.generate(&request().with_count(3)).await.unwrap();
    assert_eq!(r.images.len(), 3);
    assert_eq!(
        r.attempts.len(),
        1,
        "the inner router split nothing: it takes any count"
    );
}

#[tokio::test(start_paused = true)]
async fn events_reach_an_unbounded_sender_too() {
    let clock = clock();
    let a = scripted("a", &clock);
    a.push(failure(ErrorKind::Unavailable, 503));
    a.push(Outcome::image());
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .jitter(Arc::new(imagegate_router::NoJitter))
        .events(tx)
        .build()
        .unwrap();
    router.generate(&request()).await.unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    while let Ok(e) = rx.try_recv() {
        log.lock().unwrap().push(e);
    }
    let kinds: Vec<&'static str> = log
        .lock()
        .unwrap()
        .iter()
        .map(|e| match e {
            Event::AttemptStarted { .. } => "started",
            Event::AttemptFinished { .. } => "finished",
            Event::Throttled { .. } => "throttled",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["started", "finished", "throttled", "started", "finished"]
    );
}

#[tokio::test(start_paused = true)]
async fn waiting_for_quota_interactive_requests_take_the_capacity_first() {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, rpm(1)))
        .build()
        .unwrap();
    router.generate(&request()).await.unwrap();
    let mut tasks = Vec::new();
    for (prompt, priority) in [
        ("background", Priority::Background),
        ("interactive", Priority::Interactive),
    ] {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            router
                .generate(&GenerateRequest::new(prompt).with_priority(priority))
                .await
                .unwrap()
        }));
        settle().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let calls: Vec<(String, u64)> = a
        .calls()
        .iter()
        .skip(1)
        .map(|c| {
            (
                c.request.prompt.clone(),
                imagegate_core::hints::until(t0(), c.at).as_secs(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [("interactive".into(), 60), ("background".into(), 120)]
    );
}

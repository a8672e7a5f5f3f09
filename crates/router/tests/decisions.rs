//! Each decision rule of the router, proven with scripted providers on paused tokio time.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use imagegate_core::quota::{Dimension, PACIFIC, PerSize, next_midnight};
use imagegate_core::{
    Capabilities, ErrorKind, GenerateRequest, ImageProvider, ReferenceImage, clock::Clock,
    quota::PriceTable,
};
use imagegate_mock::Outcome;
use imagegate_router::{
    DEFAULT_ROUTE, Event, Jitter, MaxWait, Policy, RequestOptions, Router, SeededJitter,
    ThrottleReason,
};

fn request() -> GenerateRequest {
    GenerateRequest::new("a lighthouse at dusk")
}

fn outcomes(response: &imagegate_core::GenerateResponse) -> Vec<(String, Option<ErrorKind>)> {
    response
        .attempts
        .iter()
        .map(|a| (a.target.clone(), a.outcome))
        .collect()
}

fn drain(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<Event> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_sends_the_request_to_the_next_target_at_once() {
    let clock = clock();
    let a = scripted("a", &clock);
    a.push(rate_limited(Duration::from_secs(2)));
    let b = always("b", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .target(target("b", &b, unlimited()))
        .build()
        .unwrap();
    let mut events = router.subscribe();

    let response = router.generate(&request()).await.unwrap();
    assert_eq!(
        outcomes(&response),
        [
            ("a".into(), Some(ErrorKind::RateLimited)),
            ("b".into(), None)
        ]
    );
    assert_eq!(elapsed(&clock), Duration::ZERO, "no waiting: B had room");
    assert_eq!(b.calls()[0].at, t0());
    assert_eq!(b.calls()[0].model, "model-b");

    // The 429 was learned: A's pool is held for 2 s, so the next request goes straight to B.
    let again = router.generate(&request()).await.unwrap();
    assert_eq!(outcomes(&again), [("b".into(), None)]);
    assert_eq!(a.call_count(), 1);

    // The 429 is reported with its quota facts.
    let limited: Vec<Event> = drain(&mut events)
        .into_iter()
        .filter(|e| matches!(e, Event::RateLimited { .. }))
        .collect();
    let [
        Event::RateLimited {
            provider,
            project,
            model,
            status,
            retry_after,
            quota,
            ..
        },
    ] = limited.as_slice()
    else {
        panic!("one 429 event expected: {limited:?}");
    };
    assert_eq!(provider, "a");
    assert_eq!(project.as_deref(), Some("a-proj"));
    assert_eq!(model, "model-a");
    assert_eq!(*status, Some(429));
    assert_eq!(*retry_after, Some(Duration::from_secs(2)));
    assert_eq!(quota.dimension, Some(imagegate_core::quota::Dimension::Rpm));
}

#[tokio::test(start_paused = true)]
async fn a_short_429_on_a_single_target_waits_retry_after_then_succeeds() {
    let clock = clock();
    let a = scripted("a", &clock);
    a.push(rate_limited(Duration::from_secs(2)));
    a.push(Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .build()
        .unwrap();
    let response = router.generate(&request()).await.unwrap();
    assert_eq!(
        outcomes(&response),
        [
            ("a".into(), Some(ErrorKind::RateLimited)),
            ("a".into(), None)
        ]
    );
    assert_eq!(a.calls()[1].at, at("2026-11-23T10:00:02Z"));
    assert_eq!(response.attempts[1].waited, Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn wait_versus_fallback_waits_for_the_cheaper_target_when_the_policy_says_so() {
    let clock = clock();
    let a = scripted("a", &clock);
    a.push(rate_limited(Duration::from_secs(2)));
    a.push(Outcome::image());
    let b = always("b", &clock, Outcome::image());
    let prices = PriceTable::default()
        .with_model("model-a", PerSize::flat(0.01))
        .with_model("model-b", PerSize::flat(0.10));
    let build = |policy: Policy| {
        Router::builder(dyn_clock(&clock))
            .target(target("a", &a, unlimited()))
            .target(target("b", &b, unlimited()))
            .prices(prices.clone())
            .policy(policy)
            .build()
            .unwrap()
    };
    // Waiting 2 s saves $0.09 per call: worth it under a policy of "up to 5 s for $0.05".
    let router = build(Policy::default().with_wait_for_preferred(Duration::from_secs(5), 0.05));
    let response = router.generate(&request()).await.unwrap();
    assert_eq!(
        outcomes(&response),
        [
            ("a".into(), Some(ErrorKind::RateLimited)),
            ("a".into(), None)
        ]
    );
    assert_eq!(b.call_count(), 0);
    assert_eq!(elapsed(&clock), Duration::from_secs(2));
    assert!((response.cost_usd.unwrap() - 0.01).abs() < 1e-9);

    // A saving below the threshold: fall back at once.
    a.push(rate_limited(Duration::from_secs(2)));
    let router = build(Policy::default().with_wait_for_preferred(Duration::from_secs(5), 0.5));
    let before = clock.now();
    let response = router.generate(&request()).await.unwrap();
    assert_eq!(
        outcomes(&response),
        [
            ("a".into(), Some(ErrorKind::RateLimited)),
            ("b".into(), None)
        ]
    );
    assert_eq!(clock.now(), before);
}

#[tokio::test(start_paused = true)]
async fn a_limit_zero_target_is_called_once_and_never_again() {
    let clock = clock();
    let a = scripted("a", &clock);
    a.push(limit_zero());
    let b = always("b", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .target(target("b", &b, unlimited()))
        .build()
        .unwrap();
    let mut events = router.subscribe();
    for _ in 0..3 {
        router.generate(&request()).await.unwrap();
    }
    assert_eq!(a.call_count(), 1);
    assert_eq!(b.call_count(), 3);
    let disabled = router.disabled_targets();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0].0, "a");
    assert_eq!(disabled[0].1.kind(), ErrorKind::BillingRequired);
    assert!(
        disabled[0].1.advice().contains("billing"),
        "{}",
        disabled[0].1.advice()
    );
    let events = drain(&mut events);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::TargetDisabled { .. }))
            .count(),
        1
    );
    // Alone, the disabled target fails at once with its advice.
    let lonely = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .build()
        .unwrap();
    a.push(limit_zero());
    let err = lonely.generate(&request()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BillingRequired);
    let err = lonely.generate(&request()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BillingRequired);
    assert_eq!(a.call_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn unauthorized_region_and_missing_model_disable_the_target_and_move_on() {
    for kind in [
        ErrorKind::Unauthorized,
        ErrorKind::RegionUnsupported,
        ErrorKind::ModelNotFound,
    ] {
        let clock = clock();
        let a = scripted("a", &clock);
        a.push(failure(kind, 403));
        let b = always("b", &clock, Outcome::image());
        let router = Router::builder(dyn_clock(&clock))
            .target(target("a", &a, unlimited()))
            .target(target("b", &b, unlimited()))
            .build()
            .unwrap();
        let first = router.generate(&request()).await.unwrap();
        assert_eq!(
            outcomes(&first),
            [("a".into(), Some(kind)), ("b".into(), None)]
        );
        router.generate(&request()).await.unwrap();
        assert_eq!(a.call_count(), 1, "{kind}");
        assert_eq!(router.disabled_targets()[0].1.kind(), kind);
    }
}

#[tokio::test(start_paused = true)]
async fn a_daily_quota_parks_the_pool_until_pacific_midnight_and_work_resumes_then() {
    let clock = clock();
    let a = scripted("a", &clock);
    a.push(daily_quota());
    a.push(Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .build()
        .unwrap();
    let mut events = router.subscribe();
    let midnight = at("2026-11-24T08:00:00Z");
    assert_eq!(next_midnight(t0(), &PACIFIC), midnight);

    let response = router.generate(&request()).await.unwrap();
    assert_eq!(
        outcomes(&response),
        [
            ("a".into(), Some(ErrorKind::QuotaExhausted)),
            ("a".into(), None)
        ]
    );
    assert_eq!(a.calls()[1].at, midnight, "resumed exactly at the reset");
    let events = drain(&mut events);
    assert!(events.iter().any(|e| matches!(
        e,
        Event::PoolParked { until: Some(u), .. } if *u == midnight
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Throttled { reason: ThrottleReason::DailyQuota { pool: Some(pool) }, until, .. }
            if *until == midnight && pool.pool == "model-a"
    )));
}

#[tokio::test(start_paused = true)]
async fn a_daily_quota_beyond_the_maximum_wait_fails_at_once_naming_the_pool_and_the_reset() {
    for max_wait in [MaxWait::Windows, MaxWait::UpTo(Duration::from_secs(120))] {
        let clock = clock();
        let a = scripted("a", &clock);
        a.push(daily_quota());
        a.push(Outcome::image());
        let router = Router::builder(dyn_clock(&clock))
            .target(target("a", &a, unlimited()))
            .build()
            .unwrap();
        let mut events = router.subscribe();
        let options = RequestOptions::default().with_max_wait(max_wait);
        let err = router
            .generate_with(DEFAULT_ROUTE, &request(), options)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::QuotaExhausted, "{max_wait:?}");
        assert_eq!(
            elapsed(&clock),
            Duration::ZERO,
            "{max_wait:?}: no wait at all"
        );
        assert_eq!(a.call_count(), 1, "{max_wait:?}");
        assert_eq!(err.quota().reset_at, Some(at("2026-11-24T08:00:00Z")));
        assert_eq!(err.retry_after(), Some(Duration::from_secs(22 * 3_600)));
        let message = err.message();
        assert!(
            message.contains("capacity returns at 2026-11-24T08:00:00Z"),
            "{message}"
        );
        assert!(message.contains("PST"), "{message}");
        assert!(message.contains("has no rpd quota left"), "{message}");
        assert!(err.advice().contains("resets at"), "{}", err.advice());
        assert!(
            !drain(&mut events)
                .iter()
                .any(|e| matches!(e, Event::Throttled { .. })),
            "{max_wait:?}: never a silent wait"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_per_minute_window_within_the_maximum_wait_is_waited_for_and_one_beyond_is_not() {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, rpm(1)))
        .build()
        .unwrap();
    let mut events = router.subscribe();
    router.generate(&request()).await.unwrap();
    // Batch without --max-wait: windows are waited for however long they take.
    let windows = RequestOptions::default().with_max_wait(MaxWait::Windows);
    router
        .generate_with(DEFAULT_ROUTE, &request(), windows)
        .await
        .unwrap();
    assert_eq!(elapsed(&clock), Duration::from_secs(60));
    assert!(drain(&mut events).iter().any(|e| matches!(
        e,
        Event::Throttled {
            reason: ThrottleReason::QuotaWindow { pool: Some(pool), .. },
            ..
        } if pool.pool == "model-a"
    )));
    // A maximum wait of 30 s: the next window is 60 s away, so it fails at once.
    let short = RequestOptions::default().with_max_wait(MaxWait::UpTo(Duration::from_secs(30)));
    let err = router
        .generate_with(DEFAULT_ROUTE, &request(), short)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    assert!(
        err.message().contains("within the maximum wait of 30 s"),
        "{err}"
    );
    assert_eq!(elapsed(&clock), Duration::from_secs(60), "failed at once");
    assert_eq!(a.call_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_daily_quota_moves_on_to_the_next_target_at_once() {
    let clock = clock();
    let a = scripted("a", &clock);
    a.push(daily_quota());
    let b = always("b", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .target(target("b", &b, unlimited()))
        .build()
        .unwrap();
    for _ in 0..3 {
        router.generate(&request()).await.unwrap();
    }
    assert_eq!(a.call_count(), 1, "the parked pool is not called again");
    assert_eq!(b.call_count(), 3);
    assert_eq!(elapsed(&clock), Duration::ZERO);
    let statuses = router.pool_statuses().await.unwrap();
    let parked = statuses.iter().find(|s| s.id.provider == "a").unwrap();
    assert_eq!(
        parked.blocked.as_ref().unwrap().until,
        Some(at("2026-11-24T08:00:00Z"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_daily_quota_past_the_deadline_fails_at_once_saying_when_capacity_returns() {
    let clock = clock();
    let a = scripted("a", &clock);
    a.push(daily_quota());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .build()
        .unwrap();
    let err = router
        .generate(&request().with_deadline(at("2026-11-23T11:00:00Z")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(elapsed(&clock), Duration::ZERO);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(22 * 3_600)));
    assert_eq!(err.quota().reset_at, Some(at("2026-11-24T08:00:00Z")));
    assert!(err.message().contains("2026-11-24T08:00:00Z"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn unavailable_is_retried_with_seeded_full_jitter_backoff_then_moves_on() {
    async fn run(seed: u64) -> (Vec<jiff::Timestamp>, Vec<jiff::Timestamp>) {
        let clock = clock();
        let a = always("a", &clock, failure(ErrorKind::Unavailable, 503));
        let b = always("b", &clock, Outcome::image());
        let router = Router::builder(dyn_clock(&clock))
            .target(target("a", &a, unlimited()))
            .target(target("b", &b, unlimited()))
            .policy(Policy::default().with_retries(2))
            .seed(seed)
            .build()
            .unwrap();
        let response = router.generate(&request()).await.unwrap();
        assert_eq!(
            outcomes(&response),
            [
                ("a".into(), Some(ErrorKind::Unavailable)),
                ("a".into(), Some(ErrorKind::Unavailable)),
                ("a".into(), Some(ErrorKind::Unavailable)),
                ("b".into(), None)
            ]
        );
        let a_at = a.calls().iter().map(|c| c.at).collect();
        let b_at = b.calls().iter().map(|c| c.at).collect();
        (a_at, b_at)
    }
    let (a_at, b_at) = run(42).await;
    // The waits are the seeded generator's picks under ceilings of 500 ms then 1 s.
    let jitter = SeededJitter::new(42);
    let first = jitter.pick(Duration::from_millis(500));
    let second = jitter.pick(Duration::from_secs(1));
    let ms = |d: Duration| jiff::SignedDuration::from_millis(d.as_millis() as i64);
    assert_eq!(a_at[0], t0());
    let gap1 = a_at[1].duration_since(a_at[0]);
    let gap2 = a_at[2].duration_since(a_at[1]);
    assert_eq!(gap1, ms(first));
    assert_eq!(gap2, ms(second));
    assert_eq!(b_at, [a_at[2]], "moved on right after the last retry");
    // Same seed, same schedule; another seed, another.
    assert_eq!(run(42).await.0, a_at);
    assert_ne!(run(43).await.0, a_at);
}

#[tokio::test(start_paused = true)]
async fn an_answer_cut_off_after_a_success_status_stays_counted_and_paid_unlike_a_502() {
    let clock = clock();
    let a = scripted("a", &clock);
    // Served and cut off mid-body; refused by a proxy; served.
    a.push(failure(ErrorKind::Unavailable, 200));
    a.push(failure(ErrorKind::Unavailable, 502));
    a.push(Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, rpm(10)))
        .prices(PriceTable::default().with_model("model-a", PerSize::flat(0.05)))
        .policy(Policy::default().with_retries(2))
        .jitter(Arc::new(imagegate_router::NoJitter))
        .build()
        .unwrap();
    let response = router.generate(&request()).await.unwrap();
    assert_eq!(
        outcomes(&response),
        [
            ("a".into(), Some(ErrorKind::Unavailable)),
            ("a".into(), Some(ErrorKind::Unavailable)),
            ("a".into(), None)
        ]
    );
    let costs: Vec<f64> = response.attempts.iter().map(|a| a.cost_usd).collect();
    assert_eq!(costs, [0.05, 0.0, 0.05]);
    assert!((router.spent_usd() - 0.10).abs() < 1e-9);
    // The pool counts what the upstream counted: the cut answer and the image, not the 502.
    let status = &router.pool_statuses().await.unwrap()[0];
    assert_eq!(status.dimensions[0].dimension, Dimension::Rpm);
    assert_eq!(status.dimensions[0].used, 2);
}

#[tokio::test(start_paused = true)]
async fn a_success_sent_before_a_bare_429_does_not_end_the_backoff_that_429_began() {
    let clock = clock();
    let a = Arc::new(
        imagegate_mock::ScriptedProvider::new("a", dyn_clock(&clock))
            .with_project("a-proj")
            .otherwise(Outcome::image()),
    );
    // Two calls in flight from 0 s: one is served late (at 10 s), the other refused without a
    // hint earlier (at 9 s), which holds the target for the 5 s backoff, until 14 s.
    a.push(Outcome::image().after(Duration::from_secs(10)));
    a.push(failure(ErrorKind::RateLimited, 429).after(Duration::from_secs(9)));
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .policy(Policy::default().with_backoff(Duration::from_secs(5), Duration::from_secs(60)))
        .jitter(Arc::new(imagegate_router::NoJitter))
        .build()
        .unwrap();
    let in_flight: Vec<_> = (0..2)
        .map(|_| {
            let router = router.clone();
            tokio::spawn(async move { router.generate(&request()).await })
        })
        .collect();
    // A third request at 11 s: the success at 10 s was sent before the refusal, so it says
    // nothing about the room left now, and the hold stands.
    tokio::time::sleep(Duration::from_secs(11)).await;
    router.generate(&request()).await.unwrap();
    for task in in_flight {
        task.await.unwrap().unwrap();
    }
    let sent: Vec<Duration> = a
        .calls()
        .iter()
        .map(|c| Duration::try_from(c.at.duration_since(t0())).unwrap())
        .collect();
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[..2], [Duration::ZERO; 2]);
    assert!(
        sent[2..].iter().all(|at| *at == Duration::from_secs(14)),
        "sent while the backoff held: {sent:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn connect_errors_are_retried_like_unavailable() {
    let clock = clock();
    let a = scripted("a", &clock);
    a.push(failure(ErrorKind::Connect, 0));
    a.push(Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .jitter(Arc::new(imagegate_router::NoJitter))
        .build()
        .unwrap();
    let response = router.generate(&request()).await.unwrap();
    assert_eq!(
        outcomes(&response),
        [("a".into(), Some(ErrorKind::Connect)), ("a".into(), None)]
    );
    assert_eq!(elapsed(&clock), Duration::from_millis(500));
}

#[tokio::test(start_paused = true)]
async fn invalid_request_and_content_blocked_return_at_once_without_fallback() {
    for kind in [ErrorKind::InvalidRequest, ErrorKind::ContentBlocked] {
        let clock = clock();
        let a = scripted("a", &clock);
        a.push(failure(kind, 400));
        let b = always("b", &clock, Outcome::image());
        let router = Router::builder(dyn_clock(&clock))
            .target(target("a", &a, unlimited()))
            .target(target("b", &b, unlimited()))
            .build()
            .unwrap();
        let err = router.generate(&request()).await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(b.call_count(), 0, "{kind}: no fallback");
        assert_eq!(a.call_count(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_timeout_is_not_retried_by_default_and_is_when_configured() {
    let clock = clock();
    let a = scripted("a", &clock);
    a.push(failure(ErrorKind::Timeout, 0).after(Duration::from_secs(60)));
    let b = always("b", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .target(target("b", &b, unlimited()))
        .build()
        .unwrap();
    let err = router.generate(&request()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!((a.call_count(), b.call_count()), (1, 0));

    let a = scripted("a", &clock);
    a.push(failure(ErrorKind::Timeout, 0));
    a.push(Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .policy(Policy::default().with_retry_timeouts(true))
        .build()
        .unwrap();
    let response = router.generate(&request()).await.unwrap();
    assert_eq!(
        outcomes(&response),
        [("a".into(), Some(ErrorKind::Timeout)), ("a".into(), None)]
    );
}

#[tokio::test(start_paused = true)]
async fn when_nothing_admits_the_request_queues_for_the_earliest_capacity() {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let b = always("b", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, rpm(1)))
        .target(target("b", &b, rpm(1)))
        .build()
        .unwrap();
    router.generate(&request()).await.unwrap();
    clock.sleep(Duration::from_secs(10)).await;
    router.generate(&request()).await.unwrap();
    assert_eq!((a.call_count(), b.call_count()), (1, 1));
    // Both pools are full: A frees at 10:01:00, B at 10:01:10. The request waits for A.
    let third = router.generate(&request()).await.unwrap();
    assert_eq!(outcomes(&third), [("a".into(), None)]);
    assert_eq!(a.calls()[1].at, at("2026-11-23T10:01:00Z"));
    assert_eq!(third.attempts[0].waited, Duration::from_secs(50));
    // No upstream 429 was ever needed.
    assert!(third.attempts.iter().all(|x| x.outcome.is_none()));
}

#[tokio::test(start_paused = true)]
async fn when_capacity_returns_after_the_deadline_the_request_fails_at_once() {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, rpm(1)))
        .build()
        .unwrap();
    router.generate(&request()).await.unwrap();
    let err = router
        .generate(&request().with_deadline(at("2026-11-23T10:00:30Z")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    assert!(
        err.message()
            .contains("capacity returns at 2026-11-23T10:01:00Z"),
        "{err}"
    );
    assert_eq!(elapsed(&clock), Duration::ZERO, "failed at once");
    assert_eq!(a.call_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn targets_that_cannot_serve_the_request_are_skipped_without_a_call() {
    let clock = clock();
    let mut caps = Capabilities::new(1);
    caps.editing = false;
    let a = Arc::new(
        imagegate_mock::ScriptedProvider::new("a", dyn_clock(&clock))
            .with_capabilities(caps)
            .otherwise(Outcome::image()),
    );
    let b = always("b", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .target(target("b", &b, unlimited()))
        .build()
        .unwrap();
    let edit = request().with_reference_image(ReferenceImage::new(
        vec![0x89u8, b'P', b'N', b'G'],
        "image/png",
    ));
    let response = router.generate(&edit).await.unwrap();
    assert_eq!(outcomes(&response), [("b".into(), None)]);
    assert_eq!(a.call_count(), 0);

    // Nothing fits: an invalid_request naming why, nothing sent.
    let only_a = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .build()
        .unwrap();
    let err = only_a.generate(&edit).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.message().contains("reference"), "{err}");
    assert_eq!(a.call_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_429_revealing_a_shared_pool_holds_the_partner_pools_too() {
    let clock = clock();
    let a = scripted("a", &clock);
    let b = always("b", &clock, Outcome::image());
    let pool_of = |model: &str| pool("gemini", "proj", model, rpm(10));
    let router = Router::builder(dyn_clock(&clock))
        .target(imagegate_router::Target::new(
            "a",
            a.clone(),
            "flash",
            pool_of("flash"),
        ))
        .target(imagegate_router::Target::new(
            "b",
            b.clone(),
            "pro",
            pool_of("pro"),
        ))
        .route("b-first", vec!["b".into(), "a".into()])
        .route("a-first", vec!["a".into(), "b".into()])
        .build()
        .unwrap();
    // Watch a full minute, then B is busy, then A is refused while its own count has room:
    // the store suspects A shares its pool with B.
    router.pool_statuses().await.unwrap();
    tokio::time::sleep(Duration::from_secs(61)).await;
    router.generate_on("b-first", &request()).await.unwrap();
    a.push(rate_limited(Duration::from_secs(30)));
    a.push(Outcome::image());
    let response = router.generate_on("a-first", &request()).await.unwrap();
    // Without the partner hold B would have served at once; with it, A is retried after 30 s.
    assert_eq!(
        outcomes(&response),
        [
            ("a".into(), Some(ErrorKind::RateLimited)),
            ("a".into(), None)
        ]
    );
    assert_eq!(b.call_count(), 1);
    assert_eq!(a.calls()[1].at, at("2026-11-23T10:01:31Z"));
    // From now on the two pools are one: A's call was reserved on B's pool too.
    let used = |statuses: &[imagegate_core::quota::PoolStatus], name: &str| {
        let s = statuses.iter().find(|s| s.id.pool == name).unwrap();
        s.dimensions[0].used
    };
    let statuses = router.pool_statuses().await.unwrap();
    assert_eq!(
        used(&statuses, "flash"),
        1,
        "the refused call was given back"
    );
    assert_eq!(
        used(&statuses, "pro"),
        2,
        "B's own call and A's linked reservation"
    );
}

/// A 429 asking for a day on a per-minute quota (`retryDelay: "86400s"`) or naming no quota
/// (`Retry-After: 999999`) is not believed beyond a few minutes: a batch waits that long and
/// goes on; `generate`'s 2-minute maximum wait fails at once saying when.
#[tokio::test(start_paused = true)]
async fn an_implausible_delay_on_a_per_minute_quota_holds_the_pool_a_few_minutes_not_a_day() {
    use imagegate_core::quota::MAX_WINDOW_HOLD;
    for delay in [86_400, 25 * 3_600] {
        let clock = clock();
        let a = scripted("a", &clock);
        a.push(rate_limited(Duration::from_secs(delay)));
        a.push(Outcome::image());
        let router = Router::builder(dyn_clock(&clock))
            .target(target("a", &a, unlimited()))
            .build()
            .unwrap();
        let options = RequestOptions::default().with_max_wait(MaxWait::Windows);
        let response = router
            .generate_with(DEFAULT_ROUTE, &request(), options)
            .await
            .unwrap();
        assert_eq!(response.attempts.len(), 2, "{delay}");
        assert_eq!(
            elapsed(&clock),
            MAX_WINDOW_HOLD,
            "{delay}: capped, not {delay} s"
        );

        let b = scripted("b", &clock);
        b.push(rate_limited(Duration::from_secs(delay)));
        let router = Router::builder(dyn_clock(&clock))
            .target(target("b", &b, unlimited()))
            .build()
            .unwrap();
        let options =
            RequestOptions::default().with_max_wait(MaxWait::UpTo(Duration::from_secs(120)));
        let before = elapsed(&clock);
        let err = router
            .generate_with(DEFAULT_ROUTE, &request(), options)
            .await
            .unwrap_err();
        assert_eq!(elapsed(&clock), before, "{delay}: failed at once");
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(MAX_WINDOW_HOLD), "{delay}: {err}");
        assert_eq!(b.call_count(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_for_capacity_stops_at_once_when_its_caller_stops_waiting() {
    // A gateway that begins to shut down cancels the stop token: a request still waiting for
    // its window must fail at once (the client can retry elsewhere) and send nothing, while a
    // call already under way is left to finish.
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, rpm(1)))
        .build()
        .unwrap();
    router.generate(&request()).await.unwrap();
    let mut events = router.subscribe();
    let stop = tokio_util::sync::CancellationToken::new();
    let options = RequestOptions::default().with_stop(stop.clone());
    let waiting = {
        let router = router.clone();
        tokio::spawn(async move {
            router
                .generate_with(DEFAULT_ROUTE, &request(), options)
                .await
        })
    };
    // It waits for the next minute window.
    loop {
        if let Event::Throttled { .. } = events.recv().await.unwrap() {
            break;
        }
    }
    let before = elapsed(&clock);
    stop.cancel();
    let err = waiting.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.message().contains("stopped before it was sent"),
        "{err}"
    );
    assert_eq!(elapsed(&clock), before, "no wait after the stop");
    assert_eq!(
        a.call_count(),
        1,
        "nothing was sent for the stopped request"
    );
    // The window it was waiting for is still there for the next request.
    router.generate(&request()).await.unwrap();
    assert_eq!(a.call_count(), 2);
}

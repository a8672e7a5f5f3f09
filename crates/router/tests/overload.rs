//! The router under overload, on paused tokio time: a request that cannot finish by its
//! deadline fails at once (saying when capacity returns) and starts no call; a feasible one is
//! not shed; waiting requests of one priority take capacity earliest deadline first; aging
//! lets a background request through a stream of interactive work.

#![allow(clippy::unwrap_used)] // a failed expectation is a failed test

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use imagegate_core::clock::add;
use imagegate_core::{ErrorKind, GenerateRequest, ImageProvider, Priority, clock::Clock};
use imagegate_mock::Outcome;
use imagegate_router::{Policy, Router};
use jiff::Timestamp;

fn request(prompt: &str) -> GenerateRequest {
    GenerateRequest::new(prompt)
}

const CALL: Duration = Duration::from_secs(20);

/// A router over one target whose pool admits `limit` a minute and whose calls take 20 s,
/// after eight calls have taught it so (the estimate needs a few calls).
async fn warmed(
    clock: &Arc<imagegate_core::clock::TokioClock>,
    rpm_limit: u64,
) -> (Router, Arc<imagegate_mock::ScriptedProvider>) {
    let a = always("a", clock, Outcome::image().after(CALL));
    let router = Router::builder(dyn_clock(clock))
        .target(target("a", &a, rpm(rpm_limit)))
        .build()
        .unwrap();
    for i in 0..8 {
        router
            .generate(&request(&format!("warm {i}")))
            .await
            .unwrap();
    }
    (router, a)
}

#[tokio::test(start_paused = true)]
async fn an_infeasible_request_fails_at_once_and_starts_no_call() {
    let clock = clock();
    let (router, a) = warmed(&clock, 1).await;
    // The eighth call went out at 10:07:00: the window frees at 10:08:00, and a call then
    // ends at 10:08:20. A deadline of 10:08:10 leaves capacity in time, the image not.
    let now = clock.now();
    assert_eq!(now, at("2026-11-23T10:07:20Z"));
    let err = router
        .generate(&request("too late").with_deadline(at("2026-11-23T10:08:10Z")))
        .await
        .unwrap_err();
    assert_eq!(clock.now(), now, "failed at once, without waiting");
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(40)), "{err}");
    assert!(
        err.to_string()
            .contains("capacity returns at 2026-11-23T10:08:00Z"),
        "{err}"
    );
    assert!(
        err.to_string().contains("a call lately takes 20"),
        "names what a call takes: {err}"
    );
    assert_eq!(a.call_count(), 8);

    // Capacity now, but a call takes 20 s and the deadline is in 10: no call is started.
    clock.sleep(Duration::from_secs(60)).await;
    let now = clock.now();
    let err = router
        .generate(&request("no time").with_deadline(add(now, Duration::from_secs(10))))
        .await
        .unwrap_err();
    assert_eq!(clock.now(), now);
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("none was started"), "{err}");
    assert_eq!(a.call_count(), 8, "no call paid for and thrown away");
}

#[tokio::test(start_paused = true)]
async fn a_feasible_request_is_not_shed() {
    let clock = clock();
    let (router, a) = warmed(&clock, 1).await;
    // Capacity at 10:08:00, the image at 10:08:20, the deadline at 10:08:25: it waits.
    let done = router
        .generate(&request("in time").with_deadline(at("2026-11-23T10:08:25Z")))
        .await
        .unwrap();
    assert_eq!(done.images.len(), 1);
    assert_eq!(a.calls()[8].at, at("2026-11-23T10:08:00Z"));
    assert_eq!(clock.now(), at("2026-11-23T10:08:20Z"));
    // And without the estimate (shedding off) the same request is served the same way.
    let clock = common::clock();
    let b = always("b", &clock, Outcome::image().after(CALL));
    let router = Router::builder(dyn_clock(&clock))
        .policy(Policy::default().with_latency_quantile(None))
        .target(target("b", &b, rpm(1)))
        .build()
        .unwrap();
    router.generate(&request("first")).await.unwrap();
    let done = router
        .generate(&request("second").with_deadline(at("2026-11-23T10:01:25Z")))
        .await;
    assert!(done.is_ok(), "{done:?}");
}

/// Fills a one-a-minute pool at 10:00, then queues `requests` (prompt, priority, deadline
/// offset in seconds, arrival offset in seconds) and returns the prompts in the order they
/// were served, with when.
async fn served_order(
    policy: Policy,
    requests: Vec<(&'static str, Priority, Option<u64>, u64)>,
) -> Vec<(String, Timestamp)> {
    let clock = clock();
    let a = always("a", &clock, Outcome::image());
    let router = Arc::new(
        Router::builder(dyn_clock(&clock))
            .policy(policy)
            .target(target("a", &a, rpm(1)))
            .build()
            .unwrap(),
    );
    router.generate(&request("fill")).await.unwrap();
    let served = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (prompt, priority, deadline, arrive) in requests {
        let (router, served, clock) = (router.clone(), served.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            clock.sleep(Duration::from_secs(arrive)).await;
            let mut r = request(prompt).with_priority(priority);
            if let Some(d) = deadline {
                r = r.with_deadline(add(t0(), Duration::from_secs(d)));
            }
            if router.generate(&r).await.is_ok() {
                served
                    .lock()
                    .unwrap()
                    .push((prompt.to_owned(), clock.now()));
            }
        }));
        // Each queues before the next is spawned: arrival order is spawn order.
        tokio::task::yield_now().await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    served.lock().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn waiting_requests_of_one_priority_go_earliest_deadline_first() {
    let ia = Priority::Interactive;
    // Arrival order is the worst for EDF: the latest deadline first.
    let queue = || {
        vec![
            ("late", ia, Some(600), 0),
            ("middle", ia, Some(300), 0),
            ("soon", ia, Some(180), 0),
        ]
    };
    let names = |v: Vec<(String, Timestamp)>| v.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
    assert_eq!(
        names(served_order(Policy::default(), queue()).await),
        ["soon", "middle", "late"]
    );
    // First come first served, for comparison: all still make it here, in arrival order.
    assert_eq!(
        names(
            served_order(
                Policy::default().with_earliest_deadline_first(false),
                queue()
            )
            .await
        ),
        ["late", "middle", "soon"]
    );
}

#[tokio::test(start_paused = true)]
async fn aging_lets_background_through_a_stream_of_interactive_work() {
    let stream = |bg_deadline: Option<u64>| {
        let mut queue = vec![("background", Priority::Background, bg_deadline, 0)];
        // Two interactive requests a minute for ten minutes against one a minute of capacity.
        let names = [
            "i00", "i01", "i02", "i03", "i04", "i05", "i06", "i07", "i08", "i09", "i10", "i11",
            "i12", "i13", "i14", "i15", "i16", "i17", "i18", "i19",
        ];
        for (k, name) in names.into_iter().enumerate() {
            queue.push((
                name,
                Priority::Interactive,
                Some(k as u64 * 30 + 3_600),
                k as u64 * 30,
            ));
        }
        queue
    };
    let aging = Policy::default().with_background_aging(Duration::from_secs(300));
    let order = served_order(aging.clone(), stream(None)).await;
    let position =
        |order: &[(String, Timestamp)]| order.iter().position(|(p, _)| p == "background");
    let (_, when) = &order[position(&order).unwrap()];
    // Aged at 10:05, due then: it takes the next minute's capacity ahead of the queue.
    assert_eq!(*when, at("2026-11-23T10:06:00Z"), "{order:?}");
    assert!(position(&order).unwrap() < 10, "{order:?}");
    // With a deadline it ranks by it once aged: ahead of interactive work due later.
    let order = served_order(aging, stream(Some(1_800))).await;
    let (_, when) = &order[position(&order).unwrap()];
    assert!(*when <= at("2026-11-23T10:30:00Z"), "{order:?}");
    // Without aging (a day), it waits for every interactive request.
    let order = served_order(
        Policy::default().with_background_aging(Duration::from_secs(86_400)),
        stream(None),
    )
    .await;
    assert_eq!(position(&order), Some(20), "{order:?}");
}

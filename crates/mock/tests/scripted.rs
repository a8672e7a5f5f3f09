//! ScriptedProvider: outcomes in order, latency in simulated time, recorded calls, exhaustion.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{decode, t0};
use imagegate_core::{
    Capabilities, Error, ErrorKind, GenerateRequest, ImageProvider, ImageSize, QuotaFacts,
    clock::Clock, clock::ManualClock, clock::TokioClock, quota::Dimension,
};
use imagegate_mock::{MockProvider, Outcome, ScriptedProvider};

fn small(prompt: &str) -> GenerateRequest {
    GenerateRequest::new(prompt)
        .with_size(ImageSize::Half)
        .with_aspect_ratio("4:1".parse().unwrap())
}

fn manual() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t0()))
}

fn daily_quota() -> Error {
    let mut quota = QuotaFacts::default();
    quota.dimension = Some(Dimension::Rpd);
    quota.quota_id = Some("GenerateRequestsPerDayPerProjectPerModel-FreeTier".to_owned());
    quota.quota_value = Some(250);
    quota.model = Some("gemini-2.5-flash-image".to_owned());
    quota.reset_at = Some("2026-03-09T07:00:00Z".parse().unwrap());
    Error::new(ErrorKind::QuotaExhausted, "Quota exceeded for metric ...")
        .with_http_status(429)
        .with_upstream_code("RESOURCE_EXHAUSTED")
        .with_quota(quota)
}

#[tokio::test]
async fn outcomes_play_in_order_with_every_fact_kept() {
    let scripted = ScriptedProvider::new("gemini", manual())
        .with_project("proj-a")
        .then(Outcome::error(
            Error::new(ErrorKind::RateLimited, "per-minute quota full")
                .with_http_status(429)
                .with_retry_after(Duration::from_millis(15_002)),
        ))
        .then(Outcome::error(daily_quota()))
        .then(Outcome::image())
        .then(Outcome::error(
            Error::new(ErrorKind::Unavailable, "overloaded").with_provider("upstream-x"),
        ));
    assert_eq!(scripted.remaining(), 4);
    let request = small("a tree");

    let first = scripted.generate(&request).await.unwrap_err();
    assert_eq!(first.kind(), ErrorKind::RateLimited);
    assert_eq!(first.retry_after(), Some(Duration::from_millis(15_002)));
    assert_eq!(first.http_status(), Some(429));
    assert_eq!(
        first.provider(),
        Some("gemini"),
        "stamped with the provider"
    );
    assert_eq!(first.project(), Some("proj-a"));

    let second = scripted.generate(&request).await.unwrap_err();
    assert_eq!(second.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(second.upstream_code(), Some("RESOURCE_EXHAUSTED"));
    assert_eq!(second.quota(), daily_quota().quota());
    assert_eq!(second.quota().dimension, Some(Dimension::Rpd));

    let third = scripted.generate(&request).await.unwrap();
    assert_eq!(third.images.len(), 1);
    assert_eq!(third.served_by.to_string(), "gemini/mock-image-1@proj-a");
    assert_eq!(third.request_id.as_deref(), Some("gemini-call-3"));
    assert_eq!(third.attempts.len(), 1);
    assert_eq!(third.usage.unwrap().output_tokens, 1_290);

    let fourth = scripted.generate(&request).await.unwrap_err();
    assert_eq!(fourth.kind(), ErrorKind::Unavailable);
    assert_eq!(
        fourth.provider(),
        Some("upstream-x"),
        "an error's own provider is kept"
    );
    assert_eq!(scripted.remaining(), 0);
}

#[tokio::test]
async fn every_kind_can_be_scripted() {
    let scripted = ScriptedProvider::new("s", manual());
    for kind in ErrorKind::ALL {
        scripted.push(Outcome::error(Error::new(kind, kind.describe())));
    }
    for kind in ErrorKind::ALL {
        let err = scripted.generate(&small("x")).await.unwrap_err();
        assert_eq!(err.kind(), kind);
        assert_eq!(err.is_temporary(), kind.is_temporary_by_default());
    }
}

#[tokio::test]
async fn scripted_images_come_from_the_deterministic_renderer() {
    let request = small("a boat").with_count(3);
    let scripted = ScriptedProvider::new("s", manual()).then(Outcome::image());
    let from_script = scripted.generate(&request).await.unwrap();
    let from_mock = MockProvider::new().generate(&request).await.unwrap();
    assert_eq!(from_script.images, from_mock.images);
    let (w, h, _) = decode(&from_script.images[2].bytes);
    assert_eq!((w, h), (512, 128));
}

#[tokio::test]
async fn latency_is_slept_on_a_manual_clock_and_reported() {
    let clock = manual();
    let scripted = ScriptedProvider::new("s", clock.clone())
        .then(Outcome::error(Error::new(ErrorKind::Timeout, "slow")).after(Duration::from_secs(60)))
        .then(Outcome::image().after(Duration::from_secs(3)))
        .then(Outcome::image());
    assert_eq!(
        Outcome::image().after(Duration::from_secs(3)).latency(),
        Duration::from_secs(3)
    );

    scripted.generate(&small("a")).await.unwrap_err();
    let second = scripted.generate(&small("b")).await.unwrap();
    let third = scripted.generate(&small("c")).await.unwrap();
    assert_eq!(
        clock.sleeps(),
        [Duration::from_secs(60), Duration::from_secs(3)]
    );
    assert_eq!(second.attempts[0].elapsed, Duration::from_secs(3));
    assert_eq!(
        second.attempts[0].started_at,
        t0() + jiff::SignedDuration::from_secs(60)
    );
    assert_eq!(third.attempts[0].elapsed, Duration::ZERO);

    let at: Vec<_> = scripted.calls().iter().map(|c| c.at).collect();
    let secs = |s| t0() + jiff::SignedDuration::from_secs(s);
    assert_eq!(at, [secs(0), secs(60), secs(63)]);
}

#[tokio::test(start_paused = true)]
async fn latency_runs_in_paused_tokio_time() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(t0()));
    let scripted = Arc::new(
        ScriptedProvider::new("s", clock.clone())
            .then(Outcome::image().after(Duration::from_secs(45)))
            .then(
                Outcome::error(Error::new(ErrorKind::Unavailable, "x"))
                    .after(Duration::from_secs(5)),
            ),
    );
    let started = tokio::time::Instant::now();
    // Both calls start together; each takes its own outcome's latency.
    let a = tokio::spawn({
        let s = scripted.clone();
        async move { s.generate(&small("a")).await }
    });
    let b = tokio::spawn({
        let s = scripted.clone();
        async move { s.generate(&small("b")).await }
    });
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert_eq!(started.elapsed(), Duration::from_secs(45));
    // Which task took which outcome depends on scheduling; exactly one of each happened.
    let ok = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1);
    let calls = scripted.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls.iter().all(|c| c.at == t0()));
}

#[tokio::test]
async fn calls_are_recorded_as_received() {
    let scripted = ScriptedProvider::new("s", manual())
        .with_default_model("gemini-2.5-flash-image")
        .then(Outcome::image())
        .then(Outcome::error(Error::new(ErrorKind::ContentBlocked, "no")));
    let first = small("one").with_seed(9);
    let second = small("two").with_model("gemini-3-pro-image");
    let ok = scripted.generate(&first).await.unwrap();
    assert_eq!(ok.served_by.model, "gemini-2.5-flash-image");
    scripted.generate(&second).await.unwrap_err();

    let calls = scripted.calls();
    assert_eq!(scripted.call_count(), 2);
    assert_eq!(calls[0].request, first);
    assert_eq!(calls[0].model, "gemini-2.5-flash-image");
    assert_eq!(calls[1].request, second);
    assert_eq!(calls[1].model, "gemini-3-pro-image");
}

#[tokio::test]
async fn an_exhausted_script_says_so() {
    let scripted = ScriptedProvider::new("gemini", manual()).then(Outcome::image());
    scripted.generate(&small("a")).await.unwrap();
    let err = scripted.generate(&small("b")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unexpected);
    assert!(!err.is_temporary());
    assert_eq!(err.provider(), Some("gemini"));
    assert!(err.message().contains("script ran out"), "{err}");
    assert!(err.message().contains("call 2"), "{err}");
    assert!(err.message().contains("1 were scripted"), "{err}");
    // The failed call is still recorded.
    assert_eq!(scripted.call_count(), 2);

    let empty = ScriptedProvider::new("s", manual());
    let err = empty.generate(&small("a")).await.unwrap_err();
    assert!(err.message().contains("call 1"), "{err}");
}

#[tokio::test]
async fn a_fallback_repeats_forever_after_the_queue() {
    let clock = manual();
    let scripted = ScriptedProvider::new("s", clock.clone())
        .then(Outcome::image())
        .otherwise(
            Outcome::error(
                Error::new(ErrorKind::RateLimited, "full").with_retry_after(Duration::from_secs(7)),
            )
            .after(Duration::from_secs(1)),
        );
    scripted.generate(&small("a")).await.unwrap();
    for _ in 0..5 {
        let err = scripted.generate(&small("a")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    }
    assert_eq!(clock.sleeps(), [Duration::from_secs(1); 5]);
    // Pushing more puts the queue ahead of the fallback again.
    scripted.push(Outcome::image());
    assert!(scripted.generate(&small("a")).await.is_ok());
    assert!(scripted.generate(&small("a")).await.is_err());
}

#[tokio::test]
async fn requests_outside_the_capabilities_are_rejected_without_using_the_script() {
    let mut gemini_like = Capabilities::new(1);
    gemini_like.sizes = vec![ImageSize::Half, ImageSize::OneK];
    let scripted = ScriptedProvider::new("gemini", manual())
        .with_capabilities(gemini_like.clone())
        .then(Outcome::image());
    assert_eq!(scripted.capabilities(None), gemini_like);

    for bad in [
        small("two").with_count(2),
        small("big").with_size(ImageSize::FourK),
        small("edit")
            .with_reference_image(imagegate_core::ReferenceImage::new(vec![1u8], "image/png")),
    ] {
        let err = scripted.generate(&bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{bad:?}");
        assert_eq!(err.provider(), Some("gemini"));
    }
    assert_eq!(
        scripted.remaining(),
        1,
        "a rejection leaves the script alone"
    );
    assert_eq!(scripted.call_count(), 3, "but is recorded");
    assert!(scripted.generate(&small("fits")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_across_tasks_each_outcome_is_used_exactly_once() {
    let provider = Arc::new(ScriptedProvider::new("s", manual()));
    for i in 0..20 {
        if i % 4 == 0 {
            provider.push(Outcome::image());
        } else {
            provider.push(Outcome::error(Error::new(ErrorKind::RateLimited, "x")));
        }
    }
    let shared: Arc<dyn ImageProvider> = provider.clone();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let request = GenerateRequest::new(format!("t{i}"))
                    .with_size(ImageSize::Half)
                    .with_aspect_ratio("16:1".parse().unwrap());
                shared.generate(&request).await.is_ok()
            })
        })
        .collect();
    let mut successes = 0;
    for task in tasks {
        successes += usize::from(task.await.unwrap());
    }
    assert_eq!(successes, 5);
    assert_eq!(provider.remaining(), 0);
    assert_eq!(provider.call_count(), 20);
}

#[test]
fn scripted_providers_are_send_sync_trait_objects() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<ScriptedProvider>();
    assert_send_sync::<Outcome>();
    let provider: Arc<dyn ImageProvider> = Arc::new(ScriptedProvider::new("s", manual()));
    assert_eq!(provider.name(), "s");
    assert_eq!(provider.project(), None);
    assert_eq!(provider.default_model(), "mock-image-1");
    assert_eq!(Outcome::image().error_kind(), None);
    assert_eq!(
        Outcome::error(Error::new(ErrorKind::Timeout, "x")).error_kind(),
        Some(ErrorKind::Timeout)
    );
}

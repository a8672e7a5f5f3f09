//! The simulated upstream's wire answers, classified by the real providers' `parse_error`: the
//! kind, dimension, limit and wait a strategy sees are the ones a real 429 would give.

#![allow(clippy::unwrap_used, clippy::panic)] // a failed expectation is a failed test

use std::sync::Arc;
use std::time::Duration;

use imagegate_core::clock::Clock as _;

use imagegate_core::quota::PACIFIC;
use imagegate_core::{
    Error, ErrorKind, GenerateRequest, ImageProvider, clock::ManualClock, quota::Dimension,
    quota::Limits,
};
use imagegate_mock::sim::{
    Latency, SimulatedUpstream, TruePool, UpstreamConfig, wire::UpstreamKind,
};
use imagegate_sim::world::classifier;
use jiff::Timestamp;
use jiff::tz::TimeZone;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn upstream(
    kind: UpstreamKind,
    limits: Limits,
    overload: f64,
    start: &str,
) -> (SimulatedUpstream, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(at(start)));
    let zone = match kind {
        UpstreamKind::Gemini | UpstreamKind::Vertex => PACIFIC.clone(),
        UpstreamKind::OpenRouter | UpstreamKind::OpenAi => TimeZone::UTC,
    };
    let up = SimulatedUpstream::new(
        UpstreamConfig {
            kind,
            project: "proj-a".into(),
            pools: vec![TruePool::new(vec!["m".into()], limits, zone)],
            latency: Latency::fixed(Duration::from_secs(10)),
            reject_latency: Duration::from_millis(500),
            overload_rate: overload,
            seed: 1,
        },
        clock.clone(),
        classifier(kind),
    );
    (up, clock)
}

/// Two requests served at 0 s and 10 s, then the third (at 20 s) refused.
async fn third_call(kind: UpstreamKind, limits: Limits) -> Error {
    let (up, _) = upstream(kind, limits, 0.0, "2026-01-15T12:00:00Z");
    let request = GenerateRequest::new("x");
    up.generate(&request).await.unwrap();
    up.generate(&request).await.unwrap();
    up.generate(&request).await.unwrap_err()
}

#[tokio::test]
async fn gemini_per_minute_quotas_name_their_dimension_and_the_true_wait() {
    for (limits, dimension, id) in [
        (
            Limits {
                rpm: Some(2),
                ..Limits::NONE
            },
            Dimension::Rpm,
            "GenerateRequestsPerMinutePerProjectPerModel",
        ),
        (
            Limits {
                ipm: Some(2),
                ..Limits::NONE
            },
            Dimension::Ipm,
            "GenerateContentOutputImagesPerMinutePerProjectPerModel",
        ),
        (
            Limits {
                tpm: Some(2 * 1_291),
                ..Limits::NONE
            },
            Dimension::Tpm,
            "GenerateContentInputTokensPerModelPerMinute",
        ),
    ] {
        let e = third_call(UpstreamKind::Gemini, limits).await;
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
        assert_eq!(e.provider(), Some("gemini"));
        assert_eq!(e.http_status(), Some(429));
        assert_eq!(e.quota().dimension, Some(dimension), "{e}");
        assert_eq!(e.quota().quota_id.as_deref(), Some(id));
        assert_eq!(e.quota().quota_value, limits.get(dimension));
        // Sent at 20 s; the oldest request expires at 60 s.
        assert_eq!(e.retry_after(), Some(Duration::from_secs(40)), "{e}");
    }
}

#[tokio::test]
async fn gemini_per_day_is_quota_exhausted_until_midnight_pacific() {
    let e = third_call(
        UpstreamKind::Gemini,
        Limits {
            rpd: Some(2),
            ..Limits::NONE
        },
    )
    .await;
    assert_eq!(e.kind(), ErrorKind::QuotaExhausted, "{e}");
    assert_eq!(e.quota().dimension, Some(Dimension::Rpd));
    assert_eq!(e.quota().quota_value, Some(2));
    assert_eq!(e.quota().reset_at, Some(at("2026-01-16T08:00:00Z")));
}

#[tokio::test]
async fn gemini_limit_zero_is_billing_required_and_never_waits() {
    let (up, _) = upstream(
        UpstreamKind::Gemini,
        Limits {
            rpd: Some(0),
            ..Limits::NONE
        },
        0.0,
        "2026-01-15T12:00:00Z",
    );
    let e = up.generate(&GenerateRequest::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BillingRequired, "{e}");
    assert!(!e.is_temporary());
    assert_eq!(e.quota().quota_value, Some(0));
    assert_eq!(e.retry_after(), None);
}

#[tokio::test]
async fn overloads_are_unavailable_for_every_provider() {
    for kind in UpstreamKind::ALL {
        let (up, _) = upstream(kind, Limits::NONE, 1.0, "2026-01-15T12:00:00Z");
        let e = up.generate(&GenerateRequest::new("x")).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert_eq!(e.http_status(), Some(503));
        assert!(e.is_temporary());
    }
}

#[tokio::test]
async fn openrouter_per_minute_waits_for_the_reset_header() {
    let e = third_call(
        UpstreamKind::OpenRouter,
        Limits {
            rpm: Some(2),
            ..Limits::NONE
        },
    )
    .await;
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.provider(), Some("openrouter"));
    assert_eq!(e.quota().dimension, Some(Dimension::Rpm));
    assert_eq!(e.quota().quota_value, Some(2));
    assert_eq!(e.quota().model.as_deref(), Some("m"));
    // Capacity returns at 60 s; the answer arrived at 20.5 s.
    assert_eq!(e.quota().reset_at, Some(at("2026-01-15T12:01:00Z")));
    assert_eq!(e.retry_after(), Some(Duration::from_millis(39_500)));
}

#[tokio::test]
async fn openrouter_per_day_resets_at_midnight_utc_and_no_credits_is_billing() {
    let e = third_call(
        UpstreamKind::OpenRouter,
        Limits {
            rpd: Some(2),
            ..Limits::NONE
        },
    )
    .await;
    assert_eq!(e.kind(), ErrorKind::QuotaExhausted, "{e}");
    assert_eq!(e.quota().dimension, Some(Dimension::Rpd));
    assert_eq!(e.quota().reset_at, Some(at("2026-01-16T00:00:00Z")));
    let (up, _) = upstream(
        UpstreamKind::OpenRouter,
        Limits {
            rpm: Some(0),
            ..Limits::NONE
        },
        0.0,
        "2026-01-15T12:00:00Z",
    );
    let e = up.generate(&GenerateRequest::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BillingRequired, "{e}");
    assert_eq!(e.http_status(), Some(402));
}

#[tokio::test]
async fn a_429_counts_nothing_so_waiting_its_retry_after_is_enough() {
    let (up, clock) = upstream(
        UpstreamKind::Gemini,
        Limits {
            rpm: Some(1),
            ..Limits::NONE
        },
        0.0,
        "2026-01-15T12:00:00Z",
    );
    let request = GenerateRequest::new("x");
    up.generate(&request).await.unwrap();
    let mut waited = Duration::ZERO;
    for _ in 0..3 {
        let e = up.generate(&request).await.unwrap_err();
        let wait = e.retry_after().unwrap();
        waited += wait;
        assert_eq!(e.kind(), ErrorKind::RateLimited);
        if wait > Duration::from_secs(30) {
            clock.advance(wait);
            break;
        }
    }
    // Were the refused requests counted, the window would still be full.
    up.generate(&request).await.unwrap();
    assert_eq!(up.used_today("m"), 2);
    assert!(waited > Duration::ZERO);
}

#[tokio::test]
async fn openai_429s_state_dimension_limit_and_the_true_wait() {
    for (limits, dimension) in [
        (
            Limits {
                ipm: Some(2),
                ..Limits::NONE
            },
            Dimension::Ipm,
        ),
        (
            Limits {
                rpm: Some(2),
                ..Limits::NONE
            },
            Dimension::Rpm,
        ),
        (
            Limits {
                tpm: Some(2 * 1_291),
                ..Limits::NONE
            },
            Dimension::Tpm,
        ),
    ] {
        let e = third_call(UpstreamKind::OpenAi, limits).await;
        assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
        assert_eq!(e.provider(), Some("openai"));
        assert_eq!(e.upstream_code(), Some("rate_limit_exceeded"));
        assert_eq!(e.quota().dimension, Some(dimension), "{e}");
        assert_eq!(e.quota().quota_value, limits.get(dimension), "{e}");
        // Sent at 20 s; the oldest request expires at 60 s.
        assert_eq!(e.retry_after(), Some(Duration::from_secs(40)), "{e}");
    }
    let e = third_call(
        UpstreamKind::OpenAi,
        Limits {
            rpd: Some(2),
            ..Limits::NONE
        },
    )
    .await;
    assert_eq!(e.kind(), ErrorKind::QuotaExhausted, "{e}");
    assert_eq!(e.quota().dimension, Some(Dimension::Rpd));
    assert_eq!(e.quota().quota_value, Some(2));
    // "Please try again in 11h59m40s" (midnight UTC from the refused request) is relative: read
    // when the answer arrives, 0.5 s later, it points half a second past midnight.
    assert_eq!(
        e.retry_after(),
        Some(Duration::from_secs(11 * 3600 + 59 * 60 + 40))
    );
    assert_eq!(
        e.quota().reset_at,
        Some(at("2026-01-16T00:00:00.5Z")),
        "{e}"
    );
}

#[tokio::test]
async fn an_openai_pool_without_entitlement_is_insufficient_quota() {
    let (up, _) = upstream(
        UpstreamKind::OpenAi,
        Limits {
            rpm: Some(0),
            ..Limits::NONE
        },
        0.0,
        "2026-01-15T12:00:00Z",
    );
    let e = up.generate(&GenerateRequest::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BillingRequired, "{e}");
    assert_eq!(e.upstream_code(), Some("insufficient_quota"));
    assert!(!e.is_temporary());
}

#[tokio::test]
async fn vertex_dynamic_shared_quota_429s_teach_no_limit_and_no_wait() {
    let e = third_call(
        UpstreamKind::Vertex,
        Limits {
            rpm: Some(2),
            ..Limits::NONE
        },
    )
    .await;
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.provider(), Some("vertex"));
    assert_eq!(e.http_status(), Some(429));
    assert_eq!(e.quota().dimension, None, "{e}");
    assert_eq!(e.quota().quota_value, None, "{e}");
    assert_eq!(e.retry_after(), None, "{e}");
    let (up, _) = upstream(
        UpstreamKind::Vertex,
        Limits {
            rpd: Some(0),
            ..Limits::NONE
        },
        0.0,
        "2026-01-15T12:00:00Z",
    );
    let e = up.generate(&GenerateRequest::new("x")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BillingRequired, "{e}");
    assert_eq!(e.http_status(), Some(403));
}

#[tokio::test]
async fn an_openai_success_states_its_per_minute_limits_as_the_headers_do() {
    let (up, clock) = upstream(
        UpstreamKind::OpenAi,
        Limits {
            ipm: Some(2),
            rpm: Some(10),
            ..Limits::NONE
        },
        0.0,
        "2026-01-15T12:00:00Z",
    );
    let response = up.generate(&GenerateRequest::new("x")).await.unwrap();
    let ipm = response
        .rate_limits
        .iter()
        .find(|s| s.dimension == Dimension::Ipm)
        .unwrap();
    assert_eq!((ipm.limit, ipm.remaining), (Some(2), Some(1)));
    // Admitted at 12:00:00, answered 10 s later: the image leaves the window at 12:01:00.
    assert_eq!(ipm.reset_at, Some(at("2026-01-15T12:01:00Z")));
    assert_eq!(clock.now(), at("2026-01-15T12:00:10Z"));
    let rpm = response
        .rate_limits
        .iter()
        .find(|s| s.dimension == Dimension::Rpm)
        .unwrap();
    assert_eq!(rpm.remaining, Some(9));
    // Other providers state nothing on a success.
    let (gemini, _) = upstream(
        UpstreamKind::Gemini,
        Limits::NONE,
        0.0,
        "2026-01-15T12:00:00Z",
    );
    let response = gemini.generate(&GenerateRequest::new("x")).await.unwrap();
    assert!(response.rate_limits.is_empty());
}

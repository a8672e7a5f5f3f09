//! Rate-limit headers a successful answer carries (`GenerateResponse::rate_limits`, which the
//! OpenAI provider fills from `x-ratelimit-*`) teach the quota model without a 429.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use imagegate_core::quota::RateLimitSnapshot;
use imagegate_core::{
    Capabilities, GenerateRequest, GenerateResponse, Image, ImageProvider, ServedBy, clock::Clock,
    clock::TokioClock, quota::Dimension,
};
use imagegate_mock::Outcome;
use imagegate_router::{Router, Target};

/// A 1x1 PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0,
    0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99, 0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// Answers every call with one image and headers saying the minute's last request was used.
#[derive(Debug)]
struct HeaderProvider {
    clock: Arc<TokioClock>,
    calls: std::sync::atomic::AtomicUsize,
}

#[async_trait]
impl ImageProvider for HeaderProvider {
    fn name(&self) -> &str {
        "a"
    }
    fn project(&self) -> Option<&str> {
        Some("a-proj")
    }
    fn default_model(&self) -> &str {
        "model-a"
    }
    fn capabilities(&self, _: Option<&str>) -> Capabilities {
        Capabilities::new(1)
    }
    async fn generate(&self, _: &GenerateRequest) -> imagegate_core::Result<GenerateResponse> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let image = Image::checked(PNG.to_vec(), "image/png")?;
        let mut response = GenerateResponse::new(vec![image], ServedBy::new("a", "model-a", None));
        response.rate_limits = vec![RateLimitSnapshot {
            dimension: Dimension::Rpm,
            limit: Some(3),
            remaining: Some(0),
            reset_at: Some(at("2026-11-23T10:00:30Z")),
        }];
        let _ = self.clock.now();
        Ok(response)
    }
}

#[tokio::test(start_paused = true)]
async fn a_successful_answer_with_nothing_remaining_holds_the_pool_until_its_reset() {
    let clock = clock();
    let a = Arc::new(HeaderProvider {
        clock: clock.clone(),
        calls: Default::default(),
    });
    let b = always("b", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(Target::new(
            "a",
            a.clone(),
            "model-a",
            pool("a", "a-proj", "model-a", unlimited()),
        ))
        .target(target("b", &b, unlimited()))
        .build()
        .unwrap();
    let request = GenerateRequest::new("a lighthouse");
    let first = router.generate(&request).await.unwrap();
    assert_eq!(first.attempts.last().unwrap().target, "a");
    // The headers said the limit is 3 and none remain until :30: the next request goes to B
    // without asking A, and A's pool now knows its limit.
    let second = router.generate(&request).await.unwrap();
    assert_eq!(second.attempts.last().unwrap().target, "b");
    assert_eq!(a.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    let statuses = router.pool_statuses().await.unwrap();
    let pool_a = statuses.iter().find(|s| s.id.provider == "a").unwrap();
    let rpm = pool_a
        .dimensions
        .iter()
        .find(|d| d.dimension == Dimension::Rpm)
        .unwrap();
    assert_eq!(rpm.limit, Some(3));
}

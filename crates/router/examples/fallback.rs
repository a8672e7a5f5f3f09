//! Two providers behind one router: the first answers a per-minute 429, the router learns it
//! and falls back to the second at once, then sends the next request straight to the second
//! because the first pool is held for the delay Google asked for.
//!
//! ```text
//! cargo run -p imagegate-router --example fallback
//! ```
//!
//! Runs offline: a scripted stand-in plays the rate-limited Gemini project and the mock
//! provider plays the fallback. In real use the targets are `imagegate_gemini::GeminiProvider`,
//! `imagegate_openrouter::OpenRouterProvider` and so on, built the same way.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use imagegate_core::quota::{Limits, PACIFIC, PoolConfig, PoolId};
use imagegate_core::{
    ErrorKind, GenerateRequest, ImageProvider, ImageSize, QuotaFacts, clock::SystemClock,
    quota::Dimension,
};
use imagegate_mock::{MockProvider, Outcome, ScriptedProvider};
use imagegate_router::{Router, Target};
use jiff::tz::TimeZone;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let clock = Arc::new(SystemClock);

    // Gemini's free tier, out of per-minute quota: a 429 asking for 40 s.
    let mut quota = QuotaFacts::default();
    quota.dimension = Some(Dimension::Rpm);
    let quota_error = imagegate_core::Error::new(ErrorKind::RateLimited, "per-minute quota")
        .with_retry_after(Duration::from_secs(40))
        .with_quota(quota);
    let gemini = ScriptedProvider::new("gemini", clock.clone())
        .then(Outcome::error(quota_error))
        .otherwise(Outcome::image());
    let fallback = MockProvider::new();

    let router = Router::builder(clock)
        .target(Target::new(
            "gemini",
            Arc::new(gemini),
            "gemini-2.5-flash-image",
            PoolConfig::new(
                PoolId::new("gemini", "proj-a", "gemini-2.5-flash-image"),
                Limits {
                    rpm: Some(10),
                    ..Limits::NONE
                },
                PACIFIC.clone(),
            ),
        ))
        .target(Target::new(
            "fallback",
            Arc::new(fallback),
            "mock-image-1",
            PoolConfig::new(
                PoolId::new("mock", "local", "mock-image-1"),
                Limits::NONE,
                TimeZone::UTC,
            ),
        ))
        .build()?;

    for prompt in ["a lighthouse at dusk", "a red fox in snow"] {
        let request = GenerateRequest::new(prompt).with_size(ImageSize::Half);
        let response = router.generate(&request).await?;
        let path: Vec<String> = response
            .attempts
            .iter()
            .map(|a| format!("{}:{}", a.target, a.outcome.map_or("ok", |k| k.as_str())))
            .collect();
        println!(
            "{prompt:?}: served by {} after {}",
            response.served_by.provider,
            path.join(" -> ")
        );
    }
    Ok(())
}

//! The provider crates' own clients against the running emulator: what imagegate's Gemini and
//! OpenRouter providers see over HTTP is classified exactly as the real services' answers are,
//! and a day ends when the (injected) clock passes the pool's midnight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{config, png_size, start};
use imagegate_core::{
    AspectRatio, ErrorKind, GenerateRequest, ImageProvider, ImageSize, quota::Dimension,
    secret::ApiKey,
};
use imagegate_gemini::GeminiProvider;
use imagegate_openrouter::OpenRouterProvider;
use jiff::Timestamp;

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const GEMINI: &str = r#"
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]
rpm = 1
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-3-pro-image-preview"]
rpd = 1
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-3.1-flash-image-preview"]
rpd = 0
[[upstream.key]]
provider = "gemini"
project = "proj-a"
key = "emulator-key-a"
"#;

fn gemini(url: &str, key: &str, clock: Arc<imagegate_core::clock::ManualClock>) -> GeminiProvider {
    GeminiProvider::new(ApiKey::new(key))
        .with_base_url(url)
        .unwrap()
        .with_clock(clock)
}

#[tokio::test]
async fn the_gemini_provider_gets_images_and_every_quota_shape_classified() {
    let emu = start(&config(GEMINI)).await;
    let provider = gemini(&emu.url, "emulator-key-a", emu.clock.clone());
    let request = GenerateRequest::new("a lighthouse")
        .with_model("gemini-2.5-flash-image")
        .with_aspect_ratio(AspectRatio::new(3, 2).unwrap());
    let response = provider.generate(&request).await.unwrap();
    assert_eq!(response.images.len(), 1);
    assert_eq!(response.images[0].mime_type, "image/png");
    assert_eq!(png_size(&response.images[0].bytes), (1024, 682));

    // Per minute: rate limited, for exactly the time the window needs.
    emu.clock.advance(Duration::from_secs(20));
    let e = provider.generate(&request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.http_status(), Some(429));
    assert_eq!(e.quota().dimension, Some(Dimension::Rpm));
    assert_eq!(e.quota().quota_value, Some(1));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(40)), "{e}");
    emu.clock.advance(Duration::from_secs(40));
    provider.generate(&request).await.unwrap();

    // Per day: exhausted until midnight Pacific, and served again once the clock is there.
    let daily = GenerateRequest::new("a lighthouse")
        .with_model("gemini-3-pro-image-preview")
        .with_size(ImageSize::OneK);
    provider.generate(&daily).await.unwrap();
    let e = provider.generate(&daily).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExhausted, "{e}");
    assert_eq!(e.quota().dimension, Some(Dimension::Rpd));
    assert_eq!(e.quota().reset_at, Some(at("2026-01-16T08:00:00Z")));
    emu.clock.set(at("2026-01-16T07:59:59Z"));
    assert_eq!(
        provider.generate(&daily).await.unwrap_err().kind(),
        ErrorKind::QuotaExhausted
    );
    emu.clock.set(at("2026-01-16T08:00:00Z"));
    provider.generate(&daily).await.unwrap();

    // Limit 0: billing required, never worth waiting for.
    let unbilled = GenerateRequest::new("x").with_model("gemini-3.1-flash-image-preview");
    let e = provider.generate(&unbilled).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BillingRequired, "{e}");
    assert!(!e.is_temporary());

    // A key the emulator does not know: Google's API_KEY_INVALID, read as unauthorized.
    let stranger = gemini(&emu.url, "emulator-key-z", emu.clock.clone());
    let e = stranger.generate(&request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert_eq!(e.http_status(), Some(400));

    // An unknown model: not found.
    let e = provider
        .generate(&GenerateRequest::new("x").with_model("gemini-0-image"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelNotFound, "{e}");
}

#[tokio::test]
async fn the_gemini_provider_reads_an_overload_as_unavailable() {
    let emu = start(&format!(
        "seed = 5\n[upstream]\nlatency = \"0s\"\nreject_latency = \"0s\"\noverload_rate = 0.999\n{GEMINI}"
    ))
    .await;
    let provider = gemini(&emu.url, "emulator-key-a", emu.clock.clone());
    let e = provider
        .generate(&GenerateRequest::new("x").with_model("gemini-2.5-flash-image"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert_eq!(e.http_status(), Some(503));
}

const OPENROUTER: &str = r#"
[[upstream.pool]]
provider = "openrouter"
project = "acct"
models = ["google/gemini-2.5-flash-image"]
rpm = 1
[[upstream.pool]]
provider = "openrouter"
project = "acct"
models = ["google/gemini-3-pro-image-preview"]
rpd = 1
[[upstream.pool]]
provider = "openrouter"
project = "acct"
models = ["google/gemini-3.1-flash-image-preview"]
rpm = 0
"#;

#[tokio::test]
async fn the_openrouter_provider_gets_images_and_every_quota_shape_classified() {
    let emu = start(&config(OPENROUTER)).await;
    let provider = OpenRouterProvider::new(ApiKey::new("emulator-or-key"))
        .with_base_url(&emu.url)
        .unwrap()
        .with_clock(emu.clock.clone());
    let request = GenerateRequest::new("a nano banana dish")
        .with_model("google/gemini-2.5-flash-image")
        .with_aspect_ratio(AspectRatio::new(16, 9).unwrap());
    let response = provider.generate(&request).await.unwrap();
    assert_eq!(response.images.len(), 1);
    assert_eq!(png_size(&response.images[0].bytes), (1024, 576));

    emu.clock.advance(Duration::from_millis(20_500));
    let e = provider.generate(&request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.quota().dimension, Some(Dimension::Rpm));
    assert_eq!(e.quota().reset_at, Some(at("2026-01-15T12:01:00Z")));
    let wait = e.retry_after().unwrap();
    assert!(
        (Duration::from_millis(39_500)..=Duration::from_secs(40)).contains(&wait),
        "{wait:?}"
    );

    let daily = GenerateRequest::new("x").with_model("google/gemini-3-pro-image-preview");
    provider.generate(&daily).await.unwrap();
    let e = provider.generate(&daily).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::QuotaExhausted, "{e}");
    assert_eq!(
        e.quota().reset_at,
        Some(at("2026-01-16T00:00:00Z")),
        "OpenRouter's day is UTC"
    );
    emu.clock.set(at("2026-01-16T00:00:00Z"));
    provider.generate(&daily).await.unwrap();

    let e = provider
        .generate(&GenerateRequest::new("x").with_model("google/gemini-3.1-flash-image-preview"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BillingRequired, "{e}");
    assert_eq!(e.http_status(), Some(402));

    let info = provider.key_info().await.unwrap();
    assert!(!info.is_exhausted());
}

#[tokio::test]
async fn the_openrouter_provider_reads_a_bad_key_as_unauthorized() {
    let emu = start(&config(&format!(
        "{OPENROUTER}\n[[upstream.key]]\nprovider = \"openrouter\"\nproject = \"acct\"\nkey = \"emulator-or-key\"\n"
    )))
    .await;
    let provider = OpenRouterProvider::new(ApiKey::new("emulator-other-key"))
        .with_base_url(&format!("{}/api/v1", emu.url))
        .unwrap()
        .with_clock(emu.clock.clone());
    let e = provider
        .generate(&GenerateRequest::new("x").with_model("google/gemini-2.5-flash-image"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    assert_eq!(e.http_status(), Some(401));
}

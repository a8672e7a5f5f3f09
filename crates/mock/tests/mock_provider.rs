//! MockProvider: real PNGs, determinism, size mapping, capabilities, a full response, latency.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{decode, differing_share, distinct_colours, t0};
use imagegate_core::{
    AspectRatio, ErrorKind, GenerateRequest, ImageProvider, ImageSize, ReferenceImage,
    clock::Clock, clock::ManualClock, clock::TokioClock,
};
use imagegate_mock::render::{self, Fingerprint};
use imagegate_mock::{MockProvider, OUTPUT_TOKENS_PER_IMAGE};

/// Small images keep the debug-build tests fast.
fn small(prompt: &str) -> GenerateRequest {
    GenerateRequest::new(prompt).with_size(ImageSize::Half)
}

async fn png_of(provider: &MockProvider, request: &GenerateRequest) -> Vec<u8> {
    let response = provider.generate(request).await.unwrap();
    assert_eq!(response.images.len(), 1);
    response.images[0].bytes.to_vec()
}

#[tokio::test]
async fn images_are_valid_pngs_of_the_requested_size_with_a_visible_pattern() {
    let request = small("a red fox in the snow").with_aspect_ratio("16:9".parse().unwrap());
    let response = MockProvider::new().generate(&request).await.unwrap();
    let image = &response.images[0];
    assert_eq!(image.mime_type, "image/png");
    assert_eq!((image.width, image.height), (Some(512), Some(288)));
    let (w, h, pixels) = decode(&image.bytes);
    assert_eq!((w, h), (512, 288));
    // Not a blank square: the four pattern colours plus the fingerprint strip.
    assert!(
        distinct_colours(&pixels) >= 8,
        "{} colours",
        distinct_colours(&pixels)
    );
    // Modest compression still keeps flat patterns far below the raw 442 kB.
    assert!(
        image.bytes.len() < 512 * 288 * 3 / 4,
        "{} bytes",
        image.bytes.len()
    );
}

#[tokio::test]
async fn the_same_request_gives_the_same_bytes() {
    let request = small("a lighthouse at dusk").with_seed(7);
    let a = png_of(&MockProvider::new(), &request).await;
    let b = png_of(&MockProvider::new().with_name("other"), &request).await;
    assert_eq!(a, b, "the provider's name must not change the picture");
}

#[tokio::test]
async fn a_different_prompt_draws_a_visibly_different_picture() {
    let mock = MockProvider::new();
    let a = png_of(&mock, &small("a lighthouse at dusk")).await;
    let b = png_of(&mock, &small("a lighthouse at dawn")).await;
    assert_ne!(a, b);
    let (_, _, pa) = decode(&a);
    let (_, _, pb) = decode(&b);
    let share = differing_share(&pa, &pb);
    assert!(share > 0.5, "only {share:.2} of the pixels differ");
}

#[tokio::test]
async fn seed_model_and_ratio_each_change_the_image() {
    let mock = MockProvider::new();
    let base = small("a cat");
    let variants = [
        base.clone().with_seed(1),
        base.clone().with_seed(2),
        base.clone().with_model("mock-image-2"),
        base.clone().with_aspect_ratio("4:3".parse().unwrap()),
    ];
    let mut seen = vec![png_of(&mock, &base).await];
    for request in &variants {
        let bytes = png_of(&mock, request).await;
        assert!(!seen.contains(&bytes), "{request:?} repeated an image");
        seen.push(bytes);
    }
    // The size is part of the fingerprint too, not only of the dimensions.
    let two_k = GenerateRequest::new("a cat").with_size(ImageSize::TwoK);
    assert_ne!(
        Fingerprint::of("mock-image-1", &base, 0),
        Fingerprint::of("mock-image-1", &two_k, 0)
    );
}

#[tokio::test]
async fn reference_images_change_the_edit() {
    let mock = MockProvider::new();
    let source = png_of(&mock, &small("the source")).await;
    let edit = |bytes: Vec<u8>| {
        small("make it blue").with_reference_image(ReferenceImage::new(bytes, "image/png"))
    };
    let mut other = source.clone();
    let last = other.len() - 1;
    other[last] ^= 1;
    let a = png_of(&mock, &edit(source.clone())).await;
    let b = png_of(&mock, &edit(other)).await;
    let plain = png_of(&mock, &small("make it blue")).await;
    assert_ne!(a, b);
    assert_ne!(a, plain);
    assert_eq!(a, png_of(&mock, &edit(source)).await);
}

#[tokio::test]
async fn several_images_per_call_are_all_different() {
    let request = GenerateRequest::new("four views")
        .with_size(ImageSize::Half)
        .with_aspect_ratio("1:4".parse().unwrap())
        .with_count(4);
    let response = MockProvider::new().generate(&request).await.unwrap();
    assert_eq!(response.images.len(), 4);
    for (i, a) in response.images.iter().enumerate() {
        assert_eq!((a.width, a.height), (Some(128), Some(512)));
        for b in &response.images[i + 1..] {
            assert_ne!(a.bytes, b.bytes);
        }
    }
    let usage = response.usage.unwrap();
    assert_eq!(usage.output_tokens, 4 * OUTPUT_TOKENS_PER_IMAGE);
    assert_eq!(usage.image_tokens, Some(4 * 1_290));
}

#[test]
fn sizes_and_ratios_map_to_pixels() {
    let ratio = |s: &str| Some(s.parse::<AspectRatio>().unwrap());
    let cases = [
        (None, None, (1024, 1024)),
        (Some(ImageSize::Half), None, (512, 512)),
        (Some(ImageSize::OneK), ratio("1:1"), (1024, 1024)),
        (Some(ImageSize::TwoK), None, (2048, 2048)),
        (Some(ImageSize::FourK), None, (4096, 4096)),
        (Some(ImageSize::OneK), ratio("16:9"), (1024, 576)),
        (Some(ImageSize::OneK), ratio("9:16"), (576, 1024)),
        (Some(ImageSize::TwoK), ratio("3:2"), (2048, 1365)),
        (None, ratio("21:9"), (1024, 438)),
        (Some(ImageSize::Half), ratio("1:1000"), (1, 512)),
    ];
    for (size, ratio, expected) in cases {
        assert_eq!(
            render::dimensions(size, ratio),
            expected,
            "{size:?} {ratio:?}"
        );
    }
}

#[tokio::test]
async fn extreme_ratios_still_give_valid_images() {
    let request = small("a needle").with_aspect_ratio("1:1000".parse().unwrap());
    let response = MockProvider::new().generate(&request).await.unwrap();
    let (w, h, _) = decode(&response.images[0].bytes);
    assert_eq!((w, h), (1, 512));
}

#[tokio::test]
async fn capabilities_are_declared_and_enforced() {
    let mock = MockProvider::new();
    let caps = mock.capabilities(None);
    assert!(caps.editing);
    assert!(caps.seed);
    assert_eq!(caps.max_images_per_call, 4);
    assert_eq!(caps.sizes, ImageSize::ALL.to_vec());
    assert!(caps.aspect_ratios.is_empty(), "empty means any ratio");
    assert_eq!(mock.capabilities(Some("anything")), caps);

    let named = MockProvider::new()
        .with_name("mock-b")
        .with_project("proj-b");
    for bad in [
        small("too many").with_count(5),
        small("none").with_count(0),
        small("   "),
    ] {
        let err = named.generate(&bad).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{bad:?}");
        assert_eq!(err.provider(), Some("mock-b"));
        assert_eq!(err.project(), Some("proj-b"));
        assert!(!err.is_temporary());
    }
    let err = named.generate(&small("x").with_count(5)).await.unwrap_err();
    assert!(err.message().contains("at most 4 images"), "{err}");
}

#[tokio::test]
async fn the_response_is_filled_like_a_real_providers() {
    let clock = Arc::new(ManualClock::new(t0()));
    let mock = MockProvider::new()
        .with_name("mock-a")
        .with_project("proj-a")
        .with_clock(clock.clone());
    assert_eq!(mock.name(), "mock-a");
    assert_eq!(mock.project(), Some("proj-a"));
    assert_eq!(mock.default_model(), "mock-image-1");

    let request = small("twelve chars").with_count(2);
    let response = mock.generate(&request).await.unwrap();
    assert_eq!(response.served_by.provider, "mock-a");
    assert_eq!(response.served_by.model, "mock-image-1");
    assert_eq!(response.served_by.project.as_deref(), Some("proj-a"));
    let usage = response.usage.unwrap();
    assert_eq!(usage.input_tokens, 3);
    assert_eq!(usage.output_tokens, 2 * 1_290);
    assert_eq!(response.cost_usd, Some(0.0));
    assert_eq!(response.note, None);
    let id = response.request_id.clone().unwrap();
    assert!(id.starts_with("mock-a-"), "{id}");
    assert_eq!(id.len(), "mock-a-".len() + 16);
    assert_eq!(response.attempts.len(), 1);
    let attempt = &response.attempts[0];
    assert_eq!(attempt.target, "mock-a/mock-image-1@proj-a");
    assert_eq!(attempt.outcome, None);
    assert_eq!(attempt.started_at, t0());
    assert_eq!(attempt.elapsed, Duration::ZERO);
    assert_eq!(attempt.cost_usd, 0.0);

    // The id is deterministic and follows the request.
    let again = mock.generate(&request).await.unwrap();
    assert_eq!(again.request_id.as_deref(), Some(id.as_str()));
    let other = mock.generate(&small("another")).await.unwrap();
    assert_ne!(other.request_id.as_deref(), Some(id.as_str()));

    // A requested model is served and reported as such.
    let custom = mock
        .generate(&small("x").with_model("mock-image-pro"))
        .await
        .unwrap();
    assert_eq!(custom.served_by.model, "mock-image-pro");
    let renamed = MockProvider::new()
        .with_default_model("mock-image-2")
        .with_tokens_per_image(100);
    let response = renamed.generate(&small("x")).await.unwrap();
    assert_eq!(response.served_by.model, "mock-image-2");
    assert_eq!(response.usage.unwrap().output_tokens, 100);
}

#[tokio::test]
async fn latency_is_slept_on_the_injected_clock() {
    let clock = Arc::new(ManualClock::new(t0()));
    let mock = MockProvider::new().with_latency(Duration::from_secs(20), clock.clone());
    let response = mock.generate(&small("slow")).await.unwrap();
    assert_eq!(clock.sleeps(), [Duration::from_secs(20)]);
    assert_eq!(clock.now(), t0() + jiff::SignedDuration::from_secs(20));
    let attempt = &response.attempts[0];
    assert_eq!(attempt.started_at, t0());
    assert_eq!(attempt.elapsed, Duration::from_secs(20));

    // A rejected request is answered at once: nothing was "sent".
    mock.generate(&small("x").with_count(9)).await.unwrap_err();
    assert_eq!(clock.sleeps().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn concurrent_calls_overlap_in_simulated_time() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(t0()));
    let provider: Arc<dyn ImageProvider> =
        Arc::new(MockProvider::new().with_latency(Duration::from_secs(30), clock.clone()));
    let started = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let provider = provider.clone();
            tokio::spawn(async move {
                let request = GenerateRequest::new(format!("task {i}"))
                    .with_size(ImageSize::Half)
                    .with_aspect_ratio("8:1".parse().unwrap());
                provider.generate(&request).await
            })
        })
        .collect();
    for task in tasks {
        let response = task.await.unwrap().unwrap();
        assert_eq!(response.attempts[0].elapsed, Duration::from_secs(30));
    }
    // Eight calls of 30 s each, run concurrently: 30 simulated seconds in all.
    assert_eq!(started.elapsed(), Duration::from_secs(30));
}

#[test]
fn providers_are_send_sync_and_usable_as_trait_objects() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<MockProvider>();
    let provider: Arc<dyn ImageProvider> = Arc::new(MockProvider::new());
    assert_eq!(provider.name(), "mock");
    let boxed: Box<dyn ImageProvider> = Box::new(MockProvider::default());
    assert_eq!(boxed.default_model(), "mock-image-1");
}

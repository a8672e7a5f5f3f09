//! What the router adds to one request: the same request through a one-target router versus
//! straight to the provider.
//!
//! The provider returns a prebuilt image (rendering a PNG would dwarf what is measured), so the
//! difference between `direct` and a `router_*` bench is the routing: request numbering,
//! capability checks, the per-call request copy, the token and price estimates, quota
//! admission and settlement, the budget, attempts and events.
//!
//! Run: `cargo bench -p imagegate-router --bench overhead`. Target: at most 20 µs median added.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use divan::{Bencher, black_box};
use imagegate_core::quota::{Limits, PoolConfig, PoolId};
use imagegate_core::{
    Capabilities, GenerateRequest, GenerateResponse, Image, ImageProvider, ImageSize, Result,
    ServedBy, clock::SystemClock,
};
use imagegate_mock::render::{Fingerprint, render_png};
use imagegate_router::{Budget, Router, Target};
use tokio::runtime::Runtime;

fn main() {
    divan::main();
}

/// A provider that answers every request with the same prebuilt 0.5K image.
#[derive(Debug)]
struct Prebuilt {
    response: GenerateResponse,
}

impl Prebuilt {
    fn new() -> Self {
        let request = GenerateRequest::new("bench").with_size(ImageSize::Half);
        let bytes = render_png(&Fingerprint::of("bench", &request, 0), 512, 512).unwrap();
        let image = Image::checked(bytes, "image/png").unwrap();
        Prebuilt {
            response: GenerateResponse::new(
                vec![image],
                ServedBy::new("bench", "bench-model", None),
            ),
        }
    }
}

#[async_trait]
impl ImageProvider for Prebuilt {
    fn name(&self) -> &str {
        "bench"
    }
    fn default_model(&self) -> &str {
        "bench-model"
    }
    fn capabilities(&self, _model: Option<&str>) -> Capabilities {
        Capabilities::new(1)
    }
    async fn generate(&self, _request: &GenerateRequest) -> Result<GenerateResponse> {
        Ok(self.response.clone())
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn request() -> GenerateRequest {
    GenerateRequest::new("a lighthouse at dusk, oil on canvas").with_size(ImageSize::Half)
}

fn router(limits: Limits, budget: Budget) -> Router {
    let pool = PoolConfig::new(
        PoolId::new("bench", "proj", "bench-model"),
        limits,
        imagegate_core::quota::PACIFIC.clone(),
    );
    Router::builder(Arc::new(SystemClock))
        .target(Target::new(
            "bench",
            Arc::new(Prebuilt::new()),
            "bench-model",
            pool,
        ))
        .budget(budget)
        .build()
        .unwrap()
}

#[divan::bench(sample_count = 1000)]
fn direct(bencher: Bencher) {
    let rt = runtime();
    let provider = Prebuilt::new();
    let req = request();
    bencher.bench_local(|| rt.block_on(provider.generate(black_box(&req))).unwrap());
}

/// A pool with no limits: admission, settlement, attempts, events.
#[divan::bench(sample_count = 1000)]
fn router_unlimited_pool(bencher: Bencher) {
    let rt = runtime();
    let router = router(Limits::NONE, Budget::default());
    let req = request();
    bencher.bench_local(|| rt.block_on(router.generate(black_box(&req))).unwrap());
}

/// All four limits set (so every dimension is checked and counted, and the daily-limit warning
/// reads the pool's status after each call) and a budget.
#[divan::bench(sample_count = 1000)]
fn router_four_limits_and_budget(bencher: Bencher) {
    let rt = runtime();
    let limits = Limits {
        rpm: Some(u64::MAX / 4),
        rpd: Some(u64::MAX / 4),
        tpm: Some(u64::MAX / 4),
        ipm: Some(u64::MAX / 4),
    };
    let router = router(limits, Budget::new(Some(1e12), Some(1e12)));
    let req = request();
    bencher.bench_local(|| rt.block_on(router.generate(black_box(&req))).unwrap());
}

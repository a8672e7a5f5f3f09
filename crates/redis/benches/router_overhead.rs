//! What the router adds to one request when its quota store is Redis: the router bench of
//! `imagegate-router` (`cargo bench -p imagegate-router --bench overhead`) with a
//! `RedisQuotaStore` on a loopback Redis instead of the memory store.
//!
//! Run (a Redis with no persistence on a free port):
//! `redis-server --port 6390 --save "" --appendonly no &`
//! `IMAGEGATE_BENCH_REDIS=redis://127.0.0.1:6390/0 cargo bench -p imagegate-redis --bench router_overhead`
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use divan::{Bencher, black_box};
use imagegate_core::quota::{Limits, PoolConfig, PoolId, QuotaStore};
use imagegate_core::{
    Capabilities, GenerateRequest, GenerateResponse, Image, ImageProvider, ImageSize, Result,
    ServedBy, clock::SystemClock,
};
use imagegate_mock::render::{Fingerprint, render_png};
use imagegate_redis::{RedisQuotaStore, RedisStoreOptions};
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
        .enable_all()
        .build()
        .unwrap()
}

fn request() -> GenerateRequest {
    GenerateRequest::new("a lighthouse at dusk, oil on canvas").with_size(ImageSize::Half)
}

fn router(rt: &Runtime, limits: Limits, budget: Budget, redis: bool) -> Router {
    let pool = PoolConfig::new(
        PoolId::new("bench", "proj", "bench-model"),
        limits,
        imagegate_core::quota::PACIFIC.clone(),
    );
    let mut builder = Router::builder(Arc::new(SystemClock))
        .target(Target::new(
            "bench",
            Arc::new(Prebuilt::new()),
            "bench-model",
            pool,
        ))
        .budget(budget);
    if redis {
        let url = std::env::var("IMAGEGATE_BENCH_REDIS").expect(
            "IMAGEGATE_BENCH_REDIS=redis://HOST:PORT/DB names the Redis to measure against",
        );
        let prefix = format!("bench-{}", jiff::Timestamp::now().as_millisecond());
        let _guard = rt.enter();
        let store =
            RedisQuotaStore::new(RedisStoreOptions::new(url).with_key_prefix(prefix)).unwrap();
        builder = builder.store(Arc::new(store) as Arc<dyn QuotaStore>);
    }
    builder.build().unwrap()
}

fn four_limits() -> Limits {
    Limits {
        rpm: Some(u64::MAX / 4),
        rpd: Some(u64::MAX / 4),
        tpm: Some(u64::MAX / 4),
        ipm: Some(u64::MAX / 4),
    }
}

#[divan::bench(sample_count = 1000)]
fn direct(bencher: Bencher) {
    let rt = runtime();
    let provider = Prebuilt::new();
    let req = request();
    bencher.bench_local(|| rt.block_on(provider.generate(black_box(&req))).unwrap());
}

/// The memory store, as in the router's own bench.
#[divan::bench(sample_count = 1000)]
fn router_memory_four_limits_and_budget(bencher: Bencher) {
    let rt = runtime();
    let router = router(
        &rt,
        four_limits(),
        Budget::new(Some(1e12), Some(1e12)),
        false,
    );
    let req = request();
    bencher.bench_local(|| rt.block_on(router.generate(black_box(&req))).unwrap());
}

/// The Redis store: admission and settlement are each a script on Redis.
#[divan::bench(sample_count = 1000)]
fn router_redis_four_limits_and_budget(bencher: Bencher) {
    let rt = runtime();
    let router = router(
        &rt,
        four_limits(),
        Budget::new(Some(1e12), Some(1e12)),
        true,
    );
    let req = request();
    bencher.bench_local(|| rt.block_on(router.generate(black_box(&req))).unwrap());
}

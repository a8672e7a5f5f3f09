//! Admission latency and throughput of the Redis store beside the memory store, from 1, 8 and
//! 64 concurrent tasks (docs/performance.md has the command and the numbers).
//!
//! ```text
//! redis-server --port 6390 --save "" --appendonly no &
//! cargo run --release -p imagegate-redis --example admission_latency -- redis://127.0.0.1:6390/0
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use imagegate_core::quota::{
    Admission, Cost, Limits, MemoryQuotaStore, PACIFIC, PoolConfig, PoolId, QuotaStore,
};
use imagegate_redis::{RedisQuotaStore, RedisStoreOptions};
use jiff::Timestamp;

const RUN: Duration = Duration::from_secs(3);

fn pool() -> PoolConfig {
    // Limits no run reaches, so every admission does the full check and reserves.
    let limits = Limits {
        rpm: Some(100_000_000),
        rpd: Some(1_000_000_000),
        tpm: Some(1_000_000_000_000),
        ipm: Some(100_000_000),
    };
    let id = PoolId::new("gemini", "bench", "gemini-2.5-flash-image");
    PoolConfig::new(id, limits, PACIFIC.clone())
}

/// Runs `tasks` tasks admitting for `RUN`; prints p50, p99 and admissions per second.
async fn measure(name: &str, store: Arc<dyn QuotaStore>, tasks: usize) -> Result<(), String> {
    let id = pool().id;
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let store = Arc::clone(&store);
        let id = id.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while started.elapsed() < RUN {
                let t = Instant::now();
                let admission = store
                    .admit(&id, Cost::new(1, 1, 1_290), Timestamp::now())
                    .await
                    .map_err(|e| e.to_string())?;
                latencies.push(t.elapsed());
                if !matches!(admission, Admission::Go(_)) {
                    return Err(format!("not admitted: {admission:?}"));
                }
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.map_err(|e| e.to_string())??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| {
        let i = ((all.len() as f64 - 1.0) * p).round() as usize;
        all.get(i).copied().unwrap_or_default()
    };
    println!(
        "| {name} | {tasks} | {:.0} µs | {:.0} µs | {:.0} |",
        pct(0.50).as_secs_f64() * 1e6,
        pct(0.99).as_secs_f64() * 1e6,
        all.len() as f64 / elapsed
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: admission_latency redis://HOST:PORT/DB")?;
    println!("| store | tasks | p50 | p99 | admissions/s |");
    println!("|---|---|---|---|---|");
    for tasks in [1, 8, 64] {
        let memory: Arc<dyn QuotaStore> = Arc::new(MemoryQuotaStore::new());
        memory
            .configure(pool(), Timestamp::now())
            .await
            .map_err(|e| e.to_string())?;
        measure("memory", memory, tasks).await?;
        let prefix = format!("bench-{tasks}-{}", Timestamp::now().as_millisecond());
        let redis =
            RedisQuotaStore::new(RedisStoreOptions::new(url.as_str()).with_key_prefix(prefix))
                .map_err(|e| e.to_string())?;
        let redis: Arc<dyn QuotaStore> = Arc::new(redis);
        redis
            .configure(pool(), Timestamp::now())
            .await
            .map_err(|e| e.to_string())?;
        measure("redis", redis, tasks).await?;
    }
    Ok(())
}

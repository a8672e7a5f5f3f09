//! The cost of one admission decision on a pool with all four limits (target: at most 1 µs
//! median). Run: `cargo bench -p imagegate-core --bench admission`; the figures are recorded
//! in docs/performance.md.
//!
//! Every benchmark runs in a steady state: time moves 1 ms per decision, so the 60-second log
//! holds about 60,000 entries and each admission also evicts one, as a busy pool would.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)] // bench harness

use divan::{Bencher, black_box};
use imagegate_core::quota::{
    Admission, Cost, Limits, MemoryQuotaStore, PACIFIC, PoolConfig, PoolId, PoolLedger,
};
use jiff::{SignedDuration, Timestamp};

fn main() {
    divan::main();
}

const COST: Cost = Cost::new(1, 1, 1_290);
const STEP: SignedDuration = SignedDuration::from_millis(1);

fn start() -> Timestamp {
    "2026-11-23T18:00:00Z".parse().unwrap()
}

fn id() -> PoolId {
    PoolId::new("gemini", "proj-a", "gemini-2.5-flash-image")
}

/// Four limits, none of them reached at one admission per millisecond.
fn roomy() -> PoolConfig {
    let limits = Limits {
        rpm: Some(1_000_000),
        rpd: Some(u64::MAX / 2),
        tpm: Some(10_000_000_000),
        ipm: Some(1_000_000),
    };
    PoolConfig::new(id(), limits, PACIFIC.clone())
}

/// A ledger already holding a full minute of admissions.
fn warm(config: PoolConfig) -> (PoolLedger, Timestamp) {
    let mut now = start();
    let mut ledger = PoolLedger::new(config, now);
    for _ in 0..60_000 {
        now += STEP;
        let _ = ledger.admit(COST, now);
    }
    (ledger, now)
}

/// A "go": every limit checked, the cost reserved on all four dimensions, one old entry evicted.
#[divan::bench]
fn admit_go(bencher: Bencher) {
    let (mut ledger, mut now) = warm(roomy());
    bencher.bench_local(|| {
        now += STEP;
        black_box(ledger.admit(black_box(COST), now))
    });
}

/// A "go" followed by giving the reservation back: the full life of a request the upstream
/// refused without counting.
#[divan::bench]
fn admit_then_release(bencher: Bencher) {
    let (mut ledger, mut now) = warm(roomy());
    bencher.bench_local(|| {
        now += STEP;
        if let Admission::Go(r) = ledger.admit(black_box(COST), now) {
            ledger.release(r);
        }
    });
}

/// A refusal on a pool whose RPM window is full: the decision includes computing when the
/// window frees enough room.
#[divan::bench]
fn admit_refused_wait(bencher: Bencher) {
    let limits = Limits {
        rpm: Some(100),
        rpd: Some(10_000),
        tpm: Some(1_000_000),
        ipm: Some(1_000),
    };
    let now = start();
    let mut ledger = PoolLedger::new(PoolConfig::new(id(), limits, PACIFIC.clone()), now);
    for _ in 0..100 {
        let _ = ledger.admit(COST, now);
    }
    bencher.bench_local(|| black_box(ledger.admit(black_box(COST), now)));
}

/// The same "go" through [`MemoryQuotaStore`]: pool lookup, the pool's mutex, the decision.
#[divan::bench]
fn store_admit_go(bencher: Bencher) {
    let store = MemoryQuotaStore::with_pools([roomy()], start());
    let pool = id();
    let mut now = start();
    for _ in 0..60_000 {
        now += STEP;
        let _ = store.admit_now(&pool, COST, now).unwrap();
    }
    bencher.bench_local(|| {
        now += STEP;
        black_box(store.admit_now(black_box(&pool), COST, now).unwrap())
    });
}

//! The shared store's proofs against a real `redis-server`, on Redis's own clock:
//! - 8 processes x 4 tasks hammering one pool with RPM 100 for three windows admit exactly 100
//!   per window and never more than 100 in any sliding window (counted here, from the
//!   reservations each process prints, not by the store);
//! - two stores whose callers' clocks are 30 s apart admit no more than the limit together;
//! - Redis killed and restarted mid-run: typed errors meanwhile, no panic, no reservation
//!   twice, no overshoot after it returns;
//! - an admission retried under its id reserves once;
//! - a block one instance learned holds every instance, until cleared.
//!
//! The hammer runs its windows 2 s long (the store's `window` option) so three windows take
//! seconds; `hammer_three_real_minutes` is the same with 60-second windows, ignored by default.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod support;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use imagegate_core::ErrorKind;
use imagegate_core::quota::{Admission, Cost, Limits, PACIFIC, PoolConfig, PoolId, QuotaStore};
use imagegate_redis::{OnStoreError, RedisQuotaStore, RedisStoreOptions};
use jiff::{SignedDuration, Timestamp};

use support::RedisServer;

const ONE: Cost = Cost::new(1, 1, 1_290);
const PROCESSES: usize = 8;
const TASKS: usize = 4;
const RPM: u64 = 100;

fn pool() -> PoolId {
    PoolId::new("gemini", "proj-a", "gemini-2.5-flash-image")
}

fn rpm(n: u64) -> PoolConfig {
    let limits = Limits {
        rpm: Some(n),
        ..Limits::NONE
    };
    PoolConfig::new(pool(), limits, PACIFIC.clone())
}

fn store(url: &str, window: Duration) -> RedisQuotaStore {
    RedisQuotaStore::new(
        RedisStoreOptions::new(url)
            .with_key_prefix("proof")
            .with_window(window),
    )
    .unwrap()
}

/// Waits (really: other processes are counting on Redis's clock) until `at`.
async fn sleep_until(at: Timestamp) {
    let left = at.duration_since(Timestamp::now());
    if left > SignedDuration::ZERO {
        tokio::time::sleep(left.unsigned_abs()).await;
    }
}

/// The child process: `TASKS` tasks admitting until the deadline, each printing `GO <µs>`
/// for every admission (Redis's instant) on stdout. Run only by the hammer tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a worker process the hammer tests start; not a test on its own"]
async fn hammer_worker() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is set"));
    let url = var("HAMMER_URL");
    let window = Duration::from_millis(var("HAMMER_WINDOW_MS").parse().unwrap());
    let start: Timestamp = var("HAMMER_START").parse().unwrap();
    let deadline: Timestamp = var("HAMMER_DEADLINE").parse().unwrap();
    let store = Arc::new(store(&url, window));
    store.configure(rpm(RPM), Timestamp::now()).await.unwrap();
    sleep_until(start).await;
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            let mut lines = Vec::new();
            while Timestamp::now() < deadline {
                match store.admit(&pool(), ONE, Timestamp::now()).await.unwrap() {
                    Admission::Go(r) => lines.push(format!("GO {}", r.at().as_microsecond())),
                    Admission::WaitUntil { at, .. } => sleep_until(at.min(deadline)).await,
                    other => panic!("unexpected {other:?}"),
                }
            }
            lines
        }));
    }
    let mut out = String::new();
    for h in handles {
        for line in h.await.unwrap() {
            out.push_str(&line);
            out.push('\n');
        }
    }
    print!("{out}");
}

/// Runs `PROCESSES` workers for three windows of `window`; returns every admission instant.
async fn hammer(window: Duration) -> Option<Vec<i64>> {
    let server = RedisServer::start()?;
    let exe = std::env::current_exe().unwrap();
    let start = Timestamp::now() + SignedDuration::from_millis(1_500);
    let three = SignedDuration::try_from(window * 3).unwrap();
    let deadline = start + three + SignedDuration::from_millis(500);
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "hammer_worker",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--quiet",
                ])
                .env("HAMMER_URL", server.url())
                .env("HAMMER_WINDOW_MS", window.as_millis().to_string())
                .env("HAMMER_START", start.to_string())
                .env("HAMMER_DEADLINE", deadline.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut admitted = Vec::new();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(out.status.success(), "a worker failed: {:?}", out.status);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(us) = line.strip_prefix("GO ") {
                admitted.push(us.parse::<i64>().unwrap());
            }
        }
    }
    admitted.sort_unstable();
    eprintln!(
        "{} admissions from {PROCESSES} processes x {TASKS} tasks over three {window:?} windows",
        admitted.len()
    );
    Some(admitted)
}

/// Exactly `RPM` in each of the three windows from the first admission, never more than `RPM`
/// in any sliding window.
fn check_windows(admitted: &[i64], window: Duration) {
    let w = i64::try_from(window.as_micros()).unwrap();
    let first = *admitted.first().expect("something was admitted");
    for k in 0..3 {
        let (from, to) = (first + k * w, first + (k + 1) * w);
        let n = admitted.iter().filter(|t| **t >= from && **t < to).count();
        assert_eq!(n as u64, RPM, "window {k} admitted {n}");
    }
    for (i, t) in admitted.iter().enumerate() {
        let inside = admitted[..=i].iter().filter(|u| **u > t - w).count();
        assert!(inside as u64 <= RPM, "{inside} in the window ending at {t}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_of_four_tasks_admit_exactly_the_limit_per_window() {
    let window = Duration::from_secs(2);
    let Some(admitted) = hammer(window).await else {
        return;
    };
    check_windows(&admitted, window);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "three real 60-second windows (about 3.5 minutes); run with --ignored"]
async fn hammer_three_real_minutes() {
    let window = Duration::from_secs(60);
    let Some(admitted) = hammer(window).await else {
        return;
    };
    check_windows(&admitted, window);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_whose_clocks_are_30_s_apart_admit_no_more_than_the_limit() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server.url(), Duration::from_secs(60));
    let b = store(&server.url(), Duration::from_secs(60));
    let real = Timestamp::now();
    let skew = SignedDuration::from_secs(30);
    a.configure(rpm(10), real).await.unwrap();
    b.configure(rpm(10), real + skew).await.unwrap();
    let mut admitted = Vec::new();
    for i in 0..20 {
        // Each store's caller believes a different time; B's clock runs 30 s ahead, then
        // (from the tenth call) A's runs 30 s ahead of B's.
        let (s, now) = match (i % 2, i < 10) {
            (0, true) => (&a, Timestamp::now()),
            (_, true) => (&b, Timestamp::now() + skew),
            (0, false) => (&a, Timestamp::now() + skew + skew),
            (_, false) => (&b, Timestamp::now() + skew),
        };
        if let Admission::Go(r) = s.admit(&pool(), ONE, now).await.unwrap() {
            admitted.push(r);
        }
    }
    assert_eq!(admitted.len(), 10);
    // Every instant is Redis's, not a caller's.
    for r in &admitted {
        let off = r.at().duration_since(Timestamp::now()).abs();
        assert!(off < SignedDuration::from_secs(5), "{}", r.at());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admission_retried_under_its_id_reserves_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server.url(), Duration::from_secs(60));
    s.configure(rpm(2), Timestamp::now()).await.unwrap();
    let first = s
        .admit_as(&pool(), ONE, Timestamp::now(), "req-1")
        .await
        .unwrap();
    let again = s
        .admit_as(&pool(), ONE, Timestamp::now(), "req-1")
        .await
        .unwrap();
    assert!(first.is_go());
    assert_eq!(first, again, "the retry answers the same reservation");
    let status = s.status(&pool(), Timestamp::now()).await.unwrap();
    assert_eq!(status.dimensions[0].used, 1);
    assert!(
        s.admit_as(&pool(), ONE, Timestamp::now(), "req-2")
            .await
            .unwrap()
            .is_go()
    );
    assert!(
        !s.admit_as(&pool(), ONE, Timestamp::now(), "req-3")
            .await
            .unwrap()
            .is_go()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_fails_typed_and_never_overshoots() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let window = Duration::from_secs(1);
    let limit = 20;
    let s = RedisQuotaStore::new(
        RedisStoreOptions::new(server.url())
            .with_window(window)
            .with_unavailable_wait(Duration::from_millis(200)),
    )
    .unwrap();
    s.configure(rpm(limit), Timestamp::now()).await.unwrap();
    let mut admitted: Vec<(u64, i64)> = Vec::new();
    let mut typed_errors = 0;
    let run_until = |at: Timestamp| at;
    let mut phase = 0;
    let begin = Timestamp::now();
    let end = run_until(begin + SignedDuration::from_millis(3_500));
    while Timestamp::now() < end {
        let since = Timestamp::now().duration_since(begin).as_millis();
        if phase == 0 && since > 500 {
            server.kill();
            phase = 1;
        } else if phase == 1 && since > 1_200 {
            server.restart();
            phase = 2;
        }
        match s.admit(&pool(), ONE, Timestamp::now()).await {
            Ok(Admission::Go(r)) => admitted.push((r.id(), r.at().as_microsecond())),
            Ok(Admission::WaitUntil { .. }) => tokio::time::sleep(Duration::from_millis(5)).await,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
                assert!(e.to_string().contains(&server.url()), "{e}");
                typed_errors += 1;
            }
        }
    }
    assert!(typed_errors > 0, "the outage was seen");
    let distinct: HashSet<_> = admitted.iter().collect();
    assert_eq!(distinct.len(), admitted.len(), "a reservation made twice");
    // Redis came back empty (no persistence): the store, which had the pool before, holds it
    // one window, so what was admitted before the kill is never spent again.
    let w = i64::try_from(window.as_micros()).unwrap();
    let times: Vec<i64> = admitted.iter().map(|(_, t)| *t).collect();
    for (i, t) in times.iter().enumerate() {
        let inside = times[..=i].iter().filter(|u| **u > t - w).count();
        assert!(
            inside as u64 <= limit,
            "{inside} in the window ending at {t}"
        );
    }
    assert!(
        times
            .iter()
            .any(|t| *t > begin.as_microsecond() + 1_200_000),
        "admissions resumed after the restart"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_on_store_error_local_an_outage_falls_back_and_rejoins() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let s = RedisQuotaStore::new(
        RedisStoreOptions::new(server.url())
            .with_on_store_error(OnStoreError::Local)
            .with_unavailable_wait(Duration::from_millis(100)),
    )
    .unwrap();
    s.configure(rpm(5), Timestamp::now()).await.unwrap();
    let shared = s.admit(&pool(), ONE, Timestamp::now()).await.unwrap();
    server.kill();
    // A Redis reservation cannot be given back while Redis is away: its estimate stays
    // counted there (the safe side), with a warning rather than an error for the request.
    s.release(shared.into_reservation().unwrap()).await.unwrap();
    let local = s.admit(&pool(), ONE, Timestamp::now()).await.unwrap();
    assert!(s.is_degraded());
    assert_eq!(s.local_admissions(), 1);
    s.release(local.into_reservation().unwrap()).await.unwrap();
    server.restart();
    tokio::time::sleep(Duration::from_millis(600)).await; // the store retries Redis every 500 ms
    let back = s.admit(&pool(), ONE, Timestamp::now()).await.unwrap();
    assert!(!s.is_degraded(), "rejoined");
    assert_eq!(s.local_admissions(), 1);
    // Redis lost the pool: it waits one window rather than spend the lost counts again.
    assert!(
        matches!(
            back,
            Admission::WaitUntil {
                dimension: None,
                ..
            }
        ),
        "{back:?}"
    );
}

#[tokio::test]
async fn the_local_fallback_counts_with_the_shared_stores_window() {
    // Nothing listens on this port: every operation falls back to the local ledger at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/0", closed.local_addr().unwrap());
    drop(closed);
    let s = RedisQuotaStore::new(
        RedisStoreOptions::new(url)
            .with_window(Duration::from_secs(61))
            .with_on_store_error(OnStoreError::Local)
            .with_unavailable_wait(Duration::ZERO),
    )
    .unwrap();
    let t0: Timestamp = "2026-11-23T18:00:00Z".parse().unwrap();
    s.configure(rpm(1), t0).await.unwrap();
    assert!(s.admit(&pool(), ONE, t0).await.unwrap().is_go());
    assert_eq!(s.local_admissions(), 1);
    // At 60 s the upstream's own window has freed the slot; the guarded one has not.
    let at_60 = s
        .admit(&pool(), ONE, t0 + SignedDuration::from_secs(60))
        .await
        .unwrap();
    assert!(
        matches!(at_60, Admission::WaitUntil { at, .. } if at == t0 + SignedDuration::from_secs(61)),
        "{at_60:?}"
    );
    let at_61 = s
        .admit(&pool(), ONE, t0 + SignedDuration::from_secs(61))
        .await
        .unwrap();
    assert!(at_61.is_go(), "{at_61:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_of_a_pool_shares_its_hash_tag_and_expires() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let s = store(&server.url(), Duration::from_secs(60));
    s.configure(rpm(5), Timestamp::now()).await.unwrap();
    let r = s.admit(&pool(), ONE, Timestamp::now()).await.unwrap();
    s.release(r.into_reservation().unwrap()).await.unwrap();
    assert!(
        s.admit(&pool(), ONE, Timestamp::now())
            .await
            .unwrap()
            .is_go()
    );
    let client = redis::Client::open(server.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut con)
        .await
        .unwrap();
    // State, log, entries, the window's admission ids, one release mark.
    assert_eq!(keys.len(), 5, "{keys:?}");
    for key in &keys {
        assert!(
            key.starts_with("{proof:gemini:proj-a:gemini-2.5-flash-image}:"),
            "{key}"
        );
        let ttl: i64 = redis::cmd("PTTL")
            .arg(key)
            .query_async(&mut con)
            .await
            .unwrap();
        assert!(ttl > 0, "{key} has no time to live ({ttl})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_closed_every_operation_names_the_store_without_its_password() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let s = RedisQuotaStore::new(
        RedisStoreOptions::new(server.url())
            .with_password("hunter2")
            .with_unavailable_wait(Duration::from_millis(100)),
    )
    .unwrap();
    server.kill();
    s.configure(rpm(5), Timestamp::now()).await.unwrap();
    let admit = s.admit(&pool(), ONE, Timestamp::now()).await.unwrap_err();
    let status = s.status(&pool(), Timestamp::now()).await.unwrap_err();
    for e in [admit, status] {
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert!(e.to_string().contains(&server.url()), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    }
    assert!(!format!("{s:?}").contains("hunter2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_learned_by_one_instance_holds_every_instance_until_cleared() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let a = store(&server.url(), Duration::from_secs(60));
    let b = store(&server.url(), Duration::from_secs(60));
    a.configure(rpm(5), Timestamp::now()).await.unwrap();
    b.configure(rpm(5), Timestamp::now()).await.unwrap();
    let billing = imagegate_core::Error::new(ErrorKind::BillingRequired, "limit: 0")
        .with_provider("gemini")
        .with_project("proj-a");
    a.observe_error(&pool(), &billing, Timestamp::now())
        .await
        .unwrap();
    // B never saw the 429, yet it is held: the block lives in Redis.
    assert!(matches!(
        b.admit(&pool(), ONE, Timestamp::now()).await.unwrap(),
        Admission::ExhaustedUntil { at: None, .. }
    ));
    assert!(b.clear_blocks(&pool()).await.unwrap());
    assert!(
        !b.clear_blocks(&pool()).await.unwrap(),
        "nothing left to clear"
    );
    assert!(
        a.admit(&pool(), ONE, Timestamp::now())
            .await
            .unwrap()
            .is_go()
    );
}

//! FileQuotaStore: quota state survives the process (use, learned limits, daily and billing
//! blocks), stores sharing one file never overshoot, a damaged file is an error naming it, and
//! configuration comes from the caller while counts come from the file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use imagegate_core::quota::{
    Admission, BlockReason, Cost, Exhausted, FileQuotaStore, LedgerSnapshot, Limits, PACIFIC,
    PoolConfig, PoolId, PoolLedger, QuotaStore, RateLimitSnapshot, Reservation, Usage,
    next_midnight,
};
use imagegate_core::{Error, ErrorKind, QuotaFacts, quota::Dimension};
use jiff::{Timestamp, ToSpan};

const ONE: Cost = Cost::new(1, 1, 1_290);

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "imagegate-quota-file-store-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self) -> PathBuf {
        self.0.join("state").join("quota.json")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn t0() -> Timestamp {
    "2026-11-23T18:00:00Z".parse().unwrap() // 10:00 PST
}

fn id() -> PoolId {
    PoolId::new("gemini", "proj-a", "gemini-2.5-flash-image")
}

fn config(limits: Limits) -> PoolConfig {
    PoolConfig::new(id(), limits, PACIFIC.clone())
}

fn open(path: &Path, limits: Limits) -> FileQuotaStore {
    FileQuotaStore::open(path)
        .unwrap()
        .with_pools([config(limits)])
}

fn rpm(n: u64) -> Limits {
    Limits {
        rpm: Some(n),
        ..Limits::NONE
    }
}

fn go(store: &FileQuotaStore, now: Timestamp) -> Reservation {
    match store.admit_now(&id(), ONE, now).unwrap() {
        Admission::Go(r) => r,
        other => panic!("expected a go at {now}, got {other:?}"),
    }
}

fn facts(dimension: Dimension, value: Option<u64>) -> QuotaFacts {
    let mut f = QuotaFacts::default();
    f.dimension = Some(dimension);
    f.quota_value = value;
    f.model = Some("gemini-2.5-flash-image".into());
    f
}

fn saved_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn counted_use_survives_reopening() {
    let dir = TempDir::new();
    let limits = Limits {
        rpm: Some(3),
        rpd: Some(10),
        ..Limits::NONE
    };
    {
        let store = open(&dir.file(), limits);
        go(&store, t0());
        go(&store, t0() + 1.second());
    }
    let store = open(&dir.file(), limits);
    let status = store.status_now(&id(), t0() + 2.seconds()).unwrap();
    let used: Vec<u64> = status.dimensions.iter().map(|d| d.used).collect();
    assert_eq!(used, [2, 2, 2_580, 2]); // rpm, rpd, tpm, ipm
    assert_eq!(
        status.dimensions[0].resets_at,
        Some(t0() + 60.seconds()),
        "the oldest use leaves the window 60 s after it was counted, not after the reopen"
    );
    go(&store, t0() + 2.seconds());
    assert_eq!(
        store.admit_now(&id(), ONE, t0() + 2.seconds()).unwrap(),
        Admission::WaitUntil {
            at: t0() + 60.seconds(),
            dimension: Some(Dimension::Rpm)
        }
    );
}

#[test]
fn a_learned_limit_survives_reopening() {
    let dir = TempDir::new();
    {
        let store = open(&dir.file(), rpm(10));
        let r = go(&store, t0());
        let error = Error::new(ErrorKind::RateLimited, "You exceeded your current quota")
            .with_quota(facts(Dimension::Rpm, Some(2)))
            .with_retry_after(Duration::from_secs(7));
        store.observe_error_now(&id(), &error, t0()).unwrap();
        store.release_now(r).unwrap();
    }
    let store = open(&dir.file(), rpm(10));
    let status = store.status_now(&id(), t0()).unwrap();
    let d = &status.dimensions[0];
    assert_eq!(
        (d.configured, d.learned, d.limit),
        (Some(10), Some(2), Some(2))
    );
    assert_eq!(d.used, 0, "the refused request was released");
    // The requested delay survived too.
    let block = status.blocked.unwrap();
    assert_eq!(
        (block.reason, block.until),
        (BlockReason::RetryDelay, Some(t0() + 7.seconds()))
    );
    go(&store, t0() + 7.seconds());
    go(&store, t0() + 7.seconds());
    assert!(
        !store
            .admit_now(&id(), ONE, t0() + 7.seconds())
            .unwrap()
            .is_go()
    );
}

#[test]
fn a_daily_block_survives_reopening_until_pacific_midnight() {
    let dir = TempDir::new();
    let limits = Limits {
        rpd: Some(1_500),
        ..Limits::NONE
    };
    {
        let store = open(&dir.file(), limits);
        let r = go(&store, t0());
        let error = Error::new(ErrorKind::QuotaExhausted, "per-day quota used up")
            .with_quota(facts(Dimension::Rpd, Some(1_500)));
        store.observe_error_now(&id(), &error, t0()).unwrap();
        store.release_now(r).unwrap();
    }
    let midnight = next_midnight(t0(), &PACIFIC);
    assert_eq!(
        midnight,
        "2026-11-24T08:00:00Z".parse::<Timestamp>().unwrap()
    );
    let store = open(&dir.file(), limits);
    assert_eq!(
        store.admit_now(&id(), ONE, t0() + 3.hours()).unwrap(),
        Admission::ExhaustedUntil {
            at: Some(midnight),
            reason: Exhausted::Quota {
                dimension: Dimension::Rpd
            }
        }
    );
    let block = store.status_now(&id(), t0() + 3.hours()).unwrap().blocked;
    assert_eq!(
        block.map(|b| (b.reason, b.until)),
        Some((BlockReason::DailyQuota, Some(midnight)))
    );
    // One nanosecond before midnight it still holds; at midnight the new day admits.
    assert!(
        !store
            .admit_now(&id(), ONE, midnight - 1.nanosecond())
            .unwrap()
            .is_go()
    );
    go(&store, midnight);
    assert_eq!(
        store.status_now(&id(), midnight).unwrap().dimensions[1].used,
        1
    );
}

#[test]
fn a_billing_block_survives_reopening_until_cleared() {
    let dir = TempDir::new();
    {
        let store = open(&dir.file(), rpm(10));
        let r = go(&store, t0());
        let error = Error::new(ErrorKind::RateLimited, "limit: 0")
            .with_quota(facts(Dimension::Rpd, Some(0)))
            .with_project("proj-a");
        store.observe_error_now(&id(), &error, t0()).unwrap();
        store.release_now(r).unwrap();
    }
    // Days later, in another process: still blocked, with the advice.
    let store = open(&dir.file(), rpm(10));
    let later = t0() + 72.hours();
    match store.admit_now(&id(), ONE, later).unwrap() {
        Admission::ExhaustedUntil {
            at: None,
            reason: Exhausted::BillingRequired { advice },
        } => assert!(advice.contains("billing"), "{advice}"),
        other => panic!("expected billing_required, got {other:?}"),
    }
    let block = store.status_now(&id(), later).unwrap().blocked.unwrap();
    assert_eq!(
        (block.reason, block.until),
        (BlockReason::BillingRequired, None)
    );
    // A person attached billing and clears it; the clearing is saved.
    assert!(store.clear_blocks(&id()).unwrap());
    assert!(!store.clear_blocks(&id()).unwrap());
    let store = open(&dir.file(), rpm(10));
    assert_eq!(store.status_now(&id(), later).unwrap().blocked, None);
    go(&store, later);
}

#[test]
fn clear_all_blocks_counts_the_pools_that_had_one() {
    let dir = TempDir::new();
    let other = PoolId::new("gemini", "proj-a", "gemini-3-pro-image-preview");
    let store = FileQuotaStore::open(dir.file()).unwrap().with_pools([
        config(rpm(10)),
        PoolConfig::new(other.clone(), rpm(10), PACIFIC.clone()),
    ]);
    let billing = Error::new(ErrorKind::BillingRequired, "no entitlement");
    store.observe_error_now(&id(), &billing, t0()).unwrap();
    assert!(store.admit_now(&other, ONE, t0()).unwrap().is_go());
    assert_eq!(store.saved_pools().unwrap(), [id(), other.clone()]);
    assert_eq!(store.clear_all_blocks().unwrap(), 1);
    assert!(store.admit_now(&id(), ONE, t0()).unwrap().is_go());
}

/// Two stores (as two processes would) on one file, 200 admissions each from two threads, all
/// inside one minute: exactly the limit is admitted.
#[test]
fn two_stores_on_one_file_never_overshoot() {
    const LIMIT: u64 = 37;
    const PER_THREAD: usize = 200;
    let dir = TempDir::new();
    let path = dir.file();
    let barrier = std::sync::Barrier::new(2);
    let gos: Vec<Vec<Timestamp>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|thread| {
                let path = &path;
                let barrier = &barrier;
                s.spawn(move || {
                    let store = open(path, rpm(LIMIT));
                    barrier.wait();
                    let mut admitted = Vec::new();
                    for i in 0..PER_THREAD {
                        // Instants interleave between the threads and stay inside one window.
                        let now = t0() + ((i * 2 + thread) as i64 * 100).milliseconds();
                        if let Admission::Go(r) = store.admit_now(&id(), ONE, now).unwrap() {
                            admitted.push(r.at());
                        }
                    }
                    admitted
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let total: usize = gos.iter().map(Vec::len).sum();
    assert_eq!(
        total as u64,
        LIMIT,
        "admitted per thread: {:?}",
        gos.map_len()
    );
    let store = open(&path, rpm(LIMIT));
    let last = t0() + 40.seconds();
    let status = store.status_now(&id(), last).unwrap();
    assert_eq!(status.dimensions[0].used, LIMIT);
    assert_eq!(status.dimensions[1].used, LIMIT);
    assert!(!store.admit_now(&id(), ONE, last).unwrap().is_go());
}

trait MapLen {
    fn map_len(&self) -> Vec<usize>;
}

impl MapLen for Vec<Vec<Timestamp>> {
    fn map_len(&self) -> Vec<usize> {
        self.iter().map(Vec::len).collect()
    }
}

#[test]
fn a_reservation_made_in_one_process_is_settled_or_released_in_another() {
    let dir = TempDir::new();
    let limits = Limits {
        rpm: Some(2),
        tpm: Some(10_000),
        ..Limits::NONE
    };
    let a = open(&dir.file(), limits);
    let b = open(&dir.file(), limits);
    let first = go(&a, t0());
    let second = go(&a, t0());
    // The reservations travel as JSON (a job file, a queue) to the other process.
    let first: Reservation = serde_json::from_str(&serde_json::to_string(&first).unwrap()).unwrap();
    let second: Reservation =
        serde_json::from_str(&serde_json::to_string(&second).unwrap()).unwrap();
    assert!(!b.admit_now(&id(), ONE, t0()).unwrap().is_go());
    b.settle_now(
        first,
        Usage {
            tokens: Some(1_500),
            images: Some(1),
        },
    )
    .unwrap();
    b.release_now(second).unwrap();
    let status = a.status_now(&id(), t0()).unwrap();
    let used: Vec<u64> = status.dimensions.iter().map(|d| d.used).collect();
    assert_eq!(used, [1, 1, 1_500, 1]);
    go(&a, t0());
}

#[test]
fn a_corrupt_file_is_an_error_naming_it_and_is_kept() {
    let dir = TempDir::new();
    let path = dir.file();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let cases: [(&str, &str); 5] = [
        ("{\"format\": \"imagegate-quota-st", "is not valid JSON"),
        ("[1, 2, 3]", "is not an imagegate quota state file"),
        ("{\"pools\": []}", "is not an imagegate quota state file"),
        (
            "{\"format\": \"imagegate-quota-state\", \"version\": 9, \"pools\": []}",
            "has version 9",
        ),
        (
            "{\"format\": \"imagegate-quota-state\", \"version\": 1, \"pools\": 7}",
            "does not hold a valid quota state",
        ),
    ];
    for (content, what) in cases {
        std::fs::write(&path, content).unwrap();
        let error = FileQuotaStore::open(&path).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConfigInvalid, "{content}");
        let text = error.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains(what), "{content}: {text}");
        assert!(text.contains("delete it"), "{text}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            content,
            "never discarded"
        );
    }
}

#[test]
fn a_file_damaged_after_opening_fails_every_operation_naming_it() {
    let dir = TempDir::new();
    let path = dir.file();
    let store = open(&path, rpm(5));
    let r = go(&store, t0());
    std::fs::write(&path, "\u{0}\u{0}garbage").unwrap();
    for error in [
        store.admit_now(&id(), ONE, t0()).unwrap_err(),
        store.release_now(r).unwrap_err(),
        store.status_now(&id(), t0()).unwrap_err(),
        store.statuses_now(t0()).unwrap_err(),
        store.clear_all_blocks().unwrap_err(),
    ] {
        assert_eq!(error.kind(), ErrorKind::ConfigInvalid);
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
    assert_eq!(std::fs::read(&path).unwrap(), b"\0\0garbage");
}

#[test]
fn an_inconsistent_saved_state_is_refused_not_miscounted() {
    let dir = TempDir::new();
    let path = dir.file();
    {
        let store = open(&path, rpm(5));
        go(&store, t0());
    }
    let mut json = saved_json(&path);
    json["pools"][0]["state"]["next_id"] = 0.into();
    std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
    let store = open(&path, rpm(5));
    let error = store.admit_now(&id(), ONE, t0()).unwrap_err();
    let text = error.to_string();
    assert_eq!(error.kind(), ErrorKind::ConfigInvalid);
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("is damaged"), "{text}");
    assert!(text.contains("next sequence number"), "{text}");
}

#[test]
fn new_limits_apply_on_reopening_while_counts_persist() {
    let dir = TempDir::new();
    {
        let store = open(&dir.file(), rpm(5));
        for _ in 0..3 {
            go(&store, t0());
        }
    }
    // Lowered below what is counted: nothing more this minute.
    {
        let store = open(&dir.file(), rpm(3));
        let d = &store.status_now(&id(), t0()).unwrap().dimensions[0];
        assert_eq!((d.configured, d.limit, d.used), (Some(3), Some(3), 3));
        assert!(!store.admit_now(&id(), ONE, t0()).unwrap().is_go());
    }
    // Raised: the three already counted still count.
    let store = open(&dir.file(), rpm(10));
    for _ in 0..7 {
        go(&store, t0());
    }
    assert!(!store.admit_now(&id(), ONE, t0()).unwrap().is_go());
    let d = &store.status_now(&id(), t0()).unwrap().dimensions[0];
    assert_eq!((d.configured, d.limit, d.used), (Some(10), Some(10), 10));
}

#[test]
fn uses_older_than_a_minute_are_pruned_from_the_file() {
    let dir = TempDir::new();
    let path = dir.file();
    let store = open(&path, Limits::NONE);
    for i in 0..100 {
        go(&store, t0() + (i * 10).milliseconds());
    }
    let log = |path: &Path| {
        saved_json(path)["pools"][0]["state"]["log"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(log(&path), 100);
    go(&store, t0() + 61.seconds());
    assert_eq!(log(&path), 1);
    // The day still counts all of them.
    assert_eq!(
        store
            .status_now(&id(), t0() + 61.seconds())
            .unwrap()
            .dimensions[1]
            .used,
        101
    );
    assert!(std::fs::metadata(&path).unwrap().len() < 2_000);
}

#[test]
fn a_snapshot_restores_the_ledger_exactly() {
    let mut ledger = PoolLedger::new(config(rpm(3)), t0());
    let r = ledger.admit(ONE, t0()).into_reservation().unwrap();
    assert!(ledger.admit(ONE, t0() + 1.second()).is_go());
    ledger.settle(
        r,
        Usage {
            tokens: Some(900),
            images: Some(2),
        },
    );
    ledger.observe_snapshot(
        &RateLimitSnapshot {
            dimension: Dimension::Rpd,
            limit: Some(50),
            remaining: Some(10),
            reset_at: None,
        },
        t0() + 2.seconds(),
    );
    let error =
        Error::new(ErrorKind::RateLimited, "slow down").with_retry_after(Duration::from_secs(30));
    ledger.observe_error(&error, t0() + 2.seconds());
    let snapshot: LedgerSnapshot = ledger.snapshot();
    let json = serde_json::to_string(&snapshot).unwrap();
    let back: LedgerSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, snapshot);
    let mut restored = PoolLedger::restore(config(rpm(3)), back).unwrap();
    assert_eq!(restored.snapshot(), snapshot);
    let later = t0() + 40.seconds();
    assert_eq!(restored.status(later), ledger.status(later));
    assert_eq!(restored.admit(ONE, later), ledger.admit(ONE, later));
}

#[tokio::test]
async fn the_store_works_through_the_trait() {
    let dir = TempDir::new();
    let store: Box<dyn QuotaStore> = Box::new(FileQuotaStore::open(dir.file()).unwrap());
    store.configure(config(rpm(1)), t0()).await.unwrap();
    let r = store.admit(&id(), ONE, t0()).await.unwrap();
    assert!(r.is_go());
    assert!(!store.admit(&id(), ONE, t0()).await.unwrap().is_go());
    let statuses = store.statuses(t0()).await.unwrap();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0].dimensions[0].used, 1);
    let unknown = PoolId::new("gemini", "proj-a", "nope");
    assert_eq!(
        store.admit(&unknown, ONE, t0()).await.unwrap_err().kind(),
        ErrorKind::ConfigInvalid
    );
}

#[test]
fn a_missing_or_blank_file_is_an_empty_state() {
    let dir = TempDir::new();
    let path = dir.file();
    let store = open(&path, rpm(2));
    assert!(!path.exists(), "opening writes nothing");
    assert_eq!(store.status_now(&id(), t0()).unwrap().dimensions[0].used, 0);
    assert!(!path.exists(), "a status writes nothing");
    std::fs::write(&path, "\n").unwrap();
    go(&store, t0());
    assert_eq!(saved_json(&path)["format"], "imagegate-quota-state");
    assert!(store.lock_path().exists());
}

#[test]
fn a_new_day_zone_starts_a_new_day_but_keeps_the_minute() {
    let dir = TempDir::new();
    let limits = Limits {
        rpm: Some(5),
        rpd: Some(100),
        ..Limits::NONE
    };
    {
        let store = open(&dir.file(), limits);
        go(&store, t0());
        go(&store, t0());
    }
    let store = FileQuotaStore::open(dir.file())
        .unwrap()
        .with_pools([PoolConfig::new(id(), limits, jiff::tz::TimeZone::UTC)]);
    let status = store.status_now(&id(), t0()).unwrap();
    assert_eq!(status.day_zone, "UTC");
    let used: Vec<u64> = status.dimensions.iter().map(|d| d.used).collect();
    assert_eq!(
        used[..2],
        [2, 0],
        "the Pacific day's count is not a UTC day's"
    );
    assert_eq!(
        status.dimensions[1].resets_at,
        Some("2026-11-24T00:00:00Z".parse().unwrap())
    );
}

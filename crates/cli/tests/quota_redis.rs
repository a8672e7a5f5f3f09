//! `[state] store = "redis://..."`: `imagegate quota` shows the quota every instance shares
//! through Redis (a real `redis-server`, skipped with a printed reason where it is not
//! installed unless `IMAGEGATE_REQUIRE_REDIS=1`), and a password never sits in the file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod common;
#[path = "../../redis/tests/support/mod.rs"]
mod redis_support;

use common::{imagegate, stderr};
use imagegate_core::quota::{Cost, Limits, PoolConfig, PoolId, QuotaStore};
use imagegate_redis::{RedisQuotaStore, RedisStoreOptions};
use jiff::tz::TimeZone;
use serde_json::Value;

#[test]
fn a_password_in_the_redis_address_is_refused_without_being_shown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[state]\nstore = \"redis://:hunter2@127.0.0.1:1/0\"\n",
    )
    .unwrap();
    let output = imagegate(dir.path()).args(["quota"]).output().unwrap();
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("password"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imagegate_quota_shows_the_shared_redis_state() {
    let Some(server) = redis_support::RedisServer::start() else {
        return;
    };
    // Another instance counted three requests on the pool.
    let other =
        RedisQuotaStore::new(RedisStoreOptions::new(server.url()).with_key_prefix("team-a"))
            .unwrap();
    let id = PoolId::new("mock", "default", "mock-image-1");
    let limits = Limits {
        rpm: Some(10),
        ..Limits::NONE
    };
    let now = jiff::Timestamp::now();
    other
        .configure(PoolConfig::new(id.clone(), limits, TimeZone::UTC), now)
        .await
        .unwrap();
    for _ in 0..3 {
        assert!(
            other
                .admit(&id, Cost::new(1, 1, 0), now)
                .await
                .unwrap()
                .is_go()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        format!(
            "[state]\nstore = \"{}\"\nkey_prefix = \"team-a\"\n\n\
             [providers.mock.quota.models.\"mock-image-1\"]\nrpm = 10\n",
            server.url()
        ),
    )
    .unwrap();
    let output = imagegate(dir.path())
        .args(["quota", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let status: Value = serde_json::from_slice(&output.stdout).unwrap();
    let pool = status["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"]["pool"] == "mock-image-1")
        .expect("the mock pool");
    let rpm = pool["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dimension"] == "rpm")
        .unwrap();
    assert_eq!(rpm["used"], 3, "{pool}");
    assert_eq!(rpm["remaining"], 7, "{pool}");
    let table = imagegate(dir.path()).args(["quota"]).output().unwrap();
    assert!(table.status.success(), "{}", stderr(&table));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains(&format!("(state: {})", server.url())),
        "{text}"
    );
}

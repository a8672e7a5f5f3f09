//! `imagegate quota` lists every configured pool with its limits and next reset.

#![allow(clippy::unwrap_used, clippy::panic)] // a failed unwrap is a failed test

mod common;

use common::{imagegate, stderr, stdout};
use serde_json::Value;

fn quota_json(toml: &str, now: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("imagegate.toml"), toml).unwrap();
    let output = imagegate(dir.path())
        .args(["quota", "--json", "--now", now])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn dimension<'a>(pool: &'a Value, name: &str) -> &'a Value {
    pool["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dimension"] == name)
        .unwrap()
}

#[test]
fn a_gemini_pool_resets_at_pacific_midnight_across_the_dst_change() {
    let toml = "[providers.gemini]\nproject = \"p1\"\n";
    // The day before the spring change: midnight PST is 08:00 UTC.
    let before = quota_json(toml, "2026-03-07T12:00:00Z");
    let pool = &before["pools"][0];
    assert_eq!(pool["id"]["provider"], "gemini");
    assert_eq!(pool["id"]["project"], "p1");
    assert_eq!(pool["day_zone"], "America/Los_Angeles");
    assert_eq!(dimension(pool, "rpd")["resets_at"], "2026-03-08T08:00:00Z");
    // On the day of the change the next midnight is PDT: 07:00 UTC.
    let after = quota_json(toml, "2026-03-08T12:00:00Z");
    assert_eq!(
        dimension(&after["pools"][0], "rpd")["resets_at"],
        "2026-03-09T07:00:00Z"
    );
}

#[test]
fn configured_limits_and_shared_pools_are_shown() {
    let toml = r#"
[providers.gemini]
project = "p1"
[providers.gemini.quota]
tier = "tier1"
[providers.gemini.quota.models."gemini-2.5-flash-image"]
rpm = 7
[[providers.gemini.quota.shared_pools]]
name = "previews"
models = ["model-a", "model-b"]
rpd = 33

[providers.second]
kind = "gemini"
project = "p1"
"#;
    let got = quota_json(toml, "2026-01-15T12:00:00Z");
    let pools = got["pools"].as_array().unwrap();
    let names: Vec<&str> = pools
        .iter()
        .map(|p| p["id"]["pool"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["gemini-2.5-flash-image", "previews"],
        "one pool per project, not per key"
    );
    let own = &pools[0];
    assert_eq!(dimension(own, "rpm")["configured"], 7);
    assert_eq!(dimension(own, "rpm")["remaining"], 7);
    let shared = &pools[1];
    assert_eq!(shared["models"], serde_json::json!(["model-a", "model-b"]));
    assert_eq!(dimension(shared, "rpd")["limit"], 33);
}

#[test]
fn the_table_names_pools_and_resets_in_pacific_time() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .env("GEMINI_API_KEY", "test-key-not-real")
        .env("TZ", "UTC")
        .args(["quota", "--now", "2026-01-15T12:00:00Z"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    assert!(
        table.contains("gemini/default/gemini-2.5-flash-image"),
        "{table}"
    );
    assert!(table.contains("PST"), "{table}");
    assert!(!table.contains("test-key-not-real"));
}

#[test]
fn a_bad_zone_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[providers.gemini.quota]\nday_zone = \"Mars/Olympus\"\n",
    )
    .unwrap();
    let output = imagegate(dir.path()).arg("quota").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("providers.gemini.quota") && err.contains("Mars/Olympus"),
        "{err}"
    );
}

#[test]
fn with_no_tier_gemini_limits_are_unknown_and_learning_and_a_tier_keeps_its_presets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[providers.gemini]\nproject = \"p1\"\n",
    )
    .unwrap();
    let output = imagegate(dir.path())
        .env("TZ", "UTC")
        .args(["quota", "--now", "2026-01-15T12:00:00Z"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    for dim in ["rpm", "rpd", "tpm", "ipm"] {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == dim))
            .unwrap_or_else(|| panic!("no {dim} row: {table}"));
        assert!(row.contains("unknown (learning)"), "{dim}: {table}");
    }
    let json = quota_json(
        "[providers.gemini]\nproject = \"p1\"\n",
        "2026-01-15T12:00:00Z",
    );
    let rpm = dimension(&json["pools"][0], "rpm");
    assert_eq!(rpm["learning"], true);
    assert_eq!(rpm["limit"], Value::Null);

    // `tier = "free"` keeps the free tier's presets: nothing to learn.
    let free = quota_json(
        "[providers.gemini]\nproject = \"p1\"\n[providers.gemini.quota]\ntier = \"free\"\n",
        "2026-01-15T12:00:00Z",
    );
    let rpm = dimension(&free["pools"][0], "rpm");
    assert_eq!(rpm["limit"], 10);
    assert_eq!(rpm.get("learning"), None);
}

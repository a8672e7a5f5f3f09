//! `parse_key_info` on both recorded response shapes (fixtures under `fixtures/openrouter/key/`).
#![allow(clippy::unwrap_used)] // test helpers, like test functions, may unwrap

use imagegate_openrouter::{KeyRateLimit, parse_key_info};
use imagegate_testkit::Fixture;
use jiff::Timestamp;

fn body(id: &str) -> Vec<u8> {
    Fixture::by_id(id).unwrap().body()
}

#[test]
fn current_shape() {
    let info = parse_key_info(&body("openrouter/key/200-current-shape")).unwrap();
    assert_eq!(info.label.as_deref(), Some("image-generation-key"));
    assert_eq!(info.limit, Some(100.0));
    assert_eq!(info.limit_remaining, Some(74.5));
    assert_eq!(info.credits_remaining(), Some(74.5));
    assert_eq!(info.limit_reset.as_deref(), Some("monthly"));
    assert_eq!(info.usage, Some(25.5));
    assert_eq!(info.usage_daily, Some(25.5));
    assert_eq!(info.is_free_tier, Some(false));
    assert_eq!(info.is_management_key, Some(false));
    assert_eq!(
        info.expires_at,
        Some("2027-12-31T23:59:59Z".parse().unwrap())
    );
    let now: Timestamp = "2026-11-23T10:00:00Z".parse().unwrap();
    assert_eq!(
        info.next_limit_reset(now),
        Some("2026-12-01T00:00:00Z".parse().unwrap())
    );
    assert!(!info.is_exhausted());
}

#[test]
fn legacy_shape() {
    let info = parse_key_info(&body("openrouter/key/200-legacy-shape")).unwrap();
    assert_eq!(info.limit, Some(5.0));
    assert_eq!(info.usage, Some(0.1015644762));
    assert_eq!(info.credits_remaining(), Some(4.8984355238));
    assert_eq!(info.limit_reset, None);
    assert_eq!(
        info.next_limit_reset("2026-11-23T10:00:00Z".parse().unwrap()),
        None
    );
    assert_eq!(info.is_free_tier, Some(false));
    let mut expected = KeyRateLimit::default();
    expected.requests = Some(50);
    expected.interval = Some("10s".to_owned());
    assert_eq!(info.rate_limit, Some(expected));
}

#[test]
fn key_shaped_labels_are_scrubbed() {
    // OpenRouter labels keys with a shortened key; it must not survive into logs or JSON.
    let shortened = ["sk-", "or-v1-au7...890"].concat();
    let body = format!(r#"{{"data": {{"label": "{shortened}", "limit": null, "usage": 1.5}}}}"#);
    let info = parse_key_info(body.as_bytes()).unwrap();
    assert_eq!(info.label.as_deref(), Some("***"));
    assert_eq!(info.limit, None);
    assert_eq!(info.credits_remaining(), None);
}

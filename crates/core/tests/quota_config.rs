//! The `[providers.NAME.quota]` configuration: what it accepts, what it refuses, and the pools
//! it produces. (JSON here, the same serde shapes as the TOML in docs/quota-model.md.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;

use imagegate_core::quota::{Limits, PACIFIC, ProviderQuotaConfig, Tier, zone_name};
use imagegate_core::registry::{ProviderDescriptor, ProviderSettings};
use imagegate_core::{Error, ErrorKind, GenerateRequest, ImageProvider, ImageSize};
use serde_json::json;

fn no_build(_: &ProviderSettings) -> imagegate_core::Result<Arc<dyn ImageProvider>> {
    Err(Error::config("not built in these tests"))
}

/// Presets shaped like a tiered provider's: image models get figures per tier, anything else
/// none. (The real figures live in the provider crates and are tested there.)
fn presets(model: &str, tier: Tier) -> Limits {
    if !model.contains("image") {
        return Limits::NONE;
    }
    let (rpm, rpd) = match tier {
        Tier::Free => (10, 1_500),
        Tier::Tier1 => (300, 10_000),
        Tier::Tier2 => (1_000, 50_000),
        Tier::Tier3 | Tier::Tier4 | Tier::Tier5 => (2_000, 100_000),
    };
    Limits {
        rpm: Some(rpm),
        rpd: Some(rpd),
        ..Limits::NONE
    }
}

/// A provider with tiers and a Pacific day.
static TIERED: ProviderDescriptor = ProviderDescriptor {
    name: "gemini",
    label: "Tiered",
    key_vars: &[],
    key_help: "",
    base_url_var: None,
    default_model: "gemini-2.5-flash-image",
    day_zone: "America/Los_Angeles",
    presets: Some(presets),
    prices: &[],
    parse_error: None,
    recognises: None,
    build: no_build,
};

/// A provider without tiers and a UTC day.
static UNTIERED: ProviderDescriptor = ProviderDescriptor {
    name: "openrouter",
    label: "Untiered",
    key_vars: &[],
    key_help: "",
    base_url_var: None,
    default_model: "google/gemini-2.5-flash-image",
    day_zone: "UTC",
    presets: None,
    prices: &[],
    parse_error: None,
    recognises: None,
    build: no_build,
};

fn parse(value: serde_json::Value) -> Result<ProviderQuotaConfig, serde_json::Error> {
    serde_json::from_value(value)
}

#[test]
fn the_documented_example_parses_and_builds_pools() {
    let config = parse(json!({
        "tier": "tier1",
        "day_zone": "America/Los_Angeles",
        "tokens_per_image": 1290,
        "models": {
            "gemini-3-pro-image-preview": {
                "rpm": 20,
                "tokens_per_image": { "1K": 1120, "2K": 1120, "4K": 2000 }
            },
            "gemini-2.5-flash-image": { "tpm": 500000, "tokens_per_image": 1290 }
        },
        "shared_pools": [
            { "name": "free-image", "models": ["gemini-3.1-flash-image-preview", "imagen-4.0-generate-001"], "rpd": 100 }
        ]
    }))
    .unwrap();
    config.validate().unwrap();

    let pro = config
        .pool_for(&TIERED, "proj-a", "gemini-3-pro-image-preview")
        .unwrap();
    assert_eq!(
        pro.id.to_string(),
        "gemini/proj-a/gemini-3-pro-image-preview"
    );
    assert_eq!(
        pro.limits,
        Limits {
            rpm: Some(20),
            ..presets("gemini-3-pro-image-preview", Tier::Tier1)
        }
    );
    assert_eq!(pro.day_zone, PACIFIC.clone());

    let flash = config
        .pool_for(&TIERED, "proj-a", "gemini-2.5-flash-image")
        .unwrap();
    assert_eq!(
        flash.limits,
        Limits {
            rpm: Some(300),
            rpd: Some(10_000),
            tpm: Some(500_000),
            ipm: None
        }
    );

    // Two models, one pool: both map to the same id, with the shared figures on top of the
    // first model's preset.
    let a = config
        .pool_for(&TIERED, "proj-a", "gemini-3.1-flash-image-preview")
        .unwrap();
    let b = config
        .pool_for(&TIERED, "proj-a", "imagen-4.0-generate-001")
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a.id.pool, "free-image");
    assert_eq!(
        a.limits,
        Limits {
            rpm: Some(300),
            rpd: Some(100),
            tpm: None,
            ipm: None
        }
    );
    assert_eq!(
        a.models,
        ["gemini-3.1-flash-image-preview", "imagen-4.0-generate-001"]
    );

    let est = config.token_estimator();
    let req = GenerateRequest::new("").with_size(ImageSize::FourK);
    assert_eq!(
        est.estimate(&req, "gemini-3-pro-image-preview").tokens,
        2_000
    );
    assert_eq!(
        est.tokens_per_image("gemini-3-pro-image-preview", None),
        1_120
    );
    assert_eq!(est.tokens_per_image("anything-else", None), 1_290);
}

#[test]
fn defaults_depend_on_the_provider() {
    let config = ProviderQuotaConfig::default();
    let tiered = config
        .pool_for(&TIERED, "p", "gemini-2.5-flash-image")
        .unwrap();
    assert!(
        tiered.limits.is_empty(),
        "no tier configured: no preset, the limits are learned"
    );
    assert!(tiered.learning);
    assert_eq!(zone_name(&tiered.day_zone), "America/Los_Angeles");
    let untiered = config
        .pool_for(&UNTIERED, "acct", "google/gemini-2.5-flash-image")
        .unwrap();
    assert!(untiered.limits.is_empty(), "no presets without tiers");
    assert!(
        !untiered.learning,
        "nothing to learn from a tier it does not have"
    );
    assert_eq!(zone_name(&untiered.day_zone), "UTC");
}

#[test]
fn a_configured_tier_keeps_its_presets_and_configured_limits_stay_without_one() {
    let free = parse(json!({ "tier": "free" })).unwrap();
    let pool = free
        .pool_for(&TIERED, "p", "gemini-2.5-flash-image")
        .unwrap();
    assert_eq!(pool.limits, presets("gemini-2.5-flash-image", Tier::Free));
    assert!(!pool.learning);

    // No tier, one configured dimension: that one is known, the others are learned.
    let rpm_only = parse(json!({ "models": { "gemini-2.5-flash-image": { "rpm": 60 } } })).unwrap();
    let pool = rpm_only
        .pool_for(&TIERED, "p", "gemini-2.5-flash-image")
        .unwrap();
    assert_eq!(
        pool.limits,
        Limits {
            rpm: Some(60),
            ..Limits::NONE
        }
    );
    assert!(pool.learning);
}

#[test]
fn mistakes_are_refused_with_a_reason() {
    assert!(parse(json!({ "teir": "tier1" })).is_err(), "unknown field");
    assert!(parse(json!({ "tier": "gold" })).is_err(), "unknown tier");
    assert!(parse(json!({ "models": { "m": { "rpn": 3 } } })).is_err());
    assert!(
        parse(json!({ "shared_pools": [{ "name": "x", "models": ["m"], "burst": 1 }] })).is_err()
    );

    let bad_zone = parse(json!({ "day_zone": "Pacific Time" })).unwrap();
    let err = bad_zone.validate().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConfigInvalid);
    assert!(err.message().contains("Pacific Time"), "{err}");
    assert!(bad_zone.pool_for(&TIERED, "p", "m").is_err());

    let twice = parse(json!({ "shared_pools": [
        { "name": "a", "models": ["m1", "m2"] },
        { "name": "b", "models": ["m2"] }
    ]}))
    .unwrap();
    let err = twice.validate().unwrap_err();
    assert!(
        err.message().contains("`m2` is in two shared quota pools"),
        "{err}"
    );

    let empty = parse(json!({ "shared_pools": [{ "name": "a", "models": [] }] })).unwrap();
    assert!(empty.validate().is_err());
}

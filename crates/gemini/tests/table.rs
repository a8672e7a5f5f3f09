//! Every fixture under `fixtures/gemini` through the pure parser, checked against its `expect`.
//!
//! This is the test that walks every error sample from `shared/samples` (through their
//! recorded fixtures, since `shared/` is not in the repository) and every synthesized class.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeSet;

use imagegate_core::ErrorKind;
use imagegate_gemini::parse_response;
use imagegate_testkit::{Fixture, Origin, check_table};

#[test]
fn every_gemini_fixture_is_classified_as_it_expects() {
    let checked = check_table("gemini", |f| {
        parse_response(f.status(), &f.headers(), &f.body(), f.now())
    })
    .unwrap_or_else(|report| panic!("{report}"));
    assert!(checked >= 50, "only {checked} fixtures");
}

/// The error samples of `shared/samples` (file names, wire-formats.md §0). Each must have a
/// recorded fixture whose `source` names it, so a sample cannot silently lose its test.
const ERROR_SAMPLES: [&str; 10] = [
    "gemini-400-api-key-invalid.json",
    "gemini-400-location-unsupported.json",
    "gemini-404-model-not-found.json",
    "gemini-429-errorinfo-rate-limit-exceeded.json",
    "gemini-429-limit0-freetier-image.json",
    "gemini-429-quotafailure-rpd-quotavalue.json",
    "gemini-429-quotafailure-tpm-freetier.json",
    "gemini-429-resource-exhausted-bare.json",
    "gemini-500-internal.json",
    "gemini-503-overloaded.json",
];

#[test]
fn every_error_sample_has_a_recorded_fixture() {
    let fixtures = Fixture::load_dir("gemini").unwrap();
    for sample in ERROR_SAMPLES {
        let found = fixtures.iter().any(|f| {
            f.origin == Origin::Recorded
                && f.source.contains(&format!("shared/samples/{sample}"))
                && f.expect.kind.is_some()
        });
        assert!(found, "no recorded error fixture for {sample}");
    }
    // And the 200s that are not images.
    for sample in [
        "gemini-image-no-image.json",
        "gemini-image-prompt-blocked.json",
    ] {
        assert!(
            fixtures
                .iter()
                .any(|f| f.origin == Origin::Recorded && f.source.contains(sample)),
            "no recorded fixture for {sample}"
        );
    }
}

#[test]
fn the_fixtures_cover_every_kind_gemini_can_produce() {
    let fixtures = Fixture::load_dir("gemini").unwrap();
    let covered: BTreeSet<ErrorKind> = fixtures.iter().filter_map(|f| f.expect.kind).collect();
    // Timeout and connect come from the transport (tests/provider.rs), config_invalid from the
    // builder, unexpected from nothing Gemini sends: every other kind must be pinned here.
    let expected = [
        ErrorKind::RateLimited,
        ErrorKind::QuotaExhausted,
        ErrorKind::BillingRequired,
        ErrorKind::Unavailable,
        ErrorKind::Unauthorized,
        ErrorKind::RegionUnsupported,
        ErrorKind::ModelNotFound,
        ErrorKind::InvalidRequest,
        ErrorKind::ContentBlocked,
        ErrorKind::NoImage,
        ErrorKind::InvalidResponse,
    ];
    for kind in expected {
        assert!(covered.contains(&kind), "no fixture expects {kind}");
    }
    assert!(
        fixtures.iter().any(|f| f.expects_success()),
        "no success fixture"
    );
}

#[test]
fn synthesized_fixtures_name_their_document_and_recorded_ones_their_capture() {
    for f in Fixture::load_dir("gemini").unwrap() {
        match f.origin {
            Origin::Recorded => assert!(
                f.source.starts_with("shared/samples/"),
                "{}: recorded fixtures name their sample",
                f.id
            ),
            Origin::Synthesized => assert!(
                f.source.contains(".md"),
                "{}: synthesized fixtures name the document they follow",
                f.id
            ),
        }
        assert!(!f.description.is_empty(), "{}: no description", f.id);
    }
}

#[test]
fn every_fixture_has_its_row_in_the_error_model() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/error-model.md"),
    )
    .unwrap();
    for f in Fixture::load_dir("gemini").unwrap() {
        let short =
            f.id.replace("gemini/generate-content/", "gc/")
                .replace("gemini/", "");
        assert!(
            doc.contains(&format!("`{short}`")),
            "docs/error-model.md has no row naming `{short}`"
        );
    }
}

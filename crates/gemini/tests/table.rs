//! Every fixture under `fixtures/gemini` through the pure parser, checked against its `expect`.
//!
//! This is the test that walks every recorded Gemini capture (each a fixture naming its public
//! origin) and every synthesized class.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeSet;

use imagegate_core::ErrorKind;
use imagegate_gemini::parse_response;
use imagegate_testkit::table::check_fixtures;
use imagegate_testkit::{Fixture, Origin};

/// The Batch API's exchanges (`fixtures/gemini/batch`) are read by the batch parsers
/// (tests/batch_fixtures.rs), not by `generateContent`'s.
fn interactive_fixtures() -> Vec<Fixture> {
    Fixture::load_dir("gemini")
        .unwrap()
        .into_iter()
        .filter(|f| !f.id.starts_with("gemini/batch/"))
        .collect()
}

#[test]
fn every_gemini_fixture_is_classified_as_it_expects() {
    let checked = check_fixtures(&interactive_fixtures(), |f| {
        parse_response(f.status(), &f.headers(), &f.body(), f.now())
    })
    .unwrap_or_else(|report| panic!("{report}"));
    assert!(checked >= 50, "only {checked} fixtures");
}

/// The real Gemini error bodies the repository holds, by fixture id: each is `recorded`, its
/// `source` names the public capture it came from. Listed here so that a capture cannot
/// silently lose its test.
const RECORDED_ERRORS: [&str; 10] = [
    "gemini/generate-content/400-api-key-invalid",
    "gemini/generate-content/400-location-unsupported",
    "gemini/generate-content/404-model-not-found",
    "gemini/generate-content/429-errorinfo-rate-limit-exceeded",
    "gemini/generate-content/429-limit0-freetier-image",
    "gemini/generate-content/429-quotafailure-rpd-quotavalue",
    "gemini/generate-content/429-quotafailure-tpm-freetier",
    "gemini/generate-content/429-resource-exhausted-bare",
    "gemini/generate-content/500-internal",
    "gemini/generate-content/503-overloaded",
];

#[test]
fn every_recorded_capture_keeps_its_fixture() {
    for id in RECORDED_ERRORS {
        let f = Fixture::by_id(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(f.origin, Origin::Recorded, "{id}");
        assert!(f.expect.kind.is_some(), "{id} expects an error");
    }
    // And the 200s that are not images.
    for id in [
        "gemini/generate-content/200-no-image",
        "gemini/generate-content/200-prompt-blocked",
    ] {
        let f = Fixture::by_id(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(f.origin, Origin::Recorded, "{id}");
    }
}

#[test]
fn the_fixtures_cover_every_kind_gemini_can_produce() {
    let fixtures = interactive_fixtures();
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
            // A provenance label and the public capture (an issue, a repository's fixture).
            Origin::Recorded => assert!(
                ["VERBATIM", "FIXTURE", "DERIVED", "RECONSTRUCTED"]
                    .iter()
                    .any(|label| f.source.contains(label))
                    && f.source.contains('/'),
                "{}: recorded fixtures name their capture: {}",
                f.id,
                f.source
            ),
            // The public document followed (ai.google.dev/..., a docs/ page).
            Origin::Synthesized => assert!(
                f.source.contains("ai.google.dev") || f.source.contains("docs/"),
                "{}: synthesized fixtures name the document they follow: {}",
                f.id,
                f.source
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

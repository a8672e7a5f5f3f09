//! Every fixture under `fixtures/openai` through the pure parser, and what the fixture set must
//! cover.

mod common;

use std::collections::BTreeSet;

use imagegate_core::ErrorKind;
use imagegate_testkit::check_table;
use imagegate_testkit::{Fixture, Origin};

#[test]
fn every_fixture_is_classified_as_expected() {
    let checked = check_table("openai", common::parse_fixture).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        checked, 38,
        "fixtures were added or lost: update this count"
    );
}

#[test]
fn fixtures_cover_every_kind_a_response_can_produce() {
    let fixtures = Fixture::load_dir("openai").unwrap();
    let covered: BTreeSet<ErrorKind> = fixtures.iter().filter_map(|f| f.expect.kind).collect();
    // `connect` has no response to record and `config_invalid` happens before any request;
    // both are tested in tests/http.rs and the unit tests.
    let missing: Vec<_> = ErrorKind::ALL
        .into_iter()
        .filter(|k| !matches!(k, ErrorKind::Connect | ErrorKind::ConfigInvalid))
        .filter(|k| !covered.contains(k))
        .collect();
    assert!(missing.is_empty(), "no fixture for {missing:?}");
    assert!(fixtures.iter().any(|f| f.expects_success()));
}

/// Every OpenAI capture the repository holds, by fixture id: none may silently lose its test.
const CAPTURES: [&str; 4] = [
    "openai/images-generations/400-moderation-blocked",
    "openai/images-generations/429-limit-zero",
    "openai/images-generations/429-requests-per-min-legacy",
    "openai/images-generations/429-cloudflare-1015",
];

#[test]
fn every_capture_keeps_its_fixture_and_names_its_origin() {
    for id in CAPTURES {
        let fixture = Fixture::by_id(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert_eq!(fixture.origin, Origin::Recorded, "{id}");
        assert!(
            ["VERBATIM", "DERIVED"]
                .iter()
                .any(|label| fixture.source.contains(label)),
            "{id} names no provenance: {}",
            fixture.source
        );
    }
    for fixture in Fixture::load_dir("openai").unwrap() {
        assert!(!fixture.description.is_empty(), "{}", fixture.id);
        if fixture.origin == Origin::Synthesized {
            assert!(
                fixture.source.contains("openai.com")
                    || fixture.source.contains("docs/")
                    || fixture.source.contains("learn.microsoft.com"),
                "{} names no public source: {}",
                fixture.id,
                fixture.source
            );
        }
    }
}

#[test]
fn truncated_bodies_never_panic_and_stay_classified() {
    for fixture in Fixture::load_dir("openai").unwrap() {
        let body = fixture.body();
        let (status, headers, now) = (fixture.status(), fixture.headers(), fixture.now());
        for cut in (0..body.len()).step_by(3) {
            match imagegate_openai::parse_response(
                status,
                &headers,
                &body[..cut],
                "gpt-image-1",
                now,
            ) {
                Ok(_) => panic!("{} cut at {cut} parsed as a success", fixture.id),
                Err(error) => {
                    assert_eq!(error.provider(), Some("openai"), "{}", fixture.id);
                    if status.is_success() {
                        assert_eq!(
                            error.kind(),
                            ErrorKind::InvalidResponse,
                            "{} at {cut}",
                            fixture.id
                        );
                    } else {
                        assert_eq!(error.http_status(), Some(status.as_u16()), "{}", fixture.id);
                    }
                }
            }
        }
    }
}

#[test]
fn key_shaped_text_in_an_upstream_message_is_scrubbed() {
    let key = ["sk-", "proj-0123456789abcdef0123456789abcdef"].concat();
    let body = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {key}.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
    );
    let error = imagegate_openai::parse_error(
        http::StatusCode::UNAUTHORIZED,
        &http::HeaderMap::new(),
        body.as_bytes(),
        "2026-01-15T12:00:00Z".parse().unwrap(),
    );
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(!error.to_string().contains(&key), "{error}");
    assert!(!format!("{error:?}").contains(&key));
}

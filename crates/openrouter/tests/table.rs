//! Every fixture under `fixtures/openrouter` through the pure parsers, and what the fixture set
//! must cover.

mod common;

use std::collections::BTreeSet;

use imagegate_core::ErrorKind;
use imagegate_testkit::check_table;
use imagegate_testkit::{Fixture, Origin};

#[test]
fn every_fixture_is_classified_as_expected() {
    let checked =
        check_table("openrouter", common::parse_fixture).unwrap_or_else(|e| panic!("{e}"));
    assert!(checked >= 40, "only {checked} fixtures");
}

#[test]
fn fixtures_cover_every_kind_a_response_can_produce() {
    let fixtures = Fixture::load_dir("openrouter").unwrap();
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

/// Every OpenRouter capture the repository holds (real bodies and the documentation's own
/// examples), by fixture id: none may silently lose its test.
const CAPTURES: [&str; 10] = [
    "openrouter/chat-completions/401-no-auth",
    "openrouter/chat-completions/402-insufficient-credits",
    "openrouter/chat-completions/404-no-endpoints",
    "openrouter/chat-completions/429-free-models-per-day",
    "openrouter/chat-completions/502-upstream-error-raw-object",
    "openrouter/chat-completions/200-success-pro-4k",
    "openrouter/chat-completions/200-success",
    "openrouter/key/200-current-shape",
    "openrouter/key/200-legacy-shape",
    "openrouter/chat-completions/200-in-band-error-chunk",
];

#[test]
fn every_openrouter_capture_keeps_its_fixture() {
    for id in CAPTURES {
        let fixture = Fixture::by_id(id).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(
            ["VERBATIM", "FIXTURE", "RECONSTRUCTED"]
                .iter()
                .any(|label| fixture.source.contains(label)),
            "{id} names no provenance: {}",
            fixture.source
        );
    }
}

#[test]
fn recorded_fixtures_name_a_real_capture() {
    for fixture in Fixture::load_dir("openrouter").unwrap() {
        if fixture.origin == Origin::Recorded {
            assert!(
                ["VERBATIM", "FIXTURE"]
                    .iter()
                    .any(|label| fixture.source.contains(label)),
                "{} is recorded but its source names no capture: {}",
                fixture.id,
                fixture.source
            );
        }
        assert!(
            !fixture.description.is_empty(),
            "{} has no description",
            fixture.id
        );
    }
}

#[test]
fn truncated_bodies_never_panic_and_stay_classified() {
    // Every prefix of every fixture's body (an upstream cut off mid-answer, a proxy that
    // trimmed it): the parser returns a typed error or a result, never a panic, and a cut 200
    // is never taken for a success.
    for fixture in Fixture::load_dir("openrouter").unwrap() {
        if !fixture.id.starts_with("openrouter/chat-completions/") {
            continue;
        }
        let body = fixture.body();
        let (status, headers, now) = (fixture.status(), fixture.headers(), fixture.now());
        for cut in (0..body.len()).step_by(5) {
            let outcome = imagegate_openrouter::parse_response(status, &headers, &body[..cut], now);
            match outcome {
                Ok(_) => panic!("{} cut at {cut} parsed as a success", fixture.id),
                Err(error) => {
                    assert_eq!(error.provider(), Some("openrouter"), "{}", fixture.id);
                    if status.is_success() {
                        assert_eq!(
                            error.kind(),
                            ErrorKind::InvalidResponse,
                            "{} at {cut}",
                            fixture.id
                        );
                    } else {
                        assert_eq!(
                            error.http_status(),
                            Some(status.as_u16()),
                            "{} at {cut}",
                            fixture.id
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn key_shaped_text_in_an_upstream_message_is_scrubbed() {
    let key = ["sk-", "or-v1-0123456789abcdef0123456789abcdef"].concat();
    let body =
        format!(r#"{{"error":{{"code":401,"message":"Invalid key {key} for this account"}}}}"#);
    let error = imagegate_openrouter::parse_error(
        http::StatusCode::UNAUTHORIZED,
        &http::HeaderMap::new(),
        body.as_bytes(),
        "2026-01-15T12:00:00Z".parse().unwrap(),
    );
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert!(!error.to_string().contains(&key), "{error}");
    assert!(!format!("{error:?}").contains(&key));
}

//! Every fixture under `fixtures/vertex` through the pure parser, and what the set must cover.

mod common;

use std::collections::BTreeSet;

use imagegate_core::ErrorKind;
use imagegate_testkit::Fixture;
use imagegate_testkit::check_table;

#[test]
fn every_fixture_is_classified_as_expected() {
    let checked = check_table("vertex", common::parse_fixture).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        checked, 21,
        "fixtures were added or lost: update this count"
    );
}

#[test]
fn fixtures_cover_every_kind_vertex_can_produce() {
    let fixtures = Fixture::load_dir("vertex").unwrap();
    let covered: BTreeSet<ErrorKind> = fixtures.iter().filter_map(|f| f.expect.kind).collect();
    // `connect` and `config_invalid` happen without an answer (tests/http.rs, unit tests);
    // `quota_exhausted` never comes from Vertex: its 429 is always `rate_limited`.
    let missing: Vec<_> = ErrorKind::ALL
        .into_iter()
        .filter(|k| {
            !matches!(
                k,
                ErrorKind::Connect | ErrorKind::ConfigInvalid | ErrorKind::QuotaExhausted
            )
        })
        .filter(|k| !covered.contains(k))
        .collect();
    assert!(missing.is_empty(), "no fixture for {missing:?}");
    assert!(!covered.contains(&ErrorKind::QuotaExhausted));
    assert!(fixtures.iter().any(|f| f.expects_success()));
    for fixture in &fixtures {
        assert!(
            fixture.source.contains("cloud.google.com") || fixture.source.contains("docs/"),
            "{} names no public source",
            fixture.id
        );
    }
}

#[test]
fn no_429_teaches_a_limit() {
    for fixture in Fixture::load_dir("vertex").unwrap() {
        if fixture.response.status != 429 {
            continue;
        }
        let error = common::parse_fixture(&fixture).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::RateLimited, "{}", fixture.id);
        assert!(
            error.quota().is_empty(),
            "{}: {:?}",
            fixture.id,
            error.quota()
        );
    }
}

#[test]
fn truncated_bodies_never_panic_and_stay_classified() {
    for fixture in Fixture::load_dir("vertex").unwrap() {
        let body = fixture.body();
        let (status, headers, now) = (fixture.status(), fixture.headers(), fixture.now());
        for cut in (0..body.len()).step_by(7) {
            let outcome = imagegate_vertex::parse_response(
                status,
                &headers,
                &body[..cut],
                "gemini-2.5-flash-image",
                now,
            );
            let error = match outcome {
                Ok(_) => panic!("{} cut at {cut} parsed as a success", fixture.id),
                Err(error) => error,
            };
            assert_eq!(error.provider(), Some("vertex"), "{}", fixture.id);
        }
    }
}

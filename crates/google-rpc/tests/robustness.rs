//! `classify` never panics and always keeps the status, whatever part of a real body arrives.
//!
//! Every recorded Gemini error body is cut at every byte (a connection dropped mid-body) and
//! classified under several statuses: exhaustive and deterministic, no randomness needed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use http::{HeaderMap, StatusCode};
use imagegate_core::ErrorKind;
use imagegate_google_rpc::{classify, kind_for_status, parse_status};
use imagegate_testkit::{Fixture, Origin};

#[test]
fn every_prefix_of_every_body_classifies_without_panicking() {
    let now = "2026-01-15T12:00:00Z".parse().unwrap();
    let fixtures = Fixture::load_dir("gemini").unwrap();
    let mut checked = 0usize;
    // The recorded error bodies: real bytes, the ones a dropped connection would cut.
    let recorded = fixtures
        .iter()
        .filter(|f| f.origin == Origin::Recorded && !f.expects_success());
    for fixture in recorded {
        let body = fixture.body();
        for end in 0..=body.len() {
            let unreadable = parse_status(&body[..end]).is_none();
            for status in [fixture.status(), StatusCode::BAD_GATEWAY] {
                let error = classify(status, &HeaderMap::new(), &body[..end], now, "gemini");
                assert_eq!(error.http_status(), Some(status.as_u16()));
                assert_eq!(error.provider(), Some("gemini"));
                if status.as_u16() >= 500 && unreadable {
                    // A cut (unreadable) body never turns a server error into a permanent one.
                    assert!(error.is_temporary(), "{}[..{end}] -> {error}", fixture.id);
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 2_000, "only {checked} cases");
}

#[test]
fn status_alone_decides_when_the_body_says_nothing() {
    for (status, kind) in [
        (400, ErrorKind::InvalidRequest),
        (401, ErrorKind::Unauthorized),
        (402, ErrorKind::BillingRequired),
        (403, ErrorKind::Unauthorized),
        (404, ErrorKind::ModelNotFound),
        (408, ErrorKind::Timeout),
        (413, ErrorKind::InvalidRequest),
        (429, ErrorKind::RateLimited),
        (500, ErrorKind::Unavailable),
        (503, ErrorKind::Unavailable),
        (504, ErrorKind::Unavailable),
        (302, ErrorKind::Unexpected),
    ] {
        assert_eq!(kind_for_status(status), kind, "{status}");
        let error = classify(
            StatusCode::from_u16(status).unwrap(),
            &HeaderMap::new(),
            b"",
            "2026-01-15T12:00:00Z".parse().unwrap(),
            "gemini",
        );
        assert_eq!(error.kind(), kind, "{status}");
    }
}

//! Inputs the fuzz targets (fuzz/, docs/testing.md) found breaking an invariant, each a fixture
//! under fixtures/gemini, pinned here with what must hold.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use imagegate_gemini::parse_response;
use imagegate_testkit::Fixture;

/// The key the fuzz targets hold: no known key prefix, so only its registration (as any
/// provider's `ApiKey` registers its key) can keep it out of the error's text.
const HELD: &str = "fuzzheldkey-7QzXw2vN9pL4tR8m";

/// gemini_response: the quota facts read from a 429's message (metric, model) were stored
/// unscrubbed, and `Display` and `Debug` printed the key an upstream echoed there.
#[test]
fn a_key_echoed_in_the_quota_facts_is_never_printed() {
    let f = Fixture::by_id("gemini/generate-content/429-key-echoed-in-quota-message").unwrap();
    let error = f
        .error_echoing_key(HELD, |body| {
            parse_response(f.status(), &f.headers(), body, f.now())
        })
        .unwrap();
    assert!(error.quota().quota_metric.is_some(), "{error:?}");
}

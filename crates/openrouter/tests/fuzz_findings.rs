//! Inputs the fuzz targets (fuzz/, docs/testing.md) found breaking an invariant, each a fixture
//! under fixtures/openrouter, pinned here with what must hold.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use imagegate_openrouter::parse_response;
use imagegate_testkit::Fixture;

/// The key the fuzz targets hold: no known key prefix, so only its registration (as the
/// provider's `ApiKey` registers its key) can keep it out of the error's text.
const HELD: &str = "fuzzheldkey-7QzXw2vN9pL4tR8m";

/// openrouter_response: the quota id and model read from a 429's message were stored
/// unscrubbed, and `Display` and `Debug` printed the key an upstream echoed there.
#[test]
fn a_key_echoed_in_the_quota_facts_is_never_printed() {
    let f = Fixture::by_id("openrouter/chat-completions/429-key-echoed-in-quota-message").unwrap();
    let error = f
        .error_echoing_key(HELD, |body| {
            parse_response(f.status(), &f.headers(), body, f.now())
        })
        .unwrap();
    assert!(error.quota().quota_id.is_some(), "{error:?}");
}

//! Inputs the fuzz targets (fuzz/, docs/testing.md) found breaking an invariant, each a fixture
//! under fixtures/openai, pinned here with what must hold.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use imagegate_openai::parse_response;
use imagegate_testkit::Fixture;

/// The key the fuzz targets hold: no known key prefix, so only its registration (as the
/// provider's `ApiKey` registers its key) can keep it out of the error's text.
const HELD: &str = "fuzzheldkey-7QzXw2vN9pL4tR8m";

/// openai_response: the error object's `code` was stored as the upstream code unscrubbed, and
/// `Debug` printed the key an upstream echoed there.
#[test]
fn a_key_echoed_in_the_error_code_is_never_printed() {
    let f = Fixture::by_id("openai/images-generations/400-key-echoed-in-code").unwrap();
    let error = f
        .error_echoing_key(HELD, |body| {
            parse_response(f.status(), &f.headers(), body, "gpt-image-1", f.now())
        })
        .unwrap();
    assert!(error.upstream_code().is_some(), "{error:?}");
}

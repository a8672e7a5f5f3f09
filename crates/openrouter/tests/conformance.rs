//! The testkit conformance suite: every chat-completions fixture served by a fresh wiremock
//! server to the real provider, one `generate` call each.

mod common;

use imagegate_testkit::conformance::Suite;

#[tokio::test]
async fn openrouter_conforms_on_every_fixture() {
    let suite = Suite {
        provider_dir: "openrouter",
        make_provider: Box::new(common::dyn_provider),
        request_for: Box::new(common::request_for),
    };
    let ran = suite.run().await.unwrap_or_else(|e| panic!("{e}"));
    assert!(ran >= 40, "only {ran} scenarios ran");
}

//! The testkit conformance suite: every fixture with a request served by a fresh wiremock
//! server to the real provider, one `generate` call each (edits as multipart).

mod common;

use imagegate_testkit::conformance::Suite;

#[tokio::test]
async fn openai_conforms_on_every_fixture() {
    let suite = Suite {
        provider_dir: "openai",
        make_provider: Box::new(common::dyn_provider),
        request_for: Box::new(common::request_for),
    };
    let ran = suite.run().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ran, 37, "every fixture but the link answer runs");
}

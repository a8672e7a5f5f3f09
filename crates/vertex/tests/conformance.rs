//! The testkit conformance suite: every fixture served by a fresh wiremock server to the real
//! provider (with the suite's credential as its access token), one `generate` call each.

mod common;

use imagegate_testkit::conformance::Suite;

#[tokio::test]
async fn vertex_conforms_on_every_fixture() {
    let suite = Suite {
        provider_dir: "vertex",
        make_provider: Box::new(common::dyn_provider),
        request_for: Box::new(common::request_for),
    };
    let ran = suite.run().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ran, 21);
}

//! The gateway compatibility suite with the real Python SDKs (`openai` and `google-genai`,
//! pinned in tests/python/requirements.txt): the emulator and the gateway in front of it run in
//! process on 127.0.0.1:0 and tests/python/test_gateway_sdks.py runs against the gateway, whose
//! routes reach the emulator's Gemini, OpenRouter and OpenAI Images paths.
//!
//! The interpreter, the skip and `IMAGEGATE_REQUIRE_PYTHON_SDKS` are imagegate-testkit's
//! (`imagegate_testkit::python`), shared with the emulator's suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{settings, stack_on};
use imagegate_core::clock::SystemClock;
use imagegate_testkit::python::{Suite, interpreter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_openai_and_google_genai_sdks_work_against_the_gateway() {
    let Some(python) = interpreter("google.genai, openai").unwrap() else {
        return;
    };
    // The SDKs wait in real time, so the router and the gateway run on the wall clock.
    let s = stack_on(settings(), Some(Arc::new(SystemClock))).await;
    let suite = Suite::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python"),
        "test_gateway_sdks",
        9,
    )
    .env("IMAGEGATE_GATEWAY_URL", &s.url);
    let report = tokio::task::spawn_blocking(move || suite.run(&python))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{report}");
    let stats = s.emulator.stats();
    assert!(
        stats.totals.admitted >= 9,
        "the emulator served them: {stats:?}"
    );
    let mini = stats
        .pools
        .iter()
        .find(|p| p.models.iter().any(|m| m == "gpt-image-1-mini"))
        .unwrap();
    assert_eq!(
        (mini.counters.admitted, mini.counters.rate_limited),
        (1, 0),
        "the OpenAI pool served once and was never asked past its limit: {stats:?}"
    );
    s.stop().await;
}

//! The real google-genai SDK's Batch API calls (`client.batches.*`, `client.files.upload` and
//! `download`) against the emulator in process: tests/python/test_batch_sdk.py, run by
//! imagegate-testkit's Python runner under the same rules as the SDK suite (tests/python_sdks.rs):
//! `$IMAGEGATE_PYTHON` with the pinned SDKs, or skipped with the reason unless
//! `IMAGEGATE_REQUIRE_PYTHON_SDKS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::path::Path;

use common::{config, start};
use imagegate_testkit::python::{Suite, interpreter};

const POOLS: &str = r#"
[[upstream.pool]]
provider = "gemini"
project = "sdk-batch"
models = ["gemini-2.5-flash-image"]
rpm = 1
batch_turnaround = "0s"
[[upstream.key]]
provider = "gemini"
project = "sdk-batch"
key = "sdk-batch-key"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_google_genai_batches_and_files_work_against_the_emulator() {
    let Some(python) = interpreter("google.genai").unwrap() else {
        return;
    };
    let emu = start(&config(POOLS)).await;
    let suite = Suite::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python"),
        "test_batch_sdk",
        3,
    )
    .env("IMAGEGATE_EMULATOR_URL", &emu.url);
    let report = tokio::task::spawn_blocking(move || suite.run(&python))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{report}");

    let stats = emu.emulator.stats();
    assert_eq!(stats.batch.jobs_created, 3, "{stats:?}");
    assert_eq!(stats.batch.duplicate_submissions, 0, "{stats:?}");
    // Batch requests never touch the interactive pool.
    assert_eq!(stats.totals.requests, 0, "{stats:?}");
    emu.stop().await;
}

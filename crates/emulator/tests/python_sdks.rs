//! The compatibility suite with the real Python SDKs (`google-genai`, and `openai` on the
//! OpenRouter and OpenAI Images paths), pinned in tests/python/requirements.txt: the emulator
//! runs in process on 127.0.0.1:0 and tests/python/test_sdks.py runs against it.
//!
//! The interpreter, the skip and `IMAGEGATE_REQUIRE_PYTHON_SDKS` are imagegate-testkit's
//! (`imagegate_testkit::python`), shared with the gateway's suite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::path::Path;

use common::{config, start};
use imagegate_testkit::python::{Suite, interpreter};

const POOLS: &str = r#"
[[upstream.pool]]
provider = "gemini"
project = "sdk-project"
models = ["gemini-2.5-flash-image"]
rpm = 1
[[upstream.pool]]
provider = "gemini"
project = "sdk-project"
models = ["gemini-3-pro-image-preview"]
[[upstream.pool]]
provider = "gemini"
project = "sdk-project"
models = ["gemini-3.1-flash-image-preview"]
rpd = 0
[[upstream.key]]
provider = "gemini"
project = "sdk-project"
key = "sdk-gemini-key"

[[upstream.pool]]
provider = "openrouter"
project = "sdk-account"
models = ["google/gemini-2.5-flash-image"]
rpm = 1
[[upstream.pool]]
provider = "openrouter"
project = "sdk-account"
models = ["google/gemini-3-pro-image-preview"]
rpm = 1
[[upstream.pool]]
provider = "openrouter"
project = "sdk-account"
models = ["google/gemini-3.1-flash-image-preview"]
rpm = 0
[[upstream.pool]]
provider = "openrouter"
project = "sdk-account"
models = ["google/gemini-2.5-flash-image-preview"]
[[upstream.key]]
provider = "openrouter"
project = "sdk-account"
key = "sdk-openrouter-key"

[[upstream.pool]]
provider = "openai"
project = "sdk-org"
models = ["gpt-image-1"]
ipm = 1
[[upstream.pool]]
provider = "openai"
project = "sdk-org"
models = ["gpt-image-1-mini"]
[[upstream.pool]]
provider = "openai"
project = "sdk-org"
models = ["dall-e-3"]
rpd = 0
[[upstream.key]]
provider = "openai"
project = "sdk-org"
key = "sdk-openai-key"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_google_genai_and_openai_sdks_work_against_the_emulator() {
    let Some(python) = interpreter("google.genai, openai").unwrap() else {
        return;
    };
    let emu = start(&config(POOLS)).await;
    let suite = Suite::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python"),
        "test_sdks",
        10,
    )
    .env("IMAGEGATE_EMULATOR_URL", &emu.url);
    let report = tokio::task::spawn_blocking(move || suite.run(&python))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("{report}");

    let stats = emu.emulator.stats();
    assert!(stats.totals.admitted >= 7, "{stats:?}");
    assert!(stats.totals.rate_limited >= 6, "{stats:?}");
    emu.stop().await;
}

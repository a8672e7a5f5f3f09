//! The real google-genai SDK's Batch API calls (`client.batches.*`, `client.files.upload` and
//! `download`) against the emulator in process: tests/python/test_batch_sdk.py, under the same
//! rules as the SDK suite (tests/python_sdks.rs): `$IMAGEGATE_PYTHON` with the pinned SDKs, or
//! skipped with the reason unless `IMAGEGATE_REQUIRE_PYTHON_SDKS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{config, start};

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

/// Variables that would send the SDK's loopback requests elsewhere or give it another key.
const SCRUBBED: [&str; 10] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GEMINI_BASE_URL",
    "GOOGLE_GENAI_API_VERSION",
];

fn unavailable(reason: &str) {
    let required = std::env::var("IMAGEGATE_REQUIRE_PYTHON_SDKS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "IMAGEGATE_REQUIRE_PYTHON_SDKS=1 but {reason} (create the environment as .ci/run does)"
    );
    eprintln!(
        "skipped: {reason}; set IMAGEGATE_PYTHON to a Python with tests/python/requirements.txt installed (see .ci/run)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_google_genai_batches_and_files_work_against_the_emulator() {
    let python = std::env::var("IMAGEGATE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = tokio::process::Command::new(&python)
        .args(["-c", "import google.genai"])
        .stdin(Stdio::null())
        .output()
        .await;
    match probe {
        Err(e) => return unavailable(&format!("the interpreter `{python}` cannot run ({e})")),
        Ok(out) if !out.status.success() => {
            return unavailable(&format!("`{python}` lacks google-genai"));
        }
        Ok(_) => {}
    }
    let emu = start(&config(POOLS)).await;
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    assert!(
        suite.join("test_batch_sdk.py").is_file(),
        "{}",
        suite.display()
    );
    let mut command = tokio::process::Command::new(&python);
    command
        .args(["-m", "unittest", "-v", "test_batch_sdk"])
        .current_dir(&suite)
        .env("IMAGEGATE_EMULATOR_URL", &emu.url)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null());
    for name in SCRUBBED {
        command.env_remove(name);
    }
    let output = command.output().await.unwrap();
    let report = String::from_utf8_lossy(&output.stderr);
    eprintln!("{report}");
    assert!(
        output.status.success(),
        "the SDK batch suite failed:\n{report}"
    );
    assert!(report.contains("Ran 3 tests"), "every test ran:\n{report}");
    let stats = emu.emulator.stats();
    assert_eq!(stats.batch.jobs_created, 3, "{stats:?}");
    assert_eq!(stats.batch.duplicate_submissions, 0, "{stats:?}");
    // Batch requests never touch the interactive pool.
    assert_eq!(stats.totals.requests, 0, "{stats:?}");
    emu.stop().await;
}

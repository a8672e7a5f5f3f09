//! The gateway compatibility suite with the real Python SDKs (`openai` and `google-genai`,
//! pinned in tests/python/requirements.txt): the emulator and the gateway in front of it run in
//! process on 127.0.0.1:0 and tests/python/test_gateway_sdks.py runs against the gateway.
//!
//! The interpreter is `$IMAGEGATE_PYTHON` (default `python3`); it needs the pinned SDKs, which
//! `.ci/run` installs into a virtual environment it creates. Without them the test is skipped
//! with the reason printed, unless `IMAGEGATE_REQUIRE_PYTHON_SDKS=1` (set by `.ci/run`), which
//! turns a missing interpreter or SDK into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use common::{settings, stack_on};
use imagegate_core::clock::SystemClock;

/// Variables that would send the SDKs' loopback requests elsewhere or give them other keys.
const SCRUBBED: [&str; 12] = [
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
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
];

/// Skips (printing why) or, when the SDKs are required, fails.
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
async fn the_real_openai_and_google_genai_sdks_work_against_the_gateway() {
    let python = std::env::var("IMAGEGATE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = tokio::process::Command::new(&python)
        .args(["-c", "import google.genai, openai"])
        .stdin(Stdio::null())
        .output()
        .await;
    match probe {
        Err(e) => return unavailable(&format!("the interpreter `{python}` cannot run ({e})")),
        Ok(out) if !out.status.success() => {
            return unavailable(&format!(
                "`{python}` lacks the pinned SDKs: {}",
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("the import failed")
            ));
        }
        Ok(_) => {}
    }

    // The SDKs wait in real time, so the router and the gateway run on the wall clock.
    let s = stack_on(settings(), Some(Arc::new(SystemClock))).await;
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");
    assert!(
        suite.join("test_gateway_sdks.py").is_file(),
        "{}",
        suite.display()
    );
    let mut command = tokio::process::Command::new(&python);
    command
        .args(["-m", "unittest", "-v", "test_gateway_sdks"])
        .current_dir(&suite)
        .env("IMAGEGATE_GATEWAY_URL", &s.url)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null());
    for name in SCRUBBED {
        command.env_remove(name);
    }
    let output = command.output().await.unwrap();
    let report = String::from_utf8_lossy(&output.stderr);
    eprintln!("{report}");
    assert!(output.status.success(), "the SDK suite failed:\n{report}");
    assert!(report.contains("Ran 7 tests"), "every test ran:\n{report}");
    assert!(
        !report.contains("skipped"),
        "nothing was skipped:\n{report}"
    );
    let stats = s.emulator.stats();
    assert!(
        stats.totals.admitted >= 6,
        "the emulator served them: {stats:?}"
    );
    s.stop().await;
}

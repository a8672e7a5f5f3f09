//! The pinned Python SDKs (`google-genai`, `openai`) run as a `unittest` suite against a server
//! a Rust test started on loopback: the emulator's suite and the gateway's share this runner.
//!
//! The interpreter is `$IMAGEGATE_PYTHON` (default `python3`); it needs the SDKs pinned in the
//! suite's `requirements.txt`, which `.ci/run` installs into a virtual environment it creates.
//! Without them the suite is skipped with the reason printed, unless
//! `IMAGEGATE_REQUIRE_PYTHON_SDKS=1` (set by `.ci/run`), which turns a missing interpreter or
//! SDK into a failure.
//!
//! ```no_run
//! # fn main() -> Result<(), String> {
//! use imagegate_testkit::python::{Suite, interpreter};
//!
//! let Some(python) = interpreter("google.genai, openai")? else {
//!     return Ok(()); // skipped, and the reason printed
//! };
//! let suite = Suite::new("tests/python", "test_sdks", 7)
//!     .env("IMAGEGATE_EMULATOR_URL", "http://127.0.0.1:39017");
//! let report = suite.run(&python)?;
//! assert!(report.contains("OK"));
//! # Ok(())
//! # }
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Variables that would send the SDKs' loopback requests elsewhere or give them other keys;
/// removed from the suite's environment.
pub const SCRUBBED: [&str; 12] = [
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

/// Whether a missing interpreter or SDK fails the test (`IMAGEGATE_REQUIRE_PYTHON_SDKS=1`).
fn required() -> bool {
    std::env::var("IMAGEGATE_REQUIRE_PYTHON_SDKS").is_ok_and(|v| v == "1")
}

/// The interpreter that imports `imports` (a Python import list, `"google.genai, openai"`):
/// `Ok(Some(python))`; `Ok(None)` when it cannot, after printing why (the caller skips);
/// `Err` naming what is missing when the SDKs are required.
///
/// # Errors
/// The interpreter cannot run or lacks a module while `IMAGEGATE_REQUIRE_PYTHON_SDKS=1`.
pub fn interpreter(imports: &str) -> Result<Option<String>, String> {
    let python = std::env::var("IMAGEGATE_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let probe = Command::new(&python)
        .args(["-c", &format!("import {imports}")])
        .stdin(Stdio::null())
        .output();
    let reason = match probe {
        Err(e) => format!("the interpreter `{python}` cannot run ({e})"),
        Ok(out) if !out.status.success() => format!(
            "`{python}` lacks the pinned SDKs: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("the import failed")
        ),
        Ok(_) => return Ok(Some(python)),
    };
    if required() {
        return Err(format!(
            "IMAGEGATE_REQUIRE_PYTHON_SDKS=1 but {reason} (create the environment as .ci/run does)"
        ));
    }
    eprintln!(
        "skipped: {reason}; set IMAGEGATE_PYTHON to a Python with tests/python/requirements.txt installed (see .ci/run)"
    );
    Ok(None)
}

/// One `unittest` module, where it lives, what it is told, and how many tests it must run.
#[derive(Clone, Debug)]
pub struct Suite {
    dir: PathBuf,
    module: String,
    env: Vec<(String, String)>,
    tests: usize,
}

impl Suite {
    /// The module `module` (`test_sdks`) in `dir`, which must run exactly `tests` tests.
    pub fn new(dir: impl AsRef<Path>, module: &str, tests: usize) -> Self {
        Suite {
            dir: dir.as_ref().to_owned(),
            module: module.to_owned(),
            env: Vec::new(),
            tests,
        }
    }

    /// Sets `name` to `value` in the suite's environment (the URL of the server under test).
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs the suite with `python` (blocking: call it from `spawn_blocking` in an async
    /// test), loopback only and without the [`SCRUBBED`] variables. `Ok` with its report when
    /// it passed, ran exactly the expected number of tests and skipped none.
    ///
    /// # Errors
    /// The report (or why the suite could not start) when any of that fails.
    pub fn run(&self, python: &str) -> Result<String, String> {
        let file = self.dir.join(format!("{}.py", self.module));
        if !file.is_file() {
            return Err(format!("the suite {} does not exist", file.display()));
        }
        let mut command = Command::new(python);
        command
            .args(["-m", "unittest", "-v", &self.module])
            .current_dir(&self.dir)
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null());
        for name in SCRUBBED {
            command.env_remove(name);
        }
        for (name, value) in &self.env {
            command.env(name, value);
        }
        let output = command
            .output()
            .map_err(|e| format!("`{python}` could not run the suite: {e}"))?;
        let report = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            return Err(format!("the SDK suite {} failed:\n{report}", self.module));
        }
        let ran = format!(
            "Ran {} test{}",
            self.tests,
            if self.tests == 1 { "" } else { "s" }
        );
        if !report.contains(&ran) {
            return Err(format!(
                "the SDK suite {} did not run exactly {} tests:\n{report}",
                self.module, self.tests
            ));
        }
        if report.contains("skipped") {
            return Err(format!(
                "the SDK suite {} skipped tests:\n{report}",
                self.module
            ));
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_suite_is_an_error_naming_it() {
        let suite = Suite::new("/nonexistent-suite-dir", "test_nothing", 1).env("A", "b");
        let e = suite.run("python3").unwrap_err();
        assert!(e.contains("test_nothing.py does not exist"), "{e}");
    }
}

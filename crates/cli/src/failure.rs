//! Why a command failed, and the exit code that says so.

use std::process::ExitCode;

use imagegate_core::Error;

use crate::report::ErrorReport;

/// A command's failure: the message for stderr and the exit code for scripts.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The invocation was wrong: arguments, configuration, unreadable input (exit 2).
    Usage(String),
    /// The upstream refused or failed (exit 1); printed with its advice.
    Upstream { error: Error, json: bool },
    /// Local I/O failed while doing the work (exit 1).
    Io(String),
}

impl Failure {
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure::Usage(message.into())
    }

    pub(crate) fn io(message: impl Into<String>) -> Self {
        Failure::Io(message.into())
    }

    /// Prints the failure and returns its exit code.
    pub(crate) fn report(self) -> ExitCode {
        match self {
            Failure::Usage(message) => {
                eprintln!("imagegate: {message}");
                ExitCode::from(2)
            }
            Failure::Io(message) => {
                eprintln!("imagegate: {message}");
                ExitCode::from(1)
            }
            Failure::Upstream { error, json } => {
                if json {
                    let report = serde_json::json!({ "error": ErrorReport::from(&error) });
                    println!("{report}");
                }
                eprintln!("imagegate: {error}");
                ExitCode::from(1)
            }
        }
    }
}

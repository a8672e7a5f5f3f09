//! `imagegate`: images from rate-limited APIs, as fast as the quotas allow.
//!
//! Exit codes: 0 success; 1 the work failed (an upstream error, a file that could not be
//! written); 2 the invocation was wrong (bad arguments, bad configuration, unreadable input).

mod batch;
mod commands;
mod config;
mod config_checks;
mod failure;
// Called by the fuzz targets through fuzz/cli-lib, never by the command itself.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
#[allow(dead_code)]
pub mod fuzzing;
mod log_scrub;
mod output;
mod providers;
mod recovery;
mod references;
mod report;
mod routes;
mod state;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::failure::Failure;

/// Images from rate-limited APIs, as fast as the quotas allow.
#[derive(Debug, Parser)]
#[command(name = "imagegate", version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: $IMAGEGATE_CONFIG, else ./imagegate.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Log more to stderr (-v info, -vv debug). Keys are never logged.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate images from a prompt.
    Generate(commands::generate::Args),
    /// Generate many prompts from a file, resumable after any stop (docs/batch.md).
    Batch(commands::batch::Args),
    /// Explain an upstream error body: what happened and what to do.
    Diagnose(commands::diagnose::Args),
    /// Show every configured quota pool: limits, use, what remains, next reset.
    Quota(commands::quota::Args),
    /// Compare strategies over a quota scenario in simulated time.
    Simulate(commands::simulate::Args),
    /// Serve a local Gemini, OpenRouter, OpenAI and Vertex AI that enforce quota pools over HTTP.
    Emulate(commands::emulate::Args),
    /// Serve the gateway: OpenAI, Gemini and OpenRouter clients point here (docs/gateway.md).
    Serve(commands::serve::Args),
    /// Client keys for the gateway.
    Keys(commands::keys::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return Failure::io(format!("cannot start the async runtime: {e}")).report(),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Generate(args) => {
                let config = config::load(cli.config.as_deref())?;
                commands::generate::run(&config, args).await
            }
            Command::Batch(args) => {
                let config = config::load(cli.config.as_deref())?;
                commands::batch::run(&config, args).await
            }
            // Needs no configuration: a pasted body is diagnosed the same anywhere.
            Command::Diagnose(args) => commands::diagnose::run(&args),
            Command::Quota(args) => {
                let config = config::load(cli.config.as_deref())?;
                commands::quota::run(&config, &args)
            }
            // Needs no configuration: the scenario file describes every upstream.
            Command::Simulate(args) => commands::simulate::run(&args),
            // Needs no configuration: the file describes every pool and key.
            Command::Emulate(args) => commands::emulate::run(&args).await,
            Command::Serve(args) => {
                let config = config::load(cli.config.as_deref())?;
                commands::serve::run(&config, &args).await
            }
            Command::Keys(args) => commands::keys::run(&args),
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("IMAGEGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(log_scrub::ScrubbedStderr)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_target(false)
        .init();
}

/// Colour on log lines only when stderr is a terminal and `NO_COLOR` is unset or empty
/// (no-color.org): a pipe, a file or a CI log gets plain text.
fn colour(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_needs_a_terminal_and_no_no_color() {
        let set = std::ffi::OsStr::new("1");
        let empty = std::ffi::OsStr::new("");
        assert!(colour(true, None));
        assert!(colour(true, Some(empty)));
        assert!(!colour(true, Some(set)));
        assert!(!colour(false, None));
        assert!(!colour(false, Some(set)));
    }
}

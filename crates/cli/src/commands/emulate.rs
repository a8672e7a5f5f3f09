//! `imagegate emulate CONFIG [--listen ADDR]`: a local Gemini, OpenRouter, OpenAI Images API and
//! Vertex AI that enforce the configured quota pools over HTTP (docs/emulate.md).
//!
//! Needs no imagegate configuration and no real key: the file describes every pool (a
//! simulator scenario works as is) and which keys belong to which project. The first line on
//! stdout is exactly `listening on http://HOST:PORT`, flushed at once, so scripts and tests can
//! read the port; SIGINT or SIGTERM stop it cleanly (exit 0).

use std::io::Write as _;
use std::path::PathBuf;

use imagegate_emulator::{Emulator, EmulatorConfig};

use crate::failure::Failure;

/// Arguments of `imagegate emulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The pools to enforce: a TOML file with an `[upstream]` table and its `[[upstream.pool]]`
    /// entries (a simulator scenario works as is), plus optional `[[upstream.key]]` entries.
    #[arg(value_name = "CONFIG")]
    config: PathBuf,

    /// Where to listen. The default picks a free port on loopback; the first line of output
    /// says which.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: String,
}

/// Runs the command until SIGINT or SIGTERM.
///
/// # Errors
/// [`Failure::Usage`] for a bad configuration file; [`Failure::Io`] when the address cannot
/// be listened on or the server fails.
pub(crate) async fn run(args: &Args) -> Result<(), Failure> {
    let config = EmulatorConfig::load(&args.config).map_err(|e| Failure::usage(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(args.listen.as_str())
        .await
        .map_err(|e| Failure::io(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::io(format!("cannot read the listening address: {e}")))?;
    let pools = config.pools.len();
    let stop = stop_signal()
        .map_err(|e| Failure::io(format!("cannot install the SIGINT/SIGTERM handlers: {e}")))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{address}")
            .and_then(|()| out.flush())
            .map_err(|e| Failure::io(format!("cannot write to stdout: {e}")))?;
    }
    eprintln!(
        "imagegate emulate: {pools} pool(s) from {}; stats at http://{address}/emulator/stats; Ctrl-C stops",
        args.config.display()
    );
    Emulator::new(config)
        .serve(listener, stop)
        .await
        .map_err(|e| Failure::io(format!("the emulator stopped: {e}")))
}

/// A future that completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed here,
/// before the listening line is printed, so a signal sent as soon as that line is read is
/// caught rather than killing the process.
#[cfg(unix)]
pub(crate) fn stop_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// A future that completes on Ctrl-C.
#[cfg(not(unix))]
pub(crate) fn stop_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

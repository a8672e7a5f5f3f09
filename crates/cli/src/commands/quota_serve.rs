//! `imagegate quota --serve [--listen ADDR]`: the gateway's status page over the local quota
//! state, for people who only run batches. No keys, so loopback only. The first line on
//! stdout is exactly `listening on http://HOST:PORT`, flushed; SIGINT/SIGTERM stop it (exit 0).

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use imagegate_core::clock::SystemClock;
use imagegate_core::quota::QuotaStore;

use crate::commands::emulate::stop_signal;
use crate::failure::Failure;

/// Where the page listens when `--listen` does not say (next to the gateway's 8080).
pub(crate) const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

/// Serves the page over `store` on `listen` until SIGINT or SIGTERM.
///
/// # Errors
/// [`Failure::Usage`] for an address that does not resolve or is not loopback;
/// [`Failure::Io`] when it cannot be listened on.
pub(crate) async fn serve(store: Arc<dyn QuotaStore>, listen: &str) -> Result<(), Failure> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| {
            Failure::usage(format!(
                "cannot resolve the listening address {listen}: {e}"
            ))
        })?
        .collect();
    if addresses.iter().any(|a| !a.ip().is_loopback()) {
        return Err(Failure::usage(format!(
            "refusing to serve the quota page on {listen}: it has no keys, so it listens on \
             loopback only (127.0.0.1); put the gateway (`imagegate serve` with \
             [[server.clients]]) in front for remote access"
        )));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Failure::io(format!("cannot listen on {listen}: {e}")))?;
    let address = listener
        .local_addr()
        .map_err(|e| Failure::io(format!("cannot read the listening address: {e}")))?;
    let stop = stop_signal()
        .map_err(|e| Failure::io(format!("cannot install the SIGINT/SIGTERM handlers: {e}")))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{address}")
            .and_then(|()| out.flush())
            .map_err(|e| Failure::io(format!("cannot write to stdout: {e}")))?;
    }
    eprintln!("imagegate quota: the status page is at http://{address}/ (Ctrl-C stops it)");
    imagegate_server::serve_quota_page(listener, store, Arc::new(SystemClock), stop)
        .await
        .map_err(|e| Failure::io(format!("the quota page stopped: {e}")))
}

//! The signals that stop a batch gracefully: Ctrl-C (SIGINT) and SIGTERM (`timeout`,
//! systemd, `docker stop`, CI cancellation) alike. The first stops new calls and lets those
//! in flight finish within `--grace`; the second stops at once. Either way the journal keeps
//! everything done.

use tokio::sync::watch;

/// Counts stop signals into `stops` until the run ends (the task is aborted then).
pub(crate) async fn count_stops(stops: watch::Sender<u32>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(term) => Some(term),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops gracefully");
                None
            }
        };
        loop {
            let stopped = match term.as_mut() {
                Some(term) => tokio::select! {
                    ctrl_c = tokio::signal::ctrl_c() => ctrl_c.is_ok(),
                    got = term.recv() => got.is_some(),
                },
                None => tokio::signal::ctrl_c().await.is_ok(),
            };
            if !stopped {
                break;
            }
            stops.send_modify(|n| *n += 1);
        }
    }
    #[cfg(not(unix))]
    while tokio::signal::ctrl_c().await.is_ok() {
        stops.send_modify(|n| *n += 1);
    }
}

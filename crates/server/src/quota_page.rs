//! The status page over a quota store alone, for `imagegate quota --serve`: people who only
//! run batches have no gateway, but their quota state (a file or Redis) says the same about
//! the pools. `/status.json` then carries only `at`, `source` and `pools`; the page hides the
//! sections (queue, last hour, spend, events) that only a gateway knows.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::StatusCode;
use imagegate_core::clock::Clock;
use imagegate_core::quota::QuotaStore;
use serde_json::{Value, json};

/// What the page's `/status.json` reads.
#[derive(Clone, Debug)]
struct Source {
    store: Arc<dyn QuotaStore>,
    clock: Arc<dyn Clock>,
}

/// The status page (`/`, `/status`) and `/status.json` over `store`, dated by `clock`. No
/// keys: serve it on loopback only.
pub fn quota_page(store: Arc<dyn QuotaStore>, clock: Arc<dyn Clock>) -> axum::Router {
    axum::Router::new()
        .route("/", get(crate::page::page))
        .route("/status", get(crate::page::page))
        .route("/status.json", get(status))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: try / or /status.json") })
        .with_state(Source { store, clock })
}

async fn status(State(source): State<Source>) -> Response {
    let now = source.clock.now();
    let pools = match source.store.statuses(now).await {
        Ok(pools) => serde_json::to_value(pools).unwrap_or(Value::Null),
        Err(e) => json!({"error": e.message()}),
    };
    axum::Json(json!({"at": now, "source": "quota", "pools": pools})).into_response()
}

/// Serves [`quota_page`] on `listener` until `shutdown` completes.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve_quota_page(
    listener: tokio::net::TcpListener,
    store: Arc<dyn QuotaStore>,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, quota_page(store, clock))
        .with_graceful_shutdown(shutdown)
        .await
}

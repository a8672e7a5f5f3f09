//! `imagegate serve [--listen ADDR]`: the gateway (docs/gateway.md). Unmodified OpenAI, Gemini
//! and OpenRouter clients point their base URL here and get the router: quotas respected
//! before sending, fallback across targets, and 429s carrying the exact retry hints.
//!
//! The router is assembled from configuration as `generate` assembles it: every configured
//! route (else every configured provider as a one-target route, else the built-in mock),
//! over the same shared quota state. The first line on stdout is exactly
//! `listening on http://HOST:PORT`, flushed; SIGINT/SIGTERM stop it gracefully (exit 0).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use imagegate_core::clock::SystemClock;
use imagegate_router::Router;
use imagegate_server::Gateway;

use crate::commands::emulate::stop_signal;
use crate::config::Config;
use crate::failure::Failure;
use crate::state::state_dir;

/// Where the gateway listens when neither `--listen` nor `server.listen` says.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Arguments of `imagegate serve` (the configuration file is the global `--config`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Where to listen (default: `server.listen`, else 127.0.0.1:8080; port 0 picks a free
    /// port, and the first line of output says which).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

/// Runs the gateway until SIGINT or SIGTERM.
///
/// # Errors
/// [`Failure::Usage`] for a configuration that cannot serve (an unknown route, a provider
/// without its key, clients missing on a non-loopback address); [`Failure::Io`] when the
/// address cannot be listened on.
pub(crate) async fn run(config: &Config, args: &Args) -> Result<(), Failure> {
    let mut settings = config.server.clone().unwrap_or_default();
    let (router, routes) = assemble(config, settings.concurrency)?;
    if settings.default_route.is_none() {
        settings.default_route = config
            .default_route
            .clone()
            .filter(|r| routes.contains(r))
            .or_else(|| (routes.len() == 1).then(|| routes[0].clone()));
    }
    let listen = args
        .listen
        .clone()
        .or_else(|| settings.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let open = settings.clients.is_empty();
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host(listen.as_str())
        .await
        .map_err(|e| {
            Failure::usage(format!(
                "cannot resolve the listening address {listen}: {e}"
            ))
        })?
        .collect();
    if open && addresses.iter().any(|a| !a.ip().is_loopback()) {
        return Err(Failure::usage(format!(
            "refusing to listen on {listen} with no clients configured: anyone could use the \
             upstream keys. Add [[server.clients]] (`imagegate keys new NAME` prints one) or \
             listen on loopback (127.0.0.1)"
        )));
    }
    let files = state_dir(config)
        .unwrap_or_else(std::env::temp_dir)
        .join("gateway-files");
    let gateway = Gateway::new(router, settings.clone(), files)
        .map_err(|e| Failure::usage(format!("invalid configuration: {e}")))?;
    let listener = tokio::net::TcpListener::bind(listen.as_str())
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
    eprintln!(
        "imagegate serve: routes {}; models {}; default route {}",
        routes.join(", "),
        gateway.model_names().join(", "),
        settings.default_route.as_deref().unwrap_or("none"),
    );
    if gateway.accepts_any_key() {
        eprintln!(
            "imagegate serve: no clients configured: any key is accepted (loopback only); \
             `imagegate keys new NAME` makes one"
        );
    }
    gateway
        .serve(listener, stop)
        .await
        .map_err(|e| Failure::io(format!("the gateway stopped: {e}")))
}

/// One router over every route the gateway serves, and the routes' names.
///
/// Configured routes keep their names and target order; with none, each configured provider
/// is a route of its own name; with no provider either, the built-in mock is the route `mock`,
/// so the gateway works with no key at all.
fn assemble(config: &Config, concurrency: usize) -> Result<(Router, Vec<String>), Failure> {
    let mut routes: BTreeMap<String, Vec<String>> = config
        .routes
        .iter()
        .map(|(name, route)| (name.clone(), route.targets.clone()))
        .collect();
    if routes.is_empty() {
        routes = config
            .providers
            .keys()
            .map(|name| (name.clone(), vec![name.clone()]))
            .collect();
    }
    if routes.is_empty() {
        routes.insert("mock".to_owned(), vec!["mock".to_owned()]);
    }
    let mut builder = Router::builder(Arc::new(SystemClock))
        .prices(config.price_table())
        .concurrency(concurrency);
    let mut built: Vec<String> = Vec::new();
    for (route, targets) in &routes {
        for entry in targets {
            if built.contains(entry) {
                continue;
            }
            builder = builder.target(crate::routes::route_target(route, entry, config)?);
            built.push(entry.clone());
        }
    }
    for (route, targets) in &routes {
        builder = builder.route(route.clone(), targets.clone());
    }
    let (builder, _) = crate::routes::with_shared_store(builder, config)?;
    let router = builder
        .build()
        .map_err(|e| Failure::usage(format!("the gateway's routes: {}", e.message())))?;
    Ok((router, routes.into_keys().collect()))
}

//! `/emulator/*`: what the emulator has seen, for tests and people. These paths start with a
//! segment neither service uses, so they never collide with a provider path.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use imagegate_core::quota::Limits;
use imagegate_mock::sim::{PoolCounters, Window};
use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

use crate::book::{LogEntry, Place};
use crate::emulator::Shared;
use crate::gemini::query_pairs;
use crate::http_util::{self, PLAIN_JSON};

/// A pool's configured limits (`null`: no limit; 0: no entitlement).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LimitsView {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Requests per day.
    pub rpd: Option<u64>,
    /// Tokens per minute.
    pub tpm: Option<u64>,
    /// Images per minute.
    pub ipm: Option<u64>,
}

impl From<Limits> for LimitsView {
    fn from(l: Limits) -> Self {
        LimitsView {
            rpm: l.rpm,
            rpd: l.rpd,
            tpm: l.tpm,
            ipm: l.ipm,
        }
    }
}

/// What counts against each dimension now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct InUseView {
    /// Requests in the current minute window.
    pub rpm: u64,
    /// Requests today (in the pool's day zone).
    pub rpd: u64,
    /// Tokens in the current minute window.
    pub tpm: u64,
    /// Images in the current minute window.
    pub ipm: u64,
}

/// Requests by how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Every request counted here.
    pub requests: u64,
    /// Admitted and answered with an image (200).
    pub admitted: u64,
    /// Refused because a quota was full (429).
    pub rate_limited: u64,
    /// Refused because the pool has a limit of 0 (Gemini 429, OpenRouter 402).
    pub unentitled: u64,
    /// Overloaded (503).
    pub overloaded: u64,
    /// Client errors (400, 401, 403, 404, 413): bad keys, bad bodies, unknown models.
    pub client_errors: u64,
}

impl Counters {
    fn add(&mut self, other: Counters) {
        self.requests += other.requests;
        self.admitted += other.admitted;
        self.rate_limited += other.rate_limited;
        self.unentitled += other.unentitled;
        self.overloaded += other.overloaded;
        self.client_errors += other.client_errors;
    }

    fn of(pool: PoolCounters, client_errors: u64) -> Self {
        Counters {
            requests: pool.requests + client_errors,
            admitted: pool.admitted,
            rate_limited: pool.rate_limited,
            unentitled: pool.unentitled,
            overloaded: pool.overloaded,
            client_errors,
        }
    }
}

/// One pool in the statistics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolStats {
    /// `gemini`, `openrouter`, `openai` or `vertex`.
    pub provider: &'static str,
    /// The project or account.
    pub project: String,
    /// The models that draw on it.
    pub models: Vec<String>,
    /// `sliding` or `fixed`.
    pub window: &'static str,
    /// The zone whose midnight ends its day.
    pub day_zone: String,
    /// The configured limits.
    pub limits: LimitsView,
    /// Current use.
    pub in_use: InUseView,
    /// What it has seen since the start or the last reset.
    pub counters: Counters,
}

/// `GET /emulator/stats`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// The emulator's clock.
    pub now: Timestamp,
    /// Every pool, in configuration order.
    pub pools: Vec<PoolStats>,
    /// Requests that reached no pool: a missing or unknown key, an unknown model, a body
    /// refused before its model was known.
    pub unattributed: Counters,
    /// Everything.
    pub totals: Counters,
    /// The Batch API: jobs, requests submitted, duplicate submissions (see docs/emulate.md).
    pub batch: crate::BatchCounters,
    /// How many times each injected fault struck (docs/emulate.md, "Faults"); empty, and
    /// left out of the JSON, when none did.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub faults: std::collections::BTreeMap<String, u64>,
}

/// `GET /emulator/log?since=N`: the entries numbered above `N`, and the last number so far
/// (pass it as the next `since`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogPage {
    /// Entries, oldest first (at most the last 10 000 are kept).
    pub entries: Vec<LogEntry>,
    /// The number of the latest entry, 0 before any.
    pub last: u64,
}

pub(crate) fn stats_of(shared: &Shared) -> Stats {
    let now = shared.clock.now();
    let (client_errors, unattributed_requests) =
        shared.with_book(|b| (b.client_errors.clone(), b.unattributed_requests));
    let mut pools = Vec::new();
    let mut totals = Counters::default();
    for (p, project) in shared.projects.iter().enumerate() {
        for (i, snapshot) in project.upstream.snapshot().into_iter().enumerate() {
            let errors = client_errors
                .get(&Place::Pool {
                    project: p,
                    pool: i,
                })
                .copied()
                .unwrap_or(0);
            let counters = Counters::of(snapshot.counters, errors);
            totals.add(counters);
            pools.push(PoolStats {
                provider: project.kind.as_str(),
                project: project.name.clone(),
                models: snapshot.pool.models.clone(),
                window: match snapshot.pool.window {
                    Window::Sliding => "sliding",
                    Window::Fixed => "fixed",
                },
                day_zone: snapshot
                    .pool
                    .day_zone
                    .iana_name()
                    .unwrap_or("UTC")
                    .to_owned(),
                limits: snapshot.pool.limits.into(),
                in_use: InUseView {
                    rpm: snapshot.in_use.requests_this_minute,
                    rpd: snapshot.in_use.requests_today,
                    tpm: snapshot.in_use.tokens_this_minute,
                    ipm: snapshot.in_use.images_this_minute,
                },
                counters,
            });
        }
    }
    let unattributed = Counters {
        requests: unattributed_requests,
        client_errors: client_errors
            .get(&Place::Unattributed)
            .copied()
            .unwrap_or(0),
        ..Counters::default()
    };
    totals.add(unattributed);
    Stats {
        now,
        pools,
        unattributed,
        totals,
        batch: shared.batch.counters(),
        faults: shared.faults.counts(),
    }
}

fn ok_json(value: &impl Serialize) -> Response {
    match serde_json::to_value(value) {
        Ok(value) => http_util::json(StatusCode::OK, PLAIN_JSON, &value, true),
        Err(e) => http_util::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            PLAIN_JSON,
            &json!({"error": format!("cannot encode: {e}")}),
            true,
        ),
    }
}

/// `GET /emulator/stats`.
pub(crate) async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    ok_json(&stats_of(&shared))
}

/// `GET /emulator/log?since=N`.
pub(crate) async fn log(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let since = query_pairs(query.as_deref())
        .into_iter()
        .find(|(k, _)| k == "since")
        .map(|(_, v)| v);
    let since = match since.as_deref().map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => {
            return http_util::json(
                StatusCode::BAD_REQUEST,
                PLAIN_JSON,
                &json!({"error": format!("`since` must be a whole number (a log entry's `seq`), found {:?}", since.unwrap_or_default())}),
                true,
            );
        }
    };
    let (entries, last) = shared.with_book(|b| b.since(since));
    ok_json(&LogPage { entries, last })
}

/// `POST /emulator/reset`.
pub(crate) async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.reset();
    ok_json(&json!({"reset": true}))
}

/// Anything else: a 404 that says what is served.
pub(crate) async fn not_found(uri: http::Uri) -> Response {
    http_util::json(
        StatusCode::NOT_FOUND,
        PLAIN_JSON,
        &json!({"error": {
            "code": 404,
            "message": format!("imagegate emulate serves no `{}`: see docs/emulate.md for the endpoints", uri.path()),
            "status": "NOT_FOUND",
        }}),
        true,
    )
}

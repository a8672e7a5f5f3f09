//! What the gateway tells operators: one structured log line per request, Prometheus metrics
//! (from the router's events and each request's outcome), and the last events for
//! `/status.json`. The metrics recorder is the gateway's own (not a process-global one), so
//! several gateways, as in tests, never mix their numbers.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use imagegate_router::{Event, ThrottleReason};
use jiff::Timestamp;
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use serde_json::{Value, json};

use crate::failure::{Dialect, FailureKind};

/// How many events `/status.json` keeps.
pub(crate) const EVENTS_KEPT: usize = 100;

/// How many minutes of request counts `/status.json` keeps (the status page's chart: an hour).
pub(crate) const MINUTES_KEPT: usize = 60;

/// What happened in one minute (UTC, counted from the epoch), for the status page's chart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Minute {
    minute: i64,
    /// API requests answered (not the page, `/status.json` or `/metrics`).
    requests: u64,
    /// Of those, answered 429 by the gateway.
    rate_limited: u64,
    /// 429s the upstreams answered the router.
    upstream_429: u64,
}

/// Latency buckets, in seconds: a cache hit is milliseconds, an image tens of seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

/// What one request did, filled in by its handler and read once the answer is ready.
#[derive(Clone, Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) client: Option<String>,
    pub(crate) dialect: Option<Dialect>,
    pub(crate) route: Option<String>,
    pub(crate) target: Option<String>,
    pub(crate) kind: Option<FailureKind>,
    pub(crate) wait: Option<Duration>,
    pub(crate) cost_usd: Option<f64>,
}

/// The recorder, its renderer and the recent events.
pub(crate) struct Observe {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    events: Mutex<VecDeque<Value>>,
    minutes: Mutex<VecDeque<Minute>>,
    /// Each request's last failed target, so that its next attempt elsewhere is a fallback.
    failed: Mutex<HashMap<u64, String>>,
}

/// How many requests' last failed targets are remembered (a bound, not a tuning knob: a
/// request's fallback follows its failure at once).
const FAILED_KEPT: usize = 4096;

impl std::fmt::Debug for Observe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observe").finish_non_exhaustive()
    }
}

impl Observe {
    pub(crate) fn new() -> Observe {
        let builder = PrometheusBuilder::new();
        let builder = builder
            .set_buckets_for_metric(Matcher::Suffix("seconds".to_owned()), &BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        Observe {
            recorder,
            handle,
            events: Mutex::new(VecDeque::with_capacity(EVENTS_KEPT)),
            minutes: Mutex::new(VecDeque::with_capacity(MINUTES_KEPT + 1)),
            failed: Mutex::new(HashMap::new()),
        }
    }

    fn with<F: FnOnce()>(&self, f: F) {
        metrics::with_local_recorder(&self.recorder, f);
    }

    /// Counts and times one answered request.
    pub(crate) fn request(&self, outcome: &Outcome, status: u16, latency: Duration) {
        let client = outcome.client.clone().unwrap_or_else(|| "-".to_owned());
        let route = outcome.route.clone().unwrap_or_else(|| "-".to_owned());
        let dialect = outcome.dialect.map_or("-", Dialect::as_str);
        self.with(|| {
            metrics::counter!("imagegate_gateway_requests_total",
                "client" => client, "route" => route, "dialect" => dialect, "status" => status.to_string())
            .increment(1);
            metrics::histogram!("imagegate_gateway_request_duration_seconds", "dialect" => dialect)
                .record(latency.as_secs_f64());
            if let Some(wait) = outcome.wait {
                metrics::histogram!("imagegate_gateway_admission_wait_seconds").record(wait.as_secs_f64());
            }
        });
    }

    /// The number of requests the gateway holds (set at each scrape, not per request: the
    /// semaphore is the truth, and the hot path stays free of it).
    pub(crate) fn queue_depth(&self, depth: usize) {
        self.with(|| metrics::gauge!("imagegate_gateway_queue_depth").set(depth as f64));
    }

    /// A pool's use and limit on one dimension, refreshed at each scrape.
    pub(crate) fn pool(&self, pool: &str, dimension: &str, used: u64, limit: Option<u64>) {
        self.with(|| {
            metrics::gauge!("imagegate_pool_used", "pool" => pool.to_owned(), "dimension" => dimension.to_owned())
                .set(used as f64);
            if let Some(limit) = limit {
                metrics::gauge!("imagegate_pool_limit", "pool" => pool.to_owned(), "dimension" => dimension.to_owned())
                    .set(limit as f64);
            }
        });
    }

    /// One router event: metrics, and the ring `/status.json` shows.
    pub(crate) fn event(&self, event: &Event, now: Timestamp) {
        let summary = match event {
            Event::AttemptStarted {
                request, target, ..
            } => {
                let from = self
                    .failed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(request);
                match from {
                    Some(from) if &from != target => {
                        json!({"event": "fallback", "from": from, "to": target})
                    }
                    _ => return,
                }
            }
            Event::AttemptFinished {
                request,
                target,
                outcome,
                elapsed,
                cost_usd,
            } => {
                {
                    let mut failed = self
                        .failed
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if outcome.is_some() {
                        if failed.len() >= FAILED_KEPT {
                            failed.clear();
                        }
                        failed.insert(*request, target.clone());
                    } else {
                        failed.remove(request);
                    }
                }
                let outcome = outcome.map_or("success", |k| k.as_str());
                self.with(|| {
                    metrics::counter!("imagegate_upstream_calls_total", "target" => target.clone(), "outcome" => outcome)
                        .increment(1);
                    metrics::counter!("imagegate_spend_usd_total", "target" => target.clone())
                        .increment((cost_usd * 1_000_000.0).round().max(0.0) as u64);
                });
                json!({"event": "attempt_finished", "target": target, "outcome": outcome,
                       "elapsed_ms": elapsed.as_millis() as u64, "cost_usd": cost_usd})
            }
            Event::RateLimited {
                target,
                provider,
                project,
                model,
                kind,
                retry_after,
                quota,
                ..
            } => {
                let pool = format!("{provider}/{}/{model}", project.as_deref().unwrap_or("-"));
                let dimension = quota.dimension.map_or("unknown", |d| d.as_str());
                self.tally(now, |m| m.upstream_429 += 1);
                self.with(|| {
                    metrics::counter!("imagegate_upstream_429_total", "pool" => pool.clone(), "dimension" => dimension)
                        .increment(1);
                });
                json!({"event": "rate_limited", "target": target, "pool": pool, "kind": kind.as_str(),
                       "dimension": dimension, "retry_after_ms": retry_after.map(|d| d.as_millis() as u64),
                       "quota_id": quota.quota_id, "quota_value": quota.quota_value,
                       "reset_at": quota.reset_at})
            }
            Event::PoolParked { pool, until } => {
                json!({"event": "pool_parked", "pool": pool.to_string(), "until": until})
            }
            Event::TargetDisabled {
                target,
                kind,
                advice,
            } => {
                json!({"event": "target_disabled", "target": target, "kind": kind.as_str(), "advice": advice})
            }
            Event::BudgetReached {
                target,
                limit_usd,
                spent_usd,
                ..
            } => {
                json!({"event": "budget_reached", "target": target, "limit_usd": limit_usd, "spent_usd": spent_usd})
            }
            Event::DailyQuotaWarning {
                pool,
                used,
                limit,
                percent,
            } => {
                json!({"event": "daily_quota_warning", "pool": pool.to_string(), "used": used, "limit": limit, "percent": percent})
            }
            Event::Throttled {
                wait,
                until,
                reason,
                ..
            } => {
                let (why, pool, dimension, target) = match reason {
                    ThrottleReason::QuotaWindow { dimension, pool } => (
                        "quota_window",
                        pool.as_ref().map(ToString::to_string),
                        dimension.map(|d| d.as_str()),
                        None,
                    ),
                    ThrottleReason::DailyQuota { pool } => (
                        "daily_quota",
                        pool.as_ref().map(ToString::to_string),
                        None,
                        None,
                    ),
                    ThrottleReason::Backoff { target, .. } => {
                        ("backoff", None, None, Some(target.clone()))
                    }
                    ThrottleReason::Concurrency => ("concurrency", None, None, None),
                    ThrottleReason::PreferredTarget { target } => {
                        ("preferred_target", None, None, Some(target.clone()))
                    }
                    _ => ("other", None, None, None),
                };
                json!({"event": "throttled", "wait_ms": wait.as_millis() as u64, "until": until,
                       "reason": why, "pool": pool, "dimension": dimension, "target": target})
            }
            _ => return,
        };
        self.push_event(summary, now);
    }

    /// A request the gateway itself answered 429 (no capacity within its maximum wait, the
    /// queue full, a budget): the event the status page shows as "why is it waiting".
    pub(crate) fn refused(&self, outcome: &Outcome, now: Timestamp) {
        let summary = json!({"event": "answered_429",
            "client": outcome.client, "route": outcome.route, "target": outcome.target,
            "kind": outcome.kind.map(FailureKind::as_str),
            "dialect": outcome.dialect.map(Dialect::as_str)});
        self.push_event(summary, now);
    }

    fn push_event(&self, summary: Value, now: Timestamp) {
        let mut summary = summary;
        summary["at"] = json!(now);
        let mut events = self
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if events.len() == EVENTS_KEPT {
            events.pop_front();
        }
        events.push_back(summary);
    }

    /// Counts one answered API request in its minute (and as a 429 when it was one).
    pub(crate) fn answered(&self, status: u16, now: Timestamp) {
        self.tally(now, |m| {
            m.requests += 1;
            if status == 429 {
                m.rate_limited += 1;
            }
        });
    }

    fn tally(&self, now: Timestamp, f: impl FnOnce(&mut Minute)) {
        let minute = now.as_second().div_euclid(60);
        let mut minutes = self
            .minutes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if minutes.back().is_none_or(|m| m.minute != minute) {
            minutes.push_back(Minute {
                minute,
                ..Minute::default()
            });
        }
        while minutes.len() > MINUTES_KEPT {
            minutes.pop_front();
        }
        if let Some(last) = minutes.back_mut() {
            f(last);
        }
    }

    /// The last hour, one entry per minute ending with the one holding `now`, oldest first,
    /// minutes with nothing as zeros: `{"at", "requests", "rate_limited", "upstream_429"}`.
    pub(crate) fn history(&self, now: Timestamp) -> Vec<Value> {
        let current = now.as_second().div_euclid(60);
        let minutes = self
            .minutes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (current - MINUTES_KEPT as i64 + 1..=current)
            .map(|minute| {
                let m = minutes
                    .iter()
                    .find(|m| m.minute == minute)
                    .copied()
                    .unwrap_or_default();
                json!({
                    "at": Timestamp::from_second(minute * 60).ok(),
                    "requests": m.requests,
                    "rate_limited": m.rate_limited,
                    "upstream_429": m.upstream_429,
                })
            })
            .collect()
    }

    /// The recent events, oldest first.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// Folds the histograms' raw samples into their buckets. The exporter keeps samples
    /// until then, so without this a gateway nobody scrapes would grow without bound.
    pub(crate) fn upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// The Prometheus text.
    pub(crate) fn render(&self) -> String {
        self.handle.render()
    }
}

/// The one log line of a request. Never a key, a prompt or a body: the client's name stands
/// for the key.
pub(crate) fn log_line(
    id: &str,
    method: &str,
    path: &str,
    status: u16,
    latency: Duration,
    o: &Outcome,
) {
    tracing::info!(
        target: "imagegate::gateway",
        request_id = id,
        method,
        path,
        client = o.client.as_deref().unwrap_or("-"),
        dialect = o.dialect.map_or("-", Dialect::as_str),
        route = o.route.as_deref().unwrap_or("-"),
        target = o.target.as_deref().unwrap_or("-"),
        status,
        kind = o.kind.map_or("ok", FailureKind::as_str),
        wait_ms = o.wait.map_or(0, |w| w.as_millis() as u64),
        latency_ms = latency.as_millis() as u64,
        cost_usd = o.cost_usd.unwrap_or(0.0),
        "request"
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use imagegate_core::ErrorKind;
    use imagegate_core::quota::PoolId;

    use super::*;

    fn started(request: u64, target: &str) -> Event {
        Event::AttemptStarted {
            request,
            target: target.to_owned(),
            images: 1,
            waited: Duration::ZERO,
        }
    }

    fn finished(request: u64, target: &str, outcome: Option<ErrorKind>) -> Event {
        Event::AttemptFinished {
            request,
            target: target.to_owned(),
            outcome,
            elapsed: Duration::from_millis(5),
            cost_usd: 0.0,
        }
    }

    #[test]
    fn a_failed_attempt_then_another_target_is_a_fallback_and_a_retry_is_not() {
        let observe = Observe::new();
        let now: Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
        for event in [
            started(1, "a"),
            finished(1, "a", Some(ErrorKind::RateLimited)),
            started(1, "b"),
            finished(1, "b", None),
            started(2, "a"),
            finished(2, "a", Some(ErrorKind::Unavailable)),
            started(2, "a"),
        ] {
            observe.event(&event, now);
        }
        let fallbacks: Vec<Value> = observe
            .events()
            .into_iter()
            .filter(|e| e["event"] == "fallback")
            .collect();
        assert_eq!(
            fallbacks,
            [json!({"event": "fallback", "from": "a", "to": "b", "at": now})]
        );
    }

    #[test]
    fn a_throttle_says_why_and_on_which_pool() {
        let observe = Observe::new();
        let now: Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
        let until: Timestamp = "2026-01-15T12:00:40Z".parse().unwrap();
        observe.event(
            &Event::Throttled {
                request: 1,
                wait: Duration::from_secs(40),
                until,
                reason: ThrottleReason::QuotaWindow {
                    dimension: Some(imagegate_core::quota::Dimension::Rpm),
                    pool: Some(PoolId::new("gemini", "p", "m")),
                },
            },
            now,
        );
        let event = observe.events().pop().unwrap();
        assert_eq!(event["reason"], "quota_window");
        assert_eq!(event["dimension"], "rpm");
        assert_eq!(event["wait_ms"], 40_000);
        assert_eq!(event["until"], json!(until));
        assert_eq!(event["pool"], PoolId::new("gemini", "p", "m").to_string());
    }
}

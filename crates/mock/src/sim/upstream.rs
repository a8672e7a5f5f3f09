//! [`SimulatedUpstream`]: one provider x project, enforcing its true pools and answering the
//! way the real service does.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, StatusCode};
use imagegate_core::{
    Capabilities, Clock, Error, GenerateRequest, GenerateResponse, Image, ImageProvider, ImageSize,
    Result,
};
use jiff::Timestamp;

use imagegate_core::Dimension;

use super::pool::{InUse, PoolState, TruePool, Usage, available_at};
use super::wire::{self, UpstreamKind, WireAnswer};
use crate::render::{Fingerprint, render_png};
use crate::response::{self, Call, Identity, OUTPUT_TOKENS_PER_IMAGE};

/// Turns one wire answer into the provider's [`Error`]: the real crate's `parse_error`
/// (`imagegate_gemini::parse_error`, `imagegate_openrouter::parse_error`), injected because
/// this crate may not depend on provider crates.
pub type Classifier = Arc<dyn Fn(StatusCode, &HeaderMap, &[u8], Timestamp) -> Error + Send + Sync>;

/// A uniform latency range (a single value when `min == max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latency {
    /// The shortest latency.
    pub min: Duration,
    /// The longest latency.
    pub max: Duration,
}

impl Latency {
    /// Always `value`.
    pub const fn fixed(value: Duration) -> Self {
        Latency {
            min: value,
            max: value,
        }
    }

    pub(super) fn draw(self, rng: &mut fastrand::Rng) -> Duration {
        let (lo, hi) = (
            self.min.as_millis(),
            self.max.as_millis().max(self.min.as_millis()),
        );
        let lo = u64::try_from(lo).unwrap_or(u64::MAX);
        let hi = u64::try_from(hi).unwrap_or(u64::MAX);
        Duration::from_millis(rng.u64(lo..=hi))
    }
}

/// Everything one simulated upstream (one provider kind x one project) is.
#[derive(Clone, Debug)]
pub struct UpstreamConfig {
    /// Whose wire shapes it speaks.
    pub kind: UpstreamKind,
    /// The project (Gemini) or account (OpenRouter).
    pub project: String,
    /// The true pools; each model belongs to exactly one.
    pub pools: Vec<TruePool>,
    /// How long an image takes.
    pub latency: Latency,
    /// How long a rejection (429, 402, 404, 503) takes to arrive.
    pub reject_latency: Duration,
    /// The share of admissible requests answered with an overload (503), in `0.0..=1.0`.
    pub overload_rate: f64,
    /// The seed of this upstream's latency and overload draws.
    pub seed: u64,
}

/// How one call ended, as the upstream saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// Admitted, counted against the quota and billed; the image follows after the latency.
    Served,
    /// 429: a quota was full. Nothing counted or billed.
    RateLimited,
    /// No entitlement (Gemini's limit-0 429, OpenRouter's 402). Nothing counted or billed.
    Unentitled,
    /// 503: overloaded. Nothing counted or billed.
    Overloaded,
    /// 404: the project serves no such model.
    NotFound,
}

/// One call, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// When it arrived.
    pub at: Timestamp,
    /// The model asked for.
    pub model: String,
    /// Images asked for (and billed when served).
    pub images: u32,
    /// How it ended.
    pub outcome: CallOutcome,
    /// The HTTP status it was answered with.
    pub status: u16,
}

/// When a request could be admitted, from the upstream's true state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Capacity {
    /// Now.
    Now,
    /// Not before this instant.
    At(Timestamp),
    /// Never (no entitlement, unknown model, or larger than a limit).
    Never,
}

/// How many calls a pool has seen, by how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolCounters {
    /// Every call that reached the pool's decision.
    pub requests: u64,
    /// Admitted and counted against the pool.
    pub admitted: u64,
    /// Refused with a 429 because a quota was full.
    pub rate_limited: u64,
    /// Refused because the pool has a limit of 0 (Gemini's limit-0 429, OpenRouter's 402).
    pub unentitled: u64,
    /// Refused with a 503 overload.
    pub overloaded: u64,
}

impl PoolCounters {
    fn count(&mut self, outcome: CallOutcome) {
        self.requests += 1;
        match outcome {
            CallOutcome::Served => self.admitted += 1,
            CallOutcome::RateLimited => self.rate_limited += 1,
            CallOutcome::Unentitled => self.unentitled += 1,
            CallOutcome::Overloaded => self.overloaded += 1,
            CallOutcome::NotFound => {}
        }
    }
}

/// One pool of an upstream at one instant: its configuration, what counts against it now, and
/// how many calls it has seen. Taken under the same lock as admission, so the numbers of one
/// snapshot always agree with each other.
#[derive(Clone, Debug)]
pub struct PoolSnapshot {
    /// The pool as configured.
    pub pool: TruePool,
    /// What counts against each dimension now.
    pub in_use: InUse,
    /// The calls it has seen since the start or the last [`SimulatedUpstream::reset`].
    pub counters: PoolCounters,
}

/// What the upstream decided about one call, at its arrival.
#[derive(Clone, Debug)]
pub enum Decision {
    /// Admitted and counted against its pool: the answer is an image after `latency`.
    Serve {
        /// How long the image takes (drawn from the configured range).
        latency: Duration,
    },
    /// Refused, counting nothing: the answer is `answer`, after the configured reject latency.
    Reject {
        /// Why.
        outcome: CallOutcome,
        /// The full dimensions that refused it, in [`Dimension::ALL`] order (empty for an
        /// overload or an unknown model).
        refused_by: Vec<Dimension>,
        /// The service's wire answer: status, headers and body exactly as it sends them.
        answer: WireAnswer,
    },
}

#[derive(Debug)]
struct State {
    pools: Vec<PoolState>,
    counters: Vec<PoolCounters>,
    rng: fastrand::Rng,
    calls: Vec<CallRecord>,
    /// Calls decided so far (also when `calls` is not kept): numbers the request ids.
    decided: u64,
}

impl State {
    fn fresh(config: &UpstreamConfig) -> Self {
        State {
            pools: config.pools.iter().cloned().map(PoolState::new).collect(),
            counters: vec![PoolCounters::default(); config.pools.len()],
            rng: fastrand::Rng::with_seed(config.seed),
            calls: Vec::new(),
            decided: 0,
        }
    }
}

/// A provider x project that enforces the true pools of a scenario.
///
/// Every call is decided when it arrives: a request over any limit gets the service's real 429
/// (or, for a pool with a limit of 0, its no-entitlement answer) rendered on the wire and run
/// through the injected [`Classifier`], after `reject_latency`; an admissible request is
/// answered 503 with probability `overload_rate`; otherwise it is counted against its pool,
/// billed, and answered with a tiny PNG after a latency drawn from the range. Rejected requests
/// do not consume quota. All waiting happens on the injected [`Clock`].
pub struct SimulatedUpstream {
    config: UpstreamConfig,
    clock: Arc<dyn Clock>,
    classifier: Classifier,
    state: Mutex<State>,
    image: OnceLock<Image>,
    keep_calls: bool,
}

impl std::fmt::Debug for SimulatedUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatedUpstream")
            .field("kind", &self.config.kind)
            .field("project", &self.config.project)
            .field("pools", &self.config.pools.len())
            .finish_non_exhaustive()
    }
}

/// What `request` counts for against a pool: its images, and its tokens (the prompt at four
/// characters a token, plus each image's output tokens).
pub fn usage_of(request: &GenerateRequest) -> Usage {
    let usage = response::usage(request, request.count as usize, OUTPUT_TOKENS_PER_IMAGE);
    Usage {
        images: u64::from(request.count),
        tokens: usage.total(),
    }
}

impl SimulatedUpstream {
    /// An upstream for `config`, waiting on `clock`, classifying its answers with `classifier`.
    pub fn new(config: UpstreamConfig, clock: Arc<dyn Clock>, classifier: Classifier) -> Self {
        let state = State::fresh(&config);
        SimulatedUpstream {
            config,
            clock,
            classifier,
            state: Mutex::new(state),
            image: OnceLock::new(),
            keep_calls: true,
        }
    }

    /// Stops recording every call in [`calls`](Self::calls): a long-running server (the
    /// emulator) keeps its own bounded log instead of a list that grows with every request.
    #[must_use]
    pub fn without_call_records(mut self) -> Self {
        self.keep_calls = false;
        self
    }

    /// Every pool at this instant, in configuration order.
    pub fn snapshot(&self) -> Vec<PoolSnapshot> {
        let now = self.clock.now();
        let mut state = self.lock();
        let state = &mut *state;
        state
            .pools
            .iter_mut()
            .zip(&state.counters)
            .map(|(pool, counters)| PoolSnapshot {
                pool: pool.pool.clone(),
                in_use: pool.in_use(now),
                counters: *counters,
            })
            .collect()
    }

    /// Forgets everything admitted and counted: empty windows, a fresh day, zero counters, no
    /// recorded calls, and the latency and overload draws started again from the seed.
    pub fn reset(&self) {
        *self.lock() = State::fresh(&self.config);
    }

    /// The index (in configuration order) of the pool `model` draws on.
    pub fn pool_of(&self, model: &str) -> Option<usize> {
        self.pool_index(model)
    }

    /// Decides a call for `model` now, atomically with every other call to this upstream:
    /// checks the model's pool, counts the call against it when admitted, draws the overload
    /// and the latency, and records it. The caller answers with what it returns (the image
    /// after `latency`, or the wire answer after the reject latency); nothing is slept here.
    pub fn decide(&self, model: &str, request: &GenerateRequest) -> Decision {
        self.decide_at(model, request, self.clock.now())
    }

    /// The configuration.
    pub fn config(&self) -> &UpstreamConfig {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a few field writes with no panic in between.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pool_index(&self, model: &str) -> Option<usize> {
        self.config
            .pools
            .iter()
            .position(|p| p.models.iter().any(|m| m == model))
    }

    /// Whether this upstream serves `model`.
    pub fn serves(&self, model: &str) -> bool {
        self.pool_index(model).is_some()
    }

    /// When `request` for `model` would be admitted, by the true state (the oracle's view).
    pub fn capacity(&self, model: &str, request: &GenerateRequest) -> Capacity {
        let Some(index) = self.pool_index(model) else {
            return Capacity::Never;
        };
        let now = self.clock.now();
        let mut state = self.lock();
        let violations = state.pools[index].check(now, usage_of(request));
        if violations.is_empty() {
            Capacity::Now
        } else {
            available_at(&violations).map_or(Capacity::Never, Capacity::At)
        }
    }

    /// Requests `model`'s pool has admitted today (in the pool's zone).
    pub fn used_today(&self, model: &str) -> u64 {
        let now = self.clock.now();
        self.pool_index(model)
            .map(|i| self.lock().pools[i].used_today(now))
            .unwrap_or(0)
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.clone()
    }

    fn identity(&self) -> Identity<'_> {
        Identity {
            provider: self.config.kind.as_str(),
            project: Some(&self.config.project),
        }
    }

    fn capabilities_all() -> Capabilities {
        // Gemini image models return one image per call; OpenRouter's image models too.
        let mut caps = Capabilities::new(1);
        caps.editing = true;
        caps.sizes = ImageSize::ALL.to_vec();
        caps
    }

    /// Decides the call at its arrival and records it.
    fn decide_at(&self, model: &str, request: &GenerateRequest, now: Timestamp) -> Decision {
        let kind = self.config.kind;
        let keep_calls = self.keep_calls;
        let mut state = self.lock();
        let call_number = state.decided;
        state.decided += 1;
        let pool = self.pool_index(model);
        let record = |state: &mut State, outcome, status: u16| {
            if let Some(index) = pool
                && let Some(counters) = state.counters.get_mut(index)
            {
                counters.count(outcome);
            }
            if keep_calls {
                state.calls.push(CallRecord {
                    at: now,
                    model: model.to_owned(),
                    images: request.count,
                    outcome,
                    status,
                });
            }
        };
        let Some(index) = pool else {
            record(&mut state, CallOutcome::NotFound, 404);
            return Decision::Reject {
                outcome: CallOutcome::NotFound,
                refused_by: Vec::new(),
                answer: wire::model_not_found(kind, model),
            };
        };
        let usage = usage_of(request);
        let violations = state.pools[index].check(now, usage);
        if !violations.is_empty() {
            let unentitled = self.config.pools[index].is_unentitled();
            let request_id = format!(
                "{:08x}-0000-4000-8000-{:012x}",
                self.config.seed & 0xffff_ffff,
                call_number
            );
            let answer =
                wire::quota_exceeded(kind, model, &violations, unentitled, now, &request_id);
            let outcome = if unentitled {
                CallOutcome::Unentitled
            } else {
                CallOutcome::RateLimited
            };
            record(&mut state, outcome, answer.status.as_u16());
            return Decision::Reject {
                outcome,
                refused_by: violations.iter().map(|v| v.dimension).collect(),
                answer,
            };
        }
        if self.config.overload_rate > 0.0 && state.rng.f64() < self.config.overload_rate {
            let answer = wire::overloaded(kind);
            record(&mut state, CallOutcome::Overloaded, answer.status.as_u16());
            return Decision::Reject {
                outcome: CallOutcome::Overloaded,
                refused_by: Vec::new(),
                answer,
            };
        }
        state.pools[index].admit(now, usage);
        let latency = self.config.latency.draw(&mut state.rng);
        record(&mut state, CallOutcome::Served, 200);
        Decision::Serve { latency }
    }

    fn tiny_image(&self) -> Result<Image> {
        if let Some(image) = self.image.get() {
            return Ok(image.clone());
        }
        // An 8x8 PNG: real bytes that sniff and decode, rendered once, so thousands of calls
        // cost nothing.
        let bytes = render_png(&Fingerprint::from_bytes([7; 32]), 8, 8)?;
        let image = Image::checked(bytes, "image/png")?;
        Ok(self.image.get_or_init(|| image).clone())
    }
}

#[async_trait]
impl ImageProvider for SimulatedUpstream {
    fn name(&self) -> &str {
        self.config.kind.as_str()
    }

    fn project(&self) -> Option<&str> {
        Some(&self.config.project)
    }

    fn default_model(&self) -> &str {
        self.config
            .pools
            .first()
            .and_then(|p| p.models.first())
            .map_or("unknown", String::as_str)
    }

    fn capabilities(&self, _model: Option<&str>) -> Capabilities {
        Self::capabilities_all()
    }

    async fn generate(&self, request: &GenerateRequest) -> Result<GenerateResponse> {
        let who = self.identity();
        response::check(who, &Self::capabilities_all(), request)?;
        let model = request
            .model
            .clone()
            .unwrap_or_else(|| self.default_model().to_owned());
        // Decided synchronously on the first poll: a caller that checked `capacity` and then
        // calls `generate` without awaiting in between cannot be overtaken.
        let started_at = self.clock.now();
        match self.decide_at(&model, request, started_at) {
            Decision::Reject { answer, .. } => {
                self.clock.sleep(self.config.reject_latency).await;
                let error = (self.classifier)(
                    answer.status,
                    &answer.headers,
                    &answer.body,
                    self.clock.now(),
                );
                Err(who.stamp(error))
            }
            Decision::Serve { latency } => {
                self.clock.sleep(latency).await;
                let image = self.tiny_image()?;
                let call = Call {
                    model: model.clone(),
                    started_at,
                    elapsed: latency,
                    request_id: format!(
                        "sim-{}-{}",
                        self.config.project,
                        started_at.as_millisecond()
                    ),
                    tokens_per_image: OUTPUT_TOKENS_PER_IMAGE,
                };
                Ok(response::respond(who, call, request, vec![image]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imagegate_core::quota::PACIFIC;
    use imagegate_core::{ErrorKind, Limits, ManualClock};

    /// A stand-in classifier that only reads the status: the real ones are exercised in
    /// imagegate-sim, which may depend on the provider crates.
    fn by_status() -> Classifier {
        Arc::new(|status, _, _, _| {
            let kind = match status.as_u16() {
                429 => ErrorKind::RateLimited,
                503 => ErrorKind::Unavailable,
                _ => ErrorKind::Unexpected,
            };
            Error::new(kind, status.to_string()).with_http_status(status.as_u16())
        })
    }

    fn upstream(limits: Limits, overload_rate: f64, clock: Arc<ManualClock>) -> SimulatedUpstream {
        SimulatedUpstream::new(
            UpstreamConfig {
                kind: UpstreamKind::Gemini,
                project: "proj-a".into(),
                pools: vec![TruePool::new(
                    vec!["a".into(), "b".into()],
                    limits,
                    PACIFIC.clone(),
                )],
                latency: Latency {
                    min: Duration::from_secs(8),
                    max: Duration::from_secs(30),
                },
                reject_latency: Duration::from_millis(500),
                overload_rate,
                seed: 7,
            },
            clock,
            by_status(),
        )
    }

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new("2026-03-07T10:00:00Z".parse().unwrap()))
    }

    #[tokio::test]
    async fn rejected_requests_do_not_consume_quota_and_models_share_the_pool() {
        let clock = clock();
        let limits = Limits {
            rpm: Some(2),
            rpd: Some(3),
            ..Limits::NONE
        };
        let up = upstream(limits, 0.0, clock.clone());
        let a = GenerateRequest::new("x").with_model("a");
        let b = GenerateRequest::new("x").with_model("b");
        up.generate(&a).await.unwrap();
        up.generate(&b).await.unwrap(); // the same pool: rpm is now full
        for _ in 0..5 {
            let e = up.generate(&a).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::RateLimited);
            assert_eq!(e.project(), Some("proj-a"));
        }
        assert_eq!(up.used_today("a"), 2, "five 429s counted nothing");
        clock.advance(Duration::from_secs(120));
        up.generate(&b).await.unwrap();
        assert_eq!(up.used_today("b"), 3);
        let outcomes: Vec<_> = up.calls().iter().map(|c| c.outcome).collect();
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == CallOutcome::Served)
                .count(),
            3
        );
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == CallOutcome::RateLimited)
                .count(),
            5
        );
        assert_eq!(
            up.capacity("a", &a),
            Capacity::At("2026-03-08T08:00:00Z".parse().unwrap())
        );
        assert_eq!(up.capacity("nope", &a), Capacity::Never);
    }

    #[tokio::test]
    async fn latency_and_overloads_are_seeded_and_overloads_count_nothing() {
        let run = || async {
            let clock = clock();
            let up = upstream(Limits::NONE, 0.3, clock.clone());
            let mut trace = Vec::new();
            for _ in 0..40 {
                let before = clock.now();
                let ok = up.generate(&GenerateRequest::new("x")).await.is_ok();
                trace.push((ok, clock.now().duration_since(before)));
            }
            (trace, up.used_today("a"))
        };
        let (first, used) = run().await;
        let (second, _) = run().await;
        assert_eq!(first, second);
        let served = first.iter().filter(|(ok, _)| *ok).count();
        assert_eq!(used, served as u64);
        assert!(
            (20..40).contains(&served),
            "{served} of 40 served at a 0.3 overload rate"
        );
        for (ok, took) in first {
            let secs = took.as_secs_f64();
            if ok {
                assert!((8.0..=30.0).contains(&secs), "{secs}");
            } else {
                assert_eq!(secs, 0.5);
            }
        }
    }

    #[tokio::test]
    async fn decide_gives_the_raw_wire_answer_and_snapshots_agree_with_it() {
        let clock = clock();
        let limits = Limits {
            rpm: Some(1),
            ..Limits::NONE
        };
        let up = upstream(limits, 0.0, clock.clone()).without_call_records();
        let request = GenerateRequest::new("x").with_model("a");
        assert!(
            matches!(up.decide("a", &request), Decision::Serve { latency } if latency >= Duration::from_secs(8))
        );
        let Decision::Reject {
            outcome,
            refused_by,
            answer,
        } = up.decide("b", &request)
        else {
            panic!("the pool of a and b is full");
        };
        assert_eq!(outcome, CallOutcome::RateLimited);
        assert_eq!(refused_by, [Dimension::Rpm]);
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
        assert!(matches!(
            up.decide("nope", &request),
            Decision::Reject {
                outcome: CallOutcome::NotFound,
                ..
            }
        ));
        let snapshot = up.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot[0].in_use.requests_this_minute, 1);
        assert_eq!(snapshot[0].in_use.requests_today, 1);
        assert_eq!(snapshot[0].in_use.images_this_minute, 1);
        assert_eq!(
            snapshot[0].counters,
            PoolCounters {
                requests: 2,
                admitted: 1,
                rate_limited: 1,
                ..PoolCounters::default()
            }
        );
        assert!(
            up.calls().is_empty(),
            "calls are not kept when asked not to"
        );
        clock.advance(Duration::from_secs(60));
        assert_eq!(up.snapshot()[0].in_use.requests_this_minute, 0);
        assert_eq!(up.snapshot()[0].in_use.requests_today, 1);
        up.reset();
        let after = &up.snapshot()[0];
        assert_eq!(
            (after.in_use, after.counters),
            (InUse::default(), PoolCounters::default())
        );
    }

    #[tokio::test]
    async fn success_is_a_real_tiny_png_with_who_served_it() {
        let up = upstream(Limits::NONE, 0.0, clock());
        let response = up
            .generate(&GenerateRequest::new("x").with_model("b"))
            .await
            .unwrap();
        assert_eq!(response.images[0].mime_type, "image/png");
        assert_eq!(response.images[0].width, Some(8));
        assert_eq!(response.served_by.model, "b");
        assert_eq!(response.served_by.project.as_deref(), Some("proj-a"));
        let two = GenerateRequest::new("x").with_count(2);
        assert_eq!(
            up.generate(&two).await.unwrap_err().kind(),
            ErrorKind::InvalidRequest
        );
        assert_eq!(
            up.calls().len(),
            1,
            "an invalid request never reaches the upstream"
        );
    }
}

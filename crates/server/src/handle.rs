//! The handlers: read the body within the limit, find the client, parse the dialect, send
//! through the router within the request's maximum wait, answer in the dialect.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use imagegate_core::{GenerateRequest, GenerateResponse};
use imagegate_router::{MaxWait, RequestOptions};
use serde_json::{Value, json};

use crate::app::Shared;
use crate::auth::{Client, authenticate};
use crate::deadline;
use crate::failure::{Dialect, Failure, FailureKind};
use crate::observe::Outcome;
use crate::openai::{Format, Item};
use crate::{chat, gemini, openai, query};

/// What a client that arrives while the gateway stops should wait before trying again.
const RESTART_RETRY: Duration = Duration::from_secs(5);

/// What a client should wait when the queue is full: about one request's turn.
const QUEUE_RETRY: Duration = Duration::from_secs(1);

type Body = Result<Bytes, BytesRejection>;

/// One request in progress: its dialect, what it did so far, and the shared state.
struct Call {
    shared: Arc<Shared>,
    dialect: Dialect,
    outcome: Outcome,
}

impl Call {
    fn new(shared: Arc<Shared>, dialect: Dialect) -> Call {
        Call {
            shared,
            dialect,
            outcome: Outcome {
                dialect: Some(dialect),
                ..Outcome::default()
            },
        }
    }

    /// The answer, with the outcome attached for the log line.
    fn finish(mut self, result: Result<Response, Failure>) -> Response {
        let mut response = match result {
            Ok(response) => response,
            Err(failure) => {
                self.outcome.kind = Some(failure.kind);
                failure.render(self.dialect, self.shared.clock.now())
            }
        };
        response.extensions_mut().insert(self.outcome);
        response
    }

    fn body(&self, body: Body) -> Result<Bytes, Failure> {
        body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Failure::new(
                    FailureKind::TooLarge,
                    format!("the request body is larger than this gateway's limit of {} bytes (server.max_body)", self.shared.config.max_body),
                )
            } else {
                Failure::invalid("body", format!("the request body could not be read: {}", rejection.body_text()))
            }
        })
    }

    fn auth(&mut self, headers: &HeaderMap, query: &[(String, String)]) -> Result<Client, Failure> {
        let client = authenticate(&self.shared.keys, headers, query)?;
        self.outcome.client = Some(client.name.clone());
        Ok(client)
    }

    /// Sends `request` on the route `model` maps to, for `client`, within the request's
    /// maximum wait.
    async fn run(
        &mut self,
        client: &Client,
        model: Option<&str>,
        mut request: GenerateRequest,
        headers: &HeaderMap,
    ) -> Result<GenerateResponse, Failure> {
        let shared = self.shared.clone();
        if shared.draining.is_cancelled() {
            return Err(Failure::new(
                FailureKind::ShuttingDown,
                "the gateway is shutting down; try again shortly",
            )
            .retry_after(RESTART_RETRY));
        }
        request
            .validate()
            .map_err(|e| Failure::invalid("prompt", e.message()))?;
        let route = shared
            .config
            .route_for(model, &shared.routes)
            .ok_or_else(|| {
                Failure::new(
                    FailureKind::NotFound,
                    format!(
                        "no route serves the model `{}`; this gateway serves: {}",
                        model.unwrap_or(""),
                        shared.config.model_names(&shared.routes).join(", ")
                    ),
                )
                .model(model)
            })?;
        self.outcome.route = Some(route.clone());
        if let Some(allowed) = &client.routes
            && !allowed.contains(&route)
        {
            return Err(Failure::new(
                FailureKind::Forbidden,
                format!(
                    "client `{}` may not use the route `{route}` that serves the model `{}`",
                    client.name,
                    model.unwrap_or("")
                ),
            ));
        }
        self.check_budget(client)?;
        let Ok(_permit) = shared.queue.clone().try_acquire_owned() else {
            let mut failure = Failure::new(
                FailureKind::QueueFull,
                format!(
                    "the gateway already holds {} requests (server.max_queue); try again shortly",
                    shared.config.max_queue
                ),
            )
            .retry_after(QUEUE_RETRY);
            failure.quota.quota_value = u64::try_from(shared.config.max_queue).ok();
            return Err(failure);
        };
        let wait = deadline::max_wait(headers, shared.config.max_wait)
            .map_err(|e| Failure::invalid(deadline::MAX_WAIT_HEADER, e.0))?;
        request.priority = client.priority;
        let options = RequestOptions::default().with_max_wait(MaxWait::UpTo(wait));
        let result = tokio::select! {
            result = shared.router.generate_with(&route, &request, options) => result,
            () = shared.expired.cancelled() => {
                return Err(Failure::new(FailureKind::ShuttingDown, "the gateway stopped before this request could be served; try again shortly").retry_after(RESTART_RETRY));
            }
        };
        match result {
            Ok(response) => {
                self.outcome.target = response
                    .attempts
                    .iter()
                    .rev()
                    .find(|a| a.outcome.is_none())
                    .map(|a| a.target.clone());
                self.outcome.wait = Some(response.attempts.iter().map(|a| a.waited).sum());
                self.outcome.cost_usd = response.cost_usd;
                self.add_spend(client, response.cost_usd.unwrap_or(0.0));
                Ok(response)
            }
            Err(error) => {
                let mut failure = Failure::from_router(&error).model(model);
                if matches!(
                    failure.kind,
                    FailureKind::RateLimited | FailureKind::QuotaExhausted
                ) {
                    self.fill_limit(&mut failure).await;
                }
                Err(failure)
            }
        }
    }

    /// A capacity failure without the limit: the limit of the pool that is full on its
    /// dimension, from the router's pools.
    async fn fill_limit(&self, failure: &mut Failure) {
        if failure.quota.quota_value.is_some() {
            return;
        }
        let Some(dimension) = failure.quota.dimension else {
            return;
        };
        let Ok(statuses) = self.shared.router.pool_statuses().await else {
            return;
        };
        failure.quota.quota_value = statuses
            .iter()
            .flat_map(|s| s.dimensions.iter())
            .find(|d| d.dimension == dimension && d.limit.is_some_and(|l| d.used >= l))
            .and_then(|d| d.limit);
    }

    fn today(&self) -> jiff::civil::Date {
        self.shared
            .clock
            .now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
    }

    fn check_budget(&self, client: &Client) -> Result<(), Failure> {
        let Some(budget) = client.budget_usd_per_day else {
            return Ok(());
        };
        let today = self.today();
        let spent = self
            .shared
            .spend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&client.name)
            .filter(|(day, _)| *day == today)
            .map_or(0.0, |(_, s)| *s);
        if spent < budget {
            return Ok(());
        }
        let now = self.shared.clock.now();
        let midnight = today
            .tomorrow()
            .ok()
            .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
            .map(|z| z.timestamp());
        let wait = midnight.map_or(Duration::ZERO, |m| imagegate_core::clock::span(now, m));
        Err(Failure::new(
            FailureKind::BudgetReached,
            format!(
                "client `{}` has spent ${spent:.2} of its ${budget:.2} budget for today (UTC)",
                client.name
            ),
        )
        .retry_after(wait))
    }

    fn add_spend(&self, client: &Client, cost: f64) {
        if cost <= 0.0 {
            return;
        }
        let today = self.today();
        let mut spend = self
            .shared
            .spend
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = spend.entry(client.name.clone()).or_insert((today, 0.0));
        if entry.0 != today {
            *entry = (today, 0.0);
        }
        entry.1 += cost;
    }

    fn created(&self) -> i64 {
        self.shared.clock.now().as_second()
    }

    fn response_id(&self, prefix: &str) -> String {
        format!("{prefix}-{:x}", self.shared.clock.now().as_nanosecond())
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (status, axum::Json(body)).into_response()
}

// ---- OpenAI Images ----

/// `POST /v1/images/generations`.
pub(crate) async fn images_generations(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut call = Call::new(shared, Dialect::OpenAi);
    let result = async {
        let body = call.body(body)?;
        let client = call.auth(&headers, &query::pairs(raw.as_deref()))?;
        let parsed = openai::parse_generation(&body)?;
        images_answer(&mut call, &client, parsed, &headers).await
    }
    .await;
    call.finish(result)
}

/// `POST /v1/images/edits` (multipart).
pub(crate) async fn images_edits(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut call = Call::new(shared, Dialect::OpenAi);
    let result = async {
        let body = call.body(body)?;
        let client = call.auth(&headers, &query::pairs(raw.as_deref()))?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let parsed = openai::parse_edit(body, &content_type).await?;
        images_answer(&mut call, &client, parsed, &headers).await
    }
    .await;
    call.finish(result)
}

async fn images_answer(
    call: &mut Call,
    client: &Client,
    parsed: openai::ImagesRequest,
    headers: &HeaderMap,
) -> Result<Response, Failure> {
    let response = call
        .run(client, parsed.model.as_deref(), parsed.request, headers)
        .await?;
    let mut items = Vec::with_capacity(response.images.len());
    for image in &response.images {
        items.push(match parsed.format {
            Format::B64Json => Item::B64(&image.bytes),
            Format::Url => {
                let id = call
                    .shared
                    .files
                    .put(image, call.shared.clock.now())
                    .await
                    .map_err(|e| {
                        Failure::new(
                            FailureKind::Internal,
                            format!("the image could not be stored for its URL: {e}"),
                        )
                    })?;
                Item::Url(format!(
                    "{}/v1/images/files/{id}",
                    base_url(&call.shared, headers)
                ))
            }
        });
    }
    let body = openai::response_body(&response, &items, call.created());
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The gateway's own base URL as the client reached it.
fn base_url(shared: &Shared, headers: &HeaderMap) -> String {
    if let Some(url) = &shared.config.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
        })
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// `GET /v1/images/files/{id}`: an image answered as a URL, while it lasts.
pub(crate) async fn image_file(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    let call = Call::new(shared.clone(), Dialect::OpenAi);
    let result = match shared.files.get(&id, shared.clock.now()).await {
        Some((bytes, mime)) => {
            let mut response = bytes.into_response();
            if let Ok(value) = HeaderValue::from_str(&mime) {
                response.headers_mut().insert(header::CONTENT_TYPE, value);
            }
            Ok(response)
        }
        None => Err(Failure::new(
            FailureKind::NotFound,
            "no such image: it expired or never existed",
        )),
    };
    call.finish(result)
}

// ---- Gemini ----

/// `POST /{v}/models/{model}:{method}`.
pub(crate) async fn gemini_call(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut call = Call::new(shared, Dialect::Gemini);
    let result = async {
        let body = call.body(body)?;
        let query = query::pairs(raw.as_deref());
        let client = call.auth(&headers, &query)?;
        let Some((model, method)) = target.rsplit_once(':') else {
            return Err(Failure::new(
                FailureKind::NotFound,
                format!(
                    "Method not found: `{target}` names no method (expected MODEL:generateContent)."
                ),
            ));
        };
        let model = model.strip_prefix("models/").unwrap_or(model).to_owned();
        let parsed = match method {
            "generateContent" | "streamGenerateContent" => gemini::parse_generate(&body)?,
            "predict" => gemini::parse_predict(&body)?,
            _ => {
                return Err(Failure::new(
                    FailureKind::NotFound,
                    format!("Method not found: this gateway does not serve `{method}`."),
                ));
            }
        };
        let response = call
            .run(&client, Some(&model), parsed.request, &headers)
            .await?;
        let id = call.response_id("imagegate");
        Ok(match method {
            "predict" => json_response(StatusCode::OK, &gemini::predict_response(&response)),
            "streamGenerateContent" => {
                let chunks = gemini::stream_chunks(&model, &response, parsed.wants_text, &id);
                if query::get(&query, "alt") == Some("sse") {
                    let body = format!("data: {}\r\n\r\ndata: {}\r\n\r\n", chunks[0], chunks[1]);
                    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
                } else {
                    json_response(StatusCode::OK, &Value::Array(chunks.to_vec()))
                }
            }
            _ => json_response(
                StatusCode::OK,
                &gemini::content_response(&model, &response, parsed.wants_text, &id),
            ),
        })
    }
    .await;
    call.finish(result)
}

fn allowed_models(shared: &Shared, client: &Client) -> Vec<String> {
    shared
        .config
        .model_names(&shared.routes)
        .into_iter()
        .filter(|name| {
            client.routes.as_ref().is_none_or(|allowed| {
                shared
                    .config
                    .route_for(Some(name), &shared.routes)
                    .is_some_and(|r| allowed.contains(&r))
            })
        })
        .collect()
}

/// `GET /v1beta/models` (and `/v1/models` with a Gemini key).
pub(crate) async fn gemini_models(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new(shared.clone(), Dialect::Gemini);
    let result = call
        .auth(&headers, &query::pairs(raw.as_deref()))
        .map(|client| {
            let models: Vec<Value> = allowed_models(&shared, &client)
                .iter()
                .map(|m| gemini::model_entry(m))
                .collect();
            json_response(StatusCode::OK, &json!({"models": models}))
        });
    call.finish(result)
}

/// `GET /{v}/models/{model}`.
pub(crate) async fn gemini_model(
    State(shared): State<Arc<Shared>>,
    Path(target): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new(shared.clone(), Dialect::Gemini);
    let result = call
        .auth(&headers, &query::pairs(raw.as_deref()))
        .and_then(|client| {
            let name = target.strip_prefix("models/").unwrap_or(&target);
            if allowed_models(&shared, &client).iter().any(|m| m == name) {
                Ok(json_response(StatusCode::OK, &gemini::model_entry(name)))
            } else {
                Err(Failure::new(
                    FailureKind::NotFound,
                    format!("models/{name} is not found for this gateway"),
                ))
            }
        });
    call.finish(result)
}

// ---- chat ----

/// `POST /v1/chat/completions` and `/api/v1/chat/completions`.
pub(crate) async fn chat(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut call = Call::new(shared, Dialect::Chat);
    let result = async {
        let body = call.body(body)?;
        let client = call.auth(&headers, &query::pairs(raw.as_deref()))?;
        let parsed = chat::parse(&body)?;
        let response = call
            .run(&client, Some(&parsed.model), parsed.request, &headers)
            .await?;
        let id = call.response_id("gen");
        Ok(json_response(
            StatusCode::OK,
            &chat::response(&parsed.model, &response, &id, call.created()),
        ))
    }
    .await;
    call.finish(result)
}

// ---- models, health, status, metrics ----

/// `GET /v1/models`: Gemini's list for a Gemini key (`x-goog-api-key` or `?key=`), else OpenAI's.
pub(crate) async fn models_v1(
    state: State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query::pairs(raw.as_deref());
    if headers.contains_key("x-goog-api-key") || query::get(&query, "key").is_some() {
        return gemini_models(state, RawQuery(raw), headers).await;
    }
    openai_models(state, RawQuery(raw), headers).await
}

/// `GET /v1/models` (OpenAI) and `/api/v1/models` (OpenRouter): the model names clients may use.
pub(crate) async fn openai_models(
    State(shared): State<Arc<Shared>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let mut call = Call::new(shared.clone(), Dialect::OpenAi);
    let result = call
        .auth(&headers, &query::pairs(raw.as_deref()))
        .map(|client| {
            let data: Vec<Value> = allowed_models(&shared, &client)
                .iter()
                .map(|m| json!({"id": m, "object": "model", "created": 0, "owned_by": "imagegate"}))
                .collect();
            json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
        });
    call.finish(result)
}

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"status": "ok"}))
}

/// `GET /readyz`: the configuration is loaded and the quota store answers.
pub(crate) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    if shared.draining.is_cancelled() {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "stopping"}),
        );
    }
    match shared.router.pool_statuses().await {
        Ok(_) => json_response(
            StatusCode::OK,
            &json!({"status": "ready", "routes": shared.routes}),
        ),
        Err(e) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "quota store unreachable", "error": e.message()}),
        ),
    }
}

/// `GET /status.json`: pools, queue, spend, disabled targets and the last events.
pub(crate) async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let pools = match shared.router.pool_statuses().await {
        Ok(pools) => serde_json::to_value(pools).unwrap_or(Value::Null),
        Err(e) => json!({"error": e.message()}),
    };
    let disabled: Vec<Value> = shared
        .router
        .disabled_targets()
        .iter()
        .map(|(target, e)| json!({"target": target, "kind": e.kind().as_str(), "message": e.message()}))
        .collect();
    json_response(
        StatusCode::OK,
        &json!({
            "at": shared.clock.now(),
            "draining": shared.draining.is_cancelled(),
            "routes": shared.routes,
            "models": shared.config.model_names(&shared.routes),
            "queue": {"held": shared.held(), "max_queue": shared.config.max_queue},
            "spent_usd": shared.router.spent_usd(),
            "pools": pools,
            "disabled_targets": disabled,
            "events": shared.observe.events(),
        }),
    )
}

/// `GET /metrics`: Prometheus text, with pool use and limits refreshed now.
pub(crate) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    if let Ok(pools) = shared.router.pool_statuses().await {
        for pool in &pools {
            let id = pool.id.to_string();
            for d in &pool.dimensions {
                shared
                    .observe
                    .pool(&id, d.dimension.as_str(), d.used, d.limit);
            }
        }
    }
    shared.observe.queue_depth(shared.held());
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.observe.render(),
    )
        .into_response()
}

/// Anything else: a 404 in the dialect the path suggests.
pub(crate) async fn not_found(State(shared): State<Arc<Shared>>, uri: Uri) -> Response {
    let path = uri.path();
    let dialect = if path.starts_with("/v1beta") || path.contains(":generate") {
        Dialect::Gemini
    } else if path.contains("chat") || path.starts_with("/api/") {
        Dialect::Chat
    } else {
        Dialect::OpenAi
    };
    let shown: String = path.chars().take(100).collect();
    Call::new(shared, dialect).finish(Err(Failure::new(
        FailureKind::NotFound,
        format!("no such endpoint: {shown}"),
    )))
}

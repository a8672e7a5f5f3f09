//! The Vertex AI dialect: `POST /v1/projects/{project}/locations/{location}/publishers/google/
//! models/{model}:generateContent` (also `:streamGenerateContent` and Imagen's `:predict`), the
//! Gemini request and response shapes, and an OAuth2 token endpoint for the credentials.
//!
//! Vertex authorises by IAM, not by key: the project is in the path, and any non-empty
//! `Authorization: Bearer` access token is accepted. The pools are the `vertex` pools whose
//! project is `PROJECT/LOCATION` (as imagegate's configuration names a Vertex target), or
//! `PROJECT` for every location. `POST /emulator/vertex/token` answers both grants Google's
//! token endpoint takes (a service account's JWT, a user's refresh token) with an access token,
//! checking nothing, so a credentials file whose `token_uri` points here works offline.
//!
//! Over quota the pool answers Dynamic Shared Quota's bare 429 `RESOURCE_EXHAUSTED` (no limit,
//! no wait: fixtures/vertex/generate-content/429-resource-exhausted.json), a pool with a limit
//! of 0 the `BILLING_DISABLED` 403; both come from the simulated upstream. The emulator's own
//! answers follow fixtures/vertex/generate-content/401-unauthenticated.json (no token) and
//! 403-permission-denied.json (a project or location without pools).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::response::Response;
use axum::routing::post;
use http::{HeaderMap, StatusCode, header};
use imagegate_mock::sim::wire::UpstreamKind;
use serde_json::json;

use crate::book::Outcome;
use crate::emulator::{Caller, Shared};
use crate::gemini::{query_pairs, serve_generation};
use crate::http_util::{self, BodyProblem, GOOGLE_JSON};

const KIND: UpstreamKind = UpstreamKind::Vertex;

/// How long an access token from the token endpoint says it lives, as Google's do.
const TOKEN_SECONDS: u64 = 3599;

#[derive(Debug)]
pub(crate) struct Vertex {
    shared: Arc<Shared>,
    tokens: AtomicU64,
}

/// The routes of this dialect, with their own body limit (merged into the emulator's router).
pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    let state = Arc::new(Vertex {
        shared,
        tokens: AtomicU64::new(0),
    });
    Router::new()
        .route(
            "/v1/projects/{project}/locations/{location}/publishers/google/models/{target}",
            post(call),
        )
        .route("/emulator/vertex/token", post(token))
        .layer(DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        .with_state(state)
}

fn error(status: StatusCode, code_name: &str, message: &str) -> Response {
    let body = json!({"error": {
        "code": status.as_u16(),
        "message": message,
        "status": code_name,
    }});
    http_util::json(status, GOOGLE_JSON, &body, true)
}

fn has_token(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()
        })
}

/// The project serving `project` at `location`: `PROJECT/LOCATION`, else `PROJECT`.
pub(crate) fn project_of(shared: &Shared, project: &str, location: &str) -> Option<usize> {
    let scoped = format!("{project}/{location}");
    let find = |name: &str| {
        shared
            .projects
            .iter()
            .position(|p| p.kind == KIND && p.name == name)
    };
    find(&scoped).or_else(|| find(project))
}

/// `POST /v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}`.
async fn call(
    State(state): State<Arc<Vertex>>,
    Path((project, location, target)): Path<(String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let shared = &state.shared;
    let Some((model, method)) = target.rsplit_once(':') else {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!(
                "Method not found: `{target}` names no method (expected MODEL:generateContent)."
            ),
        );
    };
    let body = match http_util::body(body) {
        Ok(body) => body,
        Err(problem) => {
            let (outcome, status, response) = match problem {
                BodyProblem::TooLarge => (
                    Outcome::TooLarge,
                    413,
                    error(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "INVALID_ARGUMENT",
                        &format!(
                            "Request payload size exceeds the limit: {} bytes.",
                            crate::MAX_BODY_BYTES
                        ),
                    ),
                ),
                BodyProblem::Unreadable(why) => (
                    Outcome::BadRequest,
                    400,
                    error(
                        StatusCode::BAD_REQUEST,
                        "INVALID_ARGUMENT",
                        &format!("The request body could not be read: {why}"),
                    ),
                ),
            };
            shared.refuse(KIND, Caller::Unknown, Some(model), outcome, status);
            return response;
        }
    };
    if !has_token(&headers) {
        shared.refuse(KIND, Caller::Missing, Some(model), Outcome::BadKey, 401);
        return error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
        );
    }
    let Some(index) = project_of(shared, &project, &location) else {
        shared.refuse(KIND, Caller::Unknown, Some(model), Outcome::BadKey, 403);
        return error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!(
                "Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/{project}/locations/{location}/publishers/google/models/{model}' (or it may not exist)."
            ),
        );
    };
    let sse = query_pairs(query.as_deref())
        .iter()
        .any(|(k, v)| k == "alt" && v == "sse");
    let id = format!("emulator-vertex-{:016x}", shared.next_response());
    serve_generation(shared, KIND, index, model, method, &body, sse, &id).await
}

/// `POST /emulator/vertex/token`: an access token for either grant Google's endpoint takes
/// (`urn:ietf:params:oauth:grant-type:jwt-bearer` with an `assertion`, `refresh_token` with a
/// `refresh_token`); nothing is verified. Another grant is Google's `unsupported_grant_type`.
async fn token(State(state): State<Arc<Vertex>>, body: Bytes) -> Response {
    let form = String::from_utf8_lossy(&body).into_owned();
    let fields = query_pairs(Some(&form));
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let granted = match field("grant_type") {
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => field("assertion").is_some(),
        Some("refresh_token") => field("refresh_token").is_some(),
        _ => false,
    };
    if !granted {
        return http_util::json(
            StatusCode::BAD_REQUEST,
            "application/json; charset=utf-8",
            &json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type or a missing assertion / refresh_token."}),
            false,
        );
    }
    let n = state.tokens.fetch_add(1, Ordering::Relaxed) + 1;
    http_util::json(
        StatusCode::OK,
        "application/json; charset=utf-8",
        &json!({
            "access_token": format!("emulator-vertex-access-{n:016x}"),
            "expires_in": TOKEN_SECONDS,
            "token_type": "Bearer",
        }),
        false,
    )
}

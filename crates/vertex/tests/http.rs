//! End-to-end through HTTP: the OAuth2 exchange against a wiremock token endpoint with a key
//! generated for the test, the token cache and its refresh, and what reaches Vertex.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use imagegate_core::{
    ErrorKind, GenerateRequest, ImageProvider, clock::ManualClock, secret::ApiKey,
};
use imagegate_vertex::{CLOUD_PLATFORM_SCOPE, Credentials, VertexProvider};
use jiff::Timestamp;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";
const ACCESS_TOKEN: &str = "test-access-token-from-wiremock";
const GC_PATH: &str = "/v1/projects/test-project/locations/us-central1/publishers/google/models/gemini-2.5-flash-image:generateContent";

fn t0() -> Timestamp {
    "2026-01-15T12:00:00Z".parse().unwrap()
}

fn image_answer() -> Value {
    json!({"candidates": [{"content": {"role": "model", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": PNG}}]}, "finishReason": "STOP"}],
        "modelVersion": "gemini-2.5-flash-image", "responseId": "r-1"})
}

/// A server that is both the token endpoint (`/token`, answering `token` valid for an hour)
/// and Vertex (`GC_PATH`, answering `vertex`).
async fn server(token_answer: ResponseTemplate, vertex: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_answer)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GC_PATH))
        .respond_with(vertex)
        .mount(&server)
        .await;
    server
}

fn token_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"access_token": ACCESS_TOKEN, "expires_in": 3600, "token_type": "Bearer"}),
    )
}

/// A provider whose credentials are a service-account file with a key generated now, its
/// `token_uri` at the server; and the public key.
fn service_account_provider(
    server: &MockServer,
    clock: Arc<ManualClock>,
) -> (VertexProvider, Vec<u8>) {
    let (pem, public) = common::test_rsa_key();
    let file = common::service_account_json(&pem, &format!("{}/token", server.uri()));
    let credentials = Credentials::from_json(file.as_bytes(), "test key").unwrap();
    let provider = VertexProvider::new(credentials, "test-project", "us-central1")
        .unwrap()
        .with_base_url(&server.uri())
        .unwrap()
        .with_clock(clock);
    (provider, public)
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":")))
        .collect()
}

#[tokio::test]
async fn a_service_account_gets_one_signed_token_and_reuses_it_until_near_expiry() {
    let server = server(
        token_ok(),
        ResponseTemplate::new(200).set_body_json(image_answer()),
    )
    .await;
    let clock = Arc::new(ManualClock::new(t0()));
    let (provider, public) = service_account_provider(&server, clock.clone());
    let request = GenerateRequest::new("a lighthouse");

    let first = provider.generate(&request).await.unwrap();
    assert_eq!(first.images.len(), 1);
    assert_eq!(
        first.served_by.to_string(),
        "vertex/gemini-2.5-flash-image@test-project/us-central1"
    );
    provider.generate(&request).await.unwrap();

    let sent = server.received_requests().await.unwrap();
    let token_calls: Vec<_> = sent.iter().filter(|r| r.url.path() == "/token").collect();
    assert_eq!(token_calls.len(), 1, "the token is cached");
    // The exchange is the JWT-bearer grant with an RS256 assertion for the cloud-platform scope.
    let fields = form(&token_calls[0].body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(
        field("grant_type"),
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[format!("{}/token", server.uri())]);
    validation.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(
        &field("assertion"),
        &jsonwebtoken::DecodingKey::from_rsa_der(&public),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(
        claims["iss"],
        "imagegate-test@test-project.iam.gserviceaccount.com"
    );
    assert_eq!(claims["scope"], CLOUD_PLATFORM_SCOPE);
    assert_eq!(claims["iat"], t0().as_second());
    assert_eq!(claims["exp"], t0().as_second() + 3600);

    // Vertex got the token in the Authorization header only.
    let vertex: Vec<_> = sent.iter().filter(|r| r.url.path() == GC_PATH).collect();
    assert_eq!(vertex.len(), 2);
    for call in &vertex {
        assert_eq!(
            call.headers.get("authorization").unwrap().to_str().unwrap(),
            format!("Bearer {ACCESS_TOKEN}")
        );
        assert!(!call.url.as_str().contains(ACCESS_TOKEN));
        assert!(!String::from_utf8_lossy(&call.body).contains(ACCESS_TOKEN));
    }
    assert!(!format!("{provider:?}").contains(ACCESS_TOKEN));
    assert!(!format!("{provider:?}").contains("BEGIN PRIVATE KEY"));

    // 56 minutes later the token is within five minutes of expiry: a new one is fetched first.
    clock.advance(Duration::from_secs(56 * 60));
    provider.generate(&request).await.unwrap();
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.iter().filter(|r| r.url.path() == "/token").count(), 2);
}

#[tokio::test]
async fn a_refused_grant_is_unauthorized_and_vertex_is_never_called() {
    let refused = ResponseTemplate::new(400).set_body_json(
        json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."}),
    );
    let server = server(
        refused,
        ResponseTemplate::new(200).set_body_json(image_answer()),
    )
    .await;
    let (provider, _) = service_account_provider(&server, Arc::new(ManualClock::new(t0())));
    let error = provider
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized, "{error}");
    assert!(error.message().contains("Invalid JWT Signature"), "{error}");
    assert_eq!(error.provider(), Some("vertex"));
    let sent = server.received_requests().await.unwrap();
    assert!(sent.iter().all(|r| r.url.path() == "/token"));
}

#[tokio::test]
async fn a_401_from_vertex_drops_the_cached_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/token"))
        .respond_with(token_ok())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GC_PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"error": {"code": 401,
            "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(GC_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(image_answer()))
        .mount(&server)
        .await;
    let (provider, _) = service_account_provider(&server, Arc::new(ManualClock::new(t0())));
    let error = provider
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    provider.generate(&GenerateRequest::new("x")).await.unwrap();
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.iter().filter(|r| r.url.path() == "/token").count(), 2);
}

#[tokio::test]
async fn user_credentials_use_the_refresh_grant_and_name_the_quota_project() {
    let server = server(
        token_ok(),
        ResponseTemplate::new(200).set_body_json(image_answer()),
    )
    .await;
    let file = json!({"type": "authorized_user", "client_id": "cid", "client_secret": "test-client-secret",
        "refresh_token": "test-refresh-token", "quota_project_id": "billing-project"});
    let credentials = Credentials::from_json(file.to_string().as_bytes(), "adc").unwrap();
    let provider = VertexProvider::new(credentials, "test-project", "us-central1")
        .unwrap()
        .with_base_url(&server.uri())
        .unwrap()
        .with_token_endpoint(&format!("{}/token", server.uri()))
        .unwrap();
    provider.generate(&GenerateRequest::new("x")).await.unwrap();
    let sent = server.received_requests().await.unwrap();
    let token_call = sent.iter().find(|r| r.url.path() == "/token").unwrap();
    let fields = form(&token_call.body);
    assert!(fields.contains(&("grant_type".to_owned(), "refresh_token".to_owned())));
    assert!(fields.contains(&("refresh_token".to_owned(), "test-refresh-token".to_owned())));
    let vertex = sent.iter().find(|r| r.url.path() == GC_PATH).unwrap();
    assert_eq!(
        vertex.headers.get("x-goog-user-project").unwrap(),
        "billing-project"
    );
    assert!(!format!("{provider:?}").contains("test-refresh-token"));
}

#[tokio::test]
async fn a_vertex_429_is_rate_limited_with_nothing_learned_and_is_not_retried() {
    let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
        "message": "Resource exhausted. Please try again later."}});
    let server = server(token_ok(), ResponseTemplate::new(429).set_body_json(body)).await;
    let (provider, _) = service_account_provider(&server, Arc::new(ManualClock::new(t0())));
    let error = provider
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert!(error.quota().is_empty());
    assert_eq!(error.project(), Some("test-project/us-central1"));
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.iter().filter(|r| r.url.path() == GC_PATH).count(), 1);
}

#[tokio::test]
async fn requests_the_model_cannot_serve_fail_before_any_request() {
    let server = MockServer::start().await;
    let provider = common::provider(&server.uri(), t0(), ApiKey::new("t"));
    for request in [
        GenerateRequest::new("x").with_count(2),
        GenerateRequest::new("x")
            .with_model("imagen-4.0-generate-001")
            .with_count(5),
        GenerateRequest::new("x").with_model("../../admin"),
        GenerateRequest::new(" "),
    ] {
        let error = provider.generate(&request).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{error}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_connect_and_a_redirect_is_not_followed() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let provider = common::provider(&format!("http://127.0.0.1:{port}"), t0(), ApiKey::new("t"));
    let error = provider
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");

    let elsewhere = MockServer::start().await;
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(307)
                .insert_header("location", format!("{}{GC_PATH}", elsewhere.uri())),
        )
        .mount(&server)
        .await;
    let error = common::provider(&server.uri(), t0(), ApiKey::new("token-must-not-travel"))
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unexpected, "{error}");
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
}

#[test]
fn from_vars_reads_adc_project_and_location() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    std::fs::write(
        &key,
        common::service_account_json("not-a-pem", "https://oauth2.googleapis.com/token"),
    )
    .unwrap();
    let vars = |name: &str| match name {
        "GOOGLE_APPLICATION_CREDENTIALS" => Some(key.display().to_string()),
        "GOOGLE_CLOUD_LOCATION" => Some("europe-west4".to_owned()),
        _ => None,
    };
    let provider = VertexProvider::from_vars(None, vars).unwrap();
    assert_eq!(provider.location(), "europe-west4");
    assert!(provider.url_for("gemini-2.5-flash-image").starts_with(
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/test-project/locations/europe-west4/"
    ));
    let provider = VertexProvider::from_vars(Some("other-project/global"), vars).unwrap();
    assert_eq!(provider.location(), "global");
    assert!(provider.url_for("gemini-2.5-flash-image").starts_with(
        "https://aiplatform.googleapis.com/v1/projects/other-project/locations/global/"
    ));
    let error = VertexProvider::from_vars(Some("Bad Project"), vars).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ConfigInvalid);

    // Without GOOGLE_APPLICATION_CREDENTIALS: the file gcloud writes under $HOME, and the
    // project from GOOGLE_CLOUD_PROJECT (a user file names none of its own here).
    let gcloud = dir.path().join(".config/gcloud");
    std::fs::create_dir_all(&gcloud).unwrap();
    std::fs::write(
        gcloud.join("application_default_credentials.json"),
        r#"{"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}"#,
    )
    .unwrap();
    let home = dir.path().display().to_string();
    let provider = VertexProvider::from_vars(None, |name| match name {
        "HOME" => Some(home.clone()),
        "GOOGLE_CLOUD_PROJECT" => Some("home-project".to_owned()),
        _ => None,
    })
    .unwrap();
    assert_eq!(provider.location(), "us-central1");
    assert!(provider.url_for("m").contains("/projects/home-project/"));
    let error =
        VertexProvider::from_vars(None, |name| (name == "HOME").then(|| home.clone())).unwrap_err();
    assert!(error.message().contains("GOOGLE_CLOUD_PROJECT"), "{error}");
}

//! End-to-end through HTTP against a per-test wiremock server: what goes on the wire and what
//! comes back.
#![allow(clippy::unwrap_used)] // test helpers, like test functions, may unwrap

mod common;

use std::time::Duration;

use imagegate_core::{
    ErrorKind, GenerateRequest, ImageProvider, ReferenceImage, quota::Dimension, secret::ApiKey,
};
use imagegate_openrouter::OpenRouterProvider;
use imagegate_testkit::{Fixture, mount};
use jiff::Timestamp;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "http-test-credential-4d2b";
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";

fn now() -> Timestamp {
    "2026-01-15T12:00:00Z".parse().unwrap()
}

fn success_body() -> Value {
    json!({
        "id": "gen-42", "model": "google/gemini-2.5-flash-image", "object": "chat.completion",
        "choices": [{"finish_reason": "stop", "native_finish_reason": "STOP", "index": 0,
            "message": {"role": "assistant", "content": "Here you go.",
                "images": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{PNG}")}}]}}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 1290, "cost": 0.0387,
            "completion_tokens_details": {"image_tokens": 1290}}
    })
}

async fn server_answering(template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/v1/chat/completions"))
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    server
}

fn provider(server: &MockServer) -> OpenRouterProvider {
    common::provider(&server.uri(), now(), ApiKey::new(KEY))
}

#[tokio::test]
async fn success_decodes_the_image_usage_and_cost_with_one_request() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let provider = provider(&server).with_project("team-account".to_owned());
    let response = provider
        .generate(&GenerateRequest::new("a lighthouse"))
        .await
        .unwrap();
    assert_eq!(response.images.len(), 1);
    assert_eq!(response.images[0].mime_type, "image/png");
    assert_eq!(
        (response.images[0].width, response.images[0].height),
        (Some(1), Some(1))
    );
    assert_eq!(
        response.served_by.to_string(),
        "openrouter/google/gemini-2.5-flash-image@team-account"
    );
    assert_eq!(response.request_id.as_deref(), Some("gen-42"));
    assert_eq!(response.note.as_deref(), Some("Here you go."));
    assert_eq!(response.cost_usd, Some(0.0387));
    let usage = response.usage.unwrap();
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.image_tokens),
        (8, 1290, Some(1290))
    );
    assert_eq!(response.attempts.len(), 1);
    assert_eq!(response.attempts[0].outcome, None);
    assert_eq!(response.attempts[0].started_at, now());
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_key_travels_only_in_the_authorization_header() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let provider = provider(&server).with_attribution("https://example.com/app", "imagegate tests");
    provider
        .generate(&GenerateRequest::new("a lighthouse"))
        .await
        .unwrap();
    let sent = server.received_requests().await.unwrap();
    assert_eq!(sent.len(), 1);
    let request = &sent[0];
    assert_eq!(
        request
            .headers
            .get("authorization")
            .unwrap()
            .to_str()
            .unwrap(),
        format!("Bearer {KEY}")
    );
    let carrying: Vec<_> = request
        .headers
        .iter()
        .filter(|(_, v)| v.to_str().is_ok_and(|v| v.contains(KEY)))
        .map(|(name, _)| name.as_str().to_owned())
        .collect();
    assert_eq!(carrying, ["authorization"]);
    assert!(!request.url.as_str().contains(KEY));
    assert!(!String::from_utf8_lossy(&request.body).contains(KEY));
    assert_eq!(
        request.headers.get("http-referer").unwrap(),
        "https://example.com/app"
    );
    assert_eq!(request.headers.get("x-title").unwrap(), "imagegate tests");
    assert_eq!(
        request.headers.get("content-type").unwrap(),
        "application/json"
    );
    assert!(!format!("{provider:?}").contains(KEY));
}

#[tokio::test]
async fn a_429_with_retry_after_is_rate_limited_and_not_retried() {
    let body = json!({"error": {"code": 429, "message": "Rate limit exceeded"}});
    let server = server_answering(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "7")
            .set_body_json(body),
    )
    .await;
    let provider = provider(&server).with_project("team-account".to_owned());
    let error = provider
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(error.http_status(), Some(429));
    assert_eq!(error.provider(), Some("openrouter"));
    assert_eq!(error.project(), Some("team-account"));
    assert!(!error.to_string().contains(KEY) && !format!("{error:?}").contains(KEY));
    // Exactly one request: the provider never retries (the router does).
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_402_is_billing_required() {
    let fixture = Fixture::by_id("openrouter/chat-completions/402-insufficient-credits").unwrap();
    let server = MockServer::start().await;
    mount(&server, &fixture).await;
    let error = provider(&server)
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BillingRequired);
    assert!(!error.is_temporary());
    assert_eq!(error.retry_after(), None);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_daily_cap_resets_at_the_stamped_utc_midnight() {
    let fixture = Fixture::by_id("openrouter/chat-completions/429-free-models-per-day").unwrap();
    let server = MockServer::start().await;
    mount(&server, &fixture).await;
    let provider = common::provider(&server.uri(), fixture.now(), ApiKey::new(KEY));
    let error = provider
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(error.quota().dimension, Some(Dimension::Rpd));
    assert_eq!(
        error.quota().reset_at,
        Some("2026-05-21T00:00:00Z".parse().unwrap())
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(6 * 3600)));
}

#[tokio::test]
async fn editing_sends_the_reference_image_as_a_data_url_part() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let png = base64_decode(PNG);
    let request = GenerateRequest::new("make it night")
        .with_reference_image(ReferenceImage::new(png, "image/png"));
    provider(&server).generate(&request).await.unwrap();
    let sent = server.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&sent[0].body).unwrap();
    let parts = body["messages"][0]["content"].as_array().unwrap();
    assert_eq!(parts[0], json!({"type": "text", "text": "make it night"}));
    assert_eq!(
        parts[1]["image_url"]["url"],
        format!("data:image/png;base64,{PNG}")
    );
}

#[tokio::test]
async fn requests_the_model_cannot_serve_fail_before_sending() {
    let server = MockServer::start().await;
    let provider = provider(&server);
    let too_big = GenerateRequest::new("x").with_size(imagegate_core::ImageSize::FourK);
    let error = provider.generate(&too_big).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert!(error.message().contains("4K"), "{error}");
    let many = GenerateRequest::new("x").with_count(3);
    assert_eq!(
        provider.generate(&many).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    let empty = GenerateRequest::new(" ");
    assert_eq!(
        provider.generate(&empty).await.unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn key_info_reads_both_shapes_over_http() {
    for (id, remaining) in [
        ("openrouter/key/200-current-shape", 74.5),
        ("openrouter/key/200-legacy-shape", 4.8984355238),
    ] {
        let fixture = Fixture::by_id(id).unwrap();
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/api/v1/key"))
            .and(header("authorization", format!("Bearer {KEY}").as_str()))
            .respond_with(imagegate_testkit::response_template(&fixture))
            .expect(1)
            .mount(&server)
            .await;
        let info = provider(&server).key_info().await.unwrap();
        assert_eq!(info.credits_remaining(), Some(remaining), "{id}");
        assert_eq!(info.is_free_tier, Some(false), "{id}");
    }
}

#[tokio::test]
async fn key_info_classifies_a_refused_key() {
    let fixture = Fixture::by_id("openrouter/key/401-invalid-key").unwrap();
    let server = MockServer::start().await;
    mount(&server, &fixture).await;
    let error = provider(&server).key_info().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorized);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_connect() {
    // Bind an ephemeral loopback port, then free it: nothing listens there any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let provider = common::provider(&format!("http://127.0.0.1:{port}"), now(), ApiKey::new(KEY));
    let error = provider
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(error.is_temporary());
    assert!(!error.to_string().contains(KEY));
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let server = server_answering(
        ResponseTemplate::new(200)
            .set_body_json(success_body())
            .set_delay(Duration::from_secs(30)),
    )
    .await;
    let provider = provider(&server).with_timeout(Duration::from_millis(50));
    let error = provider
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
}

#[tokio::test]
async fn a_base_url_with_the_sdk_suffix_reaches_the_same_endpoint() {
    let server = server_answering(ResponseTemplate::new(200).set_body_json(success_body())).await;
    let provider = OpenRouterProvider::new(ApiKey::new(KEY))
        .with_base_url(&format!("{}/api/v1/", server.uri()))
        .unwrap();
    provider.generate(&GenerateRequest::new("x")).await.unwrap();
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_the_key_never_reaches_another_origin() {
    for status in [307u16, 302] {
        let elsewhere = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&elsewhere)
            .await;
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).insert_header(
                "location",
                format!("{}/api/v1/chat/completions", elsewhere.uri()),
            ))
            .mount(&server)
            .await;
        let error = common::provider(&server.uri(), now(), ApiKey::new(KEY))
            .generate(&GenerateRequest::new("x"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unexpected, "{status}: {error}");
        assert!(error.message().contains("redirect"), "{error}");
        let reached = elsewhere.received_requests().await.unwrap();
        assert!(
            reached.is_empty(),
            "{status}: the key reached the second server"
        );
    }
}

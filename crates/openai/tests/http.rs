//! End-to-end through HTTP against a per-test wiremock server: what goes on the wire and what
//! comes back.
#![allow(clippy::unwrap_used)] // test helpers, like test functions, may unwrap

mod common;

use std::time::Duration;

use imagegate_core::{
    ErrorKind, GenerateRequest, ImageProvider, ReferenceImage, quota::Dimension, secret::ApiKey,
};
use imagegate_openai::OpenAiProvider;
use jiff::Timestamp;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "http-test-credential-9c1e";
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==";

fn now() -> Timestamp {
    "2026-01-15T12:00:00Z".parse().unwrap()
}

fn success_body() -> Value {
    json!({
        "created": 1768478400,
        "data": [{"b64_json": PNG}],
        "usage": {"total_tokens": 4210, "input_tokens": 50, "output_tokens": 4160,
            "input_tokens_details": {"text_tokens": 50, "image_tokens": 0}}
    })
}

async fn server_answering(endpoint: &str, template: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/images/{endpoint}")))
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    server
}

fn provider(server: &MockServer) -> OpenAiProvider {
    common::provider(&server.uri(), now(), ApiKey::new(KEY))
}

#[tokio::test]
async fn success_keeps_usage_cost_request_id_and_the_rate_limit_headers() {
    let server = server_answering(
        "generations",
        ResponseTemplate::new(200)
            .insert_header("x-request-id", "req_42")
            .insert_header("x-ratelimit-limit-requests", "50")
            .insert_header("x-ratelimit-remaining-requests", "49")
            .insert_header("x-ratelimit-reset-requests", "1.2s")
            .insert_header("x-ratelimit-limit-tokens", "100000")
            .insert_header("x-ratelimit-remaining-tokens", "95840")
            .insert_header("x-ratelimit-reset-tokens", "6m0s")
            .set_body_json(success_body()),
    )
    .await;
    let provider = provider(&server).with_project("team".to_owned());
    let response = provider
        .generate(&GenerateRequest::new("a lighthouse"))
        .await
        .unwrap();
    assert_eq!(response.images.len(), 1);
    assert_eq!(response.images[0].mime_type, "image/png");
    assert_eq!(response.served_by.to_string(), "openai/gpt-image-1@team");
    assert_eq!(response.request_id.as_deref(), Some("req_42"));
    let cost = response.cost_usd.unwrap();
    assert!(
        (cost - (50.0 * 5.0 + 4160.0 * 40.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    assert_eq!(response.usage.unwrap().output_tokens, 4160);
    let limits = &response.rate_limits;
    assert_eq!(limits.len(), 2);
    assert_eq!(
        (limits[0].dimension, limits[0].limit, limits[0].remaining),
        (Dimension::Rpm, Some(50), Some(49))
    );
    assert_eq!(limits[1].dimension, Dimension::Tpm);
    assert_eq!(
        limits[1].reset_at,
        Some("2026-01-15T12:06:00Z".parse().unwrap())
    );
    assert_eq!(response.attempts.len(), 1);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_key_travels_only_in_the_authorization_header_beside_org_and_project() {
    let server = server_answering(
        "generations",
        ResponseTemplate::new(200).set_body_json(success_body()),
    )
    .await;
    let provider = provider(&server)
        .with_organization("org-test")
        .with_openai_project("proj_test");
    provider
        .generate(&GenerateRequest::new("a lighthouse").with_model("dall-e-3"))
        .await
        .unwrap();
    let sent = server.received_requests().await.unwrap();
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
        request.headers.get("openai-organization").unwrap(),
        "org-test"
    );
    assert_eq!(request.headers.get("openai-project").unwrap(), "proj_test");
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["model"], "dall-e-3");
    assert_eq!(body["response_format"], "b64_json");
    assert!(!format!("{provider:?}").contains(KEY));
}

#[tokio::test]
async fn a_tokens_per_minute_429_states_dimension_limit_and_wait_and_is_not_retried() {
    let body = json!({"error": {"message": "Rate limit reached for gpt-image-1 in organization org-x on tokens per min (TPM): Limit 100000, Used 99000, Requested 4160. Please try again in 1.896s.", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}});
    let server = server_answering(
        "generations",
        ResponseTemplate::new(429)
            .insert_header("x-ratelimit-reset-tokens", "1.896s")
            .set_body_json(body),
    )
    .await;
    let error = provider(&server)
        .with_project("team".to_owned())
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.quota().dimension, Some(Dimension::Tpm));
    assert_eq!(error.quota().quota_value, Some(100_000));
    assert_eq!(error.retry_after(), Some(Duration::from_millis(1_896)));
    assert_eq!(
        (error.provider(), error.project()),
        (Some("openai"), Some("team"))
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn an_edit_is_multipart_with_every_reference_image_as_image_brackets() {
    let server = server_answering(
        "edits",
        ResponseTemplate::new(200).set_body_json(success_body()),
    )
    .await;
    let request = GenerateRequest::new("make it night")
        .with_reference_image(ReferenceImage::new(common::PNG.to_vec(), "image/png"))
        .with_reference_image(ReferenceImage::new(common::PNG.to_vec(), "image/png"));
    let response = provider(&server).generate(&request).await.unwrap();
    assert_eq!(response.images.len(), 1);
    let sent = server.received_requests().await.unwrap();
    let content_type = sent[0]
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        content_type.starts_with("multipart/form-data; boundary="),
        "{content_type}"
    );
    let body = String::from_utf8_lossy(&sent[0].body);
    assert_eq!(body.matches("name=\"image[]\"").count(), 2, "{body}");
    assert!(body.contains("filename=\"image-1.png\""), "{body}");
    assert!(body.contains("filename=\"image-2.png\""), "{body}");
    assert!(
        body.contains("name=\"prompt\"\r\n\r\nmake it night"),
        "{body}"
    );
    assert!(body.contains("name=\"model\"\r\n\r\ngpt-image-1"), "{body}");
    assert!(!body.contains(KEY));
}

#[tokio::test]
async fn images_given_as_links_are_downloaded_without_the_key() {
    let cdn = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/img-1.png"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/png")
                .set_body_bytes(common::PNG.to_vec()),
        )
        .expect(1)
        .mount(&cdn)
        .await;
    let body = json!({"created": 1, "data": [
        {"url": format!("{}/img-1.png", cdn.uri()), "revised_prompt": "a red lighthouse"}
    ]});
    let server = server_answering(
        "generations",
        ResponseTemplate::new(200).set_body_json(body),
    )
    .await;
    let response = provider(&server)
        .generate(&GenerateRequest::new("x").with_model("dall-e-3"))
        .await
        .unwrap();
    assert_eq!(response.images.len(), 1);
    assert_eq!(
        response.note.as_deref(),
        Some("revised prompt: a red lighthouse")
    );
    let fetched = cdn.received_requests().await.unwrap();
    assert_eq!(fetched.len(), 1);
    assert!(fetched[0].headers.get("authorization").is_none());
    assert!(
        !fetched[0]
            .headers
            .values()
            .any(|v| v.to_str().is_ok_and(|v| v.contains(KEY)))
    );
}

#[tokio::test]
async fn an_expired_link_is_an_error_naming_it() {
    let cdn = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&cdn)
        .await;
    let body = json!({"created": 1, "data": [{"url": format!("{}/gone.png", cdn.uri())}]});
    let server = server_answering(
        "generations",
        ResponseTemplate::new(200).set_body_json(body),
    )
    .await;
    let error = provider(&server)
        .generate(&GenerateRequest::new("x").with_model("dall-e-2"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{error}");
    assert!(error.message().contains("403"), "{error}");
    let body = json!({"created": 1, "data": [{"url": "file:///etc/passwd"}]});
    let server = server_answering(
        "generations",
        ResponseTemplate::new(200).set_body_json(body),
    )
    .await;
    let error = provider(&server)
        .generate(&GenerateRequest::new("x").with_model("dall-e-2"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{error}");
}

#[tokio::test]
async fn requests_the_model_cannot_serve_fail_before_sending() {
    let server = MockServer::start().await;
    let provider = provider(&server);
    let cases = [
        GenerateRequest::new("x")
            .with_model("dall-e-3")
            .with_count(2),
        GenerateRequest::new("x")
            .with_model("dall-e-3")
            .with_reference_image(ReferenceImage::new(common::PNG.to_vec(), "image/png")),
        GenerateRequest::new("x").with_size(imagegate_core::ImageSize::FourK),
        GenerateRequest::new("x")
            .with_model("dall-e-2")
            .with_reference_image(ReferenceImage::new(common::PNG.to_vec(), "image/png"))
            .with_reference_image(ReferenceImage::new(common::PNG.to_vec(), "image/png")),
        GenerateRequest::new(" "),
    ];
    for request in cases {
        let error = provider.generate(&request).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest, "{error}");
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_refused_connection_is_connect() {
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
    assert!(!error.to_string().contains(KEY));
}

#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let server = server_answering(
        "generations",
        ResponseTemplate::new(200)
            .set_body_json(success_body())
            .set_delay(Duration::from_secs(30)),
    )
    .await;
    let error = provider(&server)
        .with_timeout(Duration::from_millis(50))
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_the_key_never_reaches_another_origin() {
    for status in [307u16, 302] {
        let elsewhere = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_body_json(success_body()))
            .mount(&elsewhere)
            .await;
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status).insert_header(
                "location",
                format!("{}/v1/images/generations", elsewhere.uri()),
            ))
            .mount(&server)
            .await;
        let error = provider(&server)
            .generate(&GenerateRequest::new("x"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unexpected, "{status}: {error}");
        assert!(elsewhere.received_requests().await.unwrap().is_empty());
    }
}

//! The provider end to end against a per-test wiremock server: what it sends, that it sends
//! exactly once, and how transport failures and 429s reach the caller.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use imagegate_core::{
    ErrorKind, GenerateRequest, ImageProvider, ImageSize, clock::ManualClock, quota::Dimension,
    secret::ApiKey,
};
use imagegate_gemini::GeminiProvider;
use imagegate_testkit::Fixture;
use imagegate_testkit::mount;
use jiff::Timestamp;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "provider-test-credential-42";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn provider(server: &MockServer, clock: &ManualClock) -> GeminiProvider {
    GeminiProvider::new(ApiKey::new(KEY))
        .with_base_url(&server.uri())
        .unwrap()
        .with_project("proj-a")
        .with_clock(Arc::new(clock.clone()))
}

async fn serve(fixture: &str) -> MockServer {
    let server = MockServer::start().await;
    mount(&server, &Fixture::by_id(fixture).unwrap()).await;
    server
}

#[tokio::test]
async fn success_sends_one_request_with_the_key_only_in_the_header() {
    let server = serve("gemini/generate-content/200-success-png-with-text").await;
    let clock = ManualClock::new(at("2026-01-15T12:00:00Z"));
    let response = provider(&server, &clock)
        .generate(&GenerateRequest::new("A watercolor lighthouse at dawn"))
        .await
        .unwrap();
    assert_eq!(response.images.len(), 1);
    assert_eq!(
        response.note.as_deref(),
        Some("Here is your watercolor lighthouse.")
    );
    assert_eq!(response.served_by.project.as_deref(), Some("proj-a"));
    assert_eq!(response.attempts.len(), 1);
    assert_eq!(
        response.attempts[0].target,
        "gemini/gemini-2.5-flash-image@proj-a"
    );
    let usage = response.usage.unwrap();
    assert_eq!(usage.image_tokens, Some(1290));

    let received = server.received_requests().await.unwrap();
    assert_eq!(received.len(), 1);
    let sent = &received[0];
    assert_eq!(sent.headers.get("x-goog-api-key").unwrap(), KEY);
    assert!(!sent.url.as_str().contains(KEY), "{}", sent.url);
    assert_eq!(sent.url.query(), None);
    for (name, value) in &sent.headers {
        if name != "x-goog-api-key" {
            assert!(!value.to_str().unwrap_or("").contains(KEY), "{name}");
        }
    }
}

#[tokio::test]
async fn a_per_day_429_resets_at_pacific_midnight_from_the_providers_clock() {
    let server = serve("gemini/generate-content/429-quotafailure-rpd-quotavalue").await;
    // A summer afternoon in California: PDT, so midnight is 07:00 UTC.
    let clock = ManualClock::new(at("2026-06-10T21:00:00Z"));
    let error = provider(&server, &clock)
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(error.quota().dimension, Some(Dimension::Rpd));
    assert_eq!(error.quota().reset_at, Some(at("2026-06-11T07:00:00Z")));
    assert_eq!(error.retry_after(), Some(Duration::from_secs(10 * 3600)));
    assert_eq!(error.project(), Some("proj-a"));
    assert_eq!(error.provider(), Some("gemini"));
    assert!(clock.sleeps().is_empty(), "the provider never sleeps");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_per_minute_429_is_returned_at_once_with_its_wait_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).set_body_json(serde_json::json!({
            "error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota",
                "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "26s"}]}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let clock = ManualClock::new(at("2026-01-15T12:00:00Z"));
    let error = provider(&server, &clock)
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(26)));
    assert!(clock.sleeps().is_empty());
    assert!(!format!("{error} {error:?}").contains(KEY));
    // `expect(1)` is verified when the server drops.
}

#[tokio::test]
async fn a_billing_required_429_names_the_configured_project() {
    let server = serve("gemini/generate-content/429-limit0-freetier-image").await;
    let clock = ManualClock::new(at("2026-01-15T12:00:00Z"));
    let error = provider(&server, &clock)
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::BillingRequired);
    assert!(
        error.advice().contains("project proj-a"),
        "{}",
        error.advice()
    );
}

#[tokio::test]
async fn requests_the_model_cannot_serve_are_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let clock = ManualClock::new(at("2026-01-15T12:00:00Z"));
    let gemini = provider(&server, &clock);
    let cases = [
        GenerateRequest::new("x").with_count(2),
        GenerateRequest::new("x")
            .with_model("gemini-3-pro-image-preview")
            .with_size(ImageSize::Half),
        GenerateRequest::new("x").with_aspect_ratio("7:3".parse().unwrap()),
        GenerateRequest::new("x")
            .with_model("imagen-4.0-generate-001")
            .with_count(5),
        GenerateRequest::new("x").with_model("a/b?key=1"),
        GenerateRequest::new(" "),
    ];
    for request in cases {
        let error = gemini.generate(&request).await.unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidRequest,
            "{request:?}: {error}"
        );
        assert_eq!(error.provider(), Some("gemini"));
    }
    let error = gemini
        .generate(&GenerateRequest::new("x").with_count(3))
        .await
        .unwrap_err();
    assert!(error.message().contains("several calls"), "{error}");
}

#[tokio::test]
async fn imagen_goes_through_predict_with_a_sample_count() {
    let server = serve("gemini/predict/200-four-samples").await;
    let clock = ManualClock::new(at("2026-01-15T12:00:00Z"));
    let response = provider(&server, &clock)
        .generate(
            &GenerateRequest::new("a hamster in a hat")
                .with_model("imagen-4.0-generate-001")
                .with_count(4),
        )
        .await
        .unwrap();
    assert_eq!(response.images.len(), 4);
    assert_eq!(response.served_by.model, "imagen-4.0-generate-001");
    let sent = &server.received_requests().await.unwrap()[0];
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["parameters"]["sampleCount"], 4);
}

#[tokio::test]
async fn a_relay_base_url_keeps_its_path_prefix() {
    let server = MockServer::start().await;
    let fixture = Fixture::by_id("gemini/generate-content/200-success-editing").unwrap();
    Mock::given(method("POST"))
        .and(path(
            "/relay/google/v1beta/models/gemini-2.5-flash-image:generateContent",
        ))
        .and(header("x-goog-api-key", KEY))
        .respond_with(imagegate_testkit::response_template(&fixture))
        .expect(1)
        .mount(&server)
        .await;
    let gemini = GeminiProvider::new(ApiKey::new(KEY))
        .with_base_url(&format!("{}/relay/google/", server.uri()))
        .unwrap();
    let response = gemini.generate(&GenerateRequest::new("x")).await.unwrap();
    assert_eq!(response.request_id.as_deref(), Some("synth-edit"));
}

#[tokio::test(start_paused = true)]
async fn a_slow_upstream_is_a_timeout_without_the_key() {
    // Paused time: tokio jumps to the 30 s deadline as soon as the request waits, so the test
    // takes no real time and the server's 10-minute delay is never reached.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(600)))
        .mount(&server)
        .await;
    let gemini = GeminiProvider::new(ApiKey::new(KEY))
        .with_base_url(&server.uri())
        .unwrap()
        .with_timeout(Duration::from_secs(30));
    let error = gemini
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
    assert!(error.is_temporary());
    assert!(error.message().contains("30 s"), "{error}");
    assert!(!format!("{error} {error:?}").contains(KEY));
}

#[tokio::test]
async fn a_refused_connection_is_connect() {
    // Bind a loopback port, then free it: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let gemini = GeminiProvider::new(ApiKey::new(KEY))
        .with_base_url(&format!("http://{address}"))
        .unwrap();
    let error = gemini
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Connect, "{error}");
    assert!(error.is_temporary());
    assert!(!format!("{error} {error:?}").contains(KEY));
}

#[test]
fn capabilities_say_one_image_per_gemini_call() {
    let gemini = GeminiProvider::new(ApiKey::new(KEY));
    assert_eq!(gemini.name(), "gemini");
    assert_eq!(gemini.default_model(), "gemini-2.5-flash-image");
    assert_eq!(gemini.capabilities(None).max_images_per_call, 1);
    assert_eq!(
        gemini
            .capabilities(Some("imagen-4.0-generate-001"))
            .max_images_per_call,
        4
    );
    let custom = gemini.with_model("gemini-3-pro-image-preview");
    assert_eq!(
        custom.capabilities(None).sizes,
        [ImageSize::OneK, ImageSize::TwoK, ImageSize::FourK]
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_the_key_never_reaches_another_origin() {
    // reqwest's default policy strips only Authorization and cookies on a cross-origin hop;
    // `x-goog-api-key` would travel. The shared shell follows no redirect at all.
    for status in [307u16, 302] {
        let elsewhere = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&elsewhere)
            .await;
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("location", format!("{}/collect", elsewhere.uri())),
            )
            .mount(&server)
            .await;
        let error = provider(&server, &ManualClock::new(at("2026-11-23T10:00:00Z")))
            .generate(&GenerateRequest::new("x"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unexpected, "{status}: {error}");
        assert!(error.message().contains("redirect"), "{error}");
        assert!(!format!("{error} {error:?}").contains(KEY));
        let reached = elsewhere.received_requests().await.unwrap();
        assert!(
            reached.is_empty(),
            "{status}: the key reached the second server"
        );
        assert_eq!(server.received_requests().await.unwrap().len(), 1);
    }
}

#[tokio::test]
async fn a_connection_reset_mid_body_is_unavailable_as_for_openrouter() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let upstream = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 16 * 1024];
        let _ = socket.read(&mut request).await;
        let _ = socket
            .write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 50000\r\n\r\n{\"candidates\": [{\"content\"",
            )
            .await;
        drop(socket);
    });
    let error = GeminiProvider::new(ApiKey::new(KEY))
        .with_base_url(&format!("http://{address}"))
        .unwrap()
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.is_temporary());
    assert_eq!(error.provider(), Some("gemini"));
    upstream.await.unwrap();
}

#[tokio::test]
async fn an_answer_over_the_bound_is_an_error_naming_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b' '; 8192]))
        .mount(&server)
        .await;
    let error = provider(&server, &ManualClock::new(at("2026-11-23T10:00:00Z")))
        .with_max_response_bytes(4096)
        .generate(&GenerateRequest::new("x"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{error}");
    assert!(error.message().contains("4096 bytes"), "{error}");
}

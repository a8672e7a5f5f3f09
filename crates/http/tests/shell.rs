//! The shell's promises against loopback servers: redirects are never followed (the key never
//! reaches a second origin), bodies are bounded, a reset mid-body is `unavailable`, and one
//! send is one request.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use http::Method;
use imagegate_core::ErrorKind;
use imagegate_http::{HttpShell, sensitive_header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "test-key-must-not-travel";

async fn send_with_key(
    shell: &HttpShell,
    url: &str,
) -> imagegate_core::Result<imagegate_http::Answer> {
    let request = shell
        .request(Method::POST, url)?
        .header("x-goog-api-key", sensitive_header(KEY)?)
        .header(
            http::header::AUTHORIZATION,
            sensitive_header(&format!("Bearer {KEY}"))?,
        )
        .body("{}");
    shell.send(request, "the test server").await
}

#[tokio::test]
async fn redirects_to_another_origin_are_refused_and_the_key_never_reaches_it() {
    for status in [307u16, 302] {
        let elsewhere = MockServer::start().await;
        Mock::given(any())
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .mount(&elsewhere)
            .await;
        let first = MockServer::start().await;
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(status)
                    .insert_header("location", format!("{}/steal?x=1", elsewhere.uri())),
            )
            .mount(&first)
            .await;
        let shell = HttpShell::new();
        let err = send_with_key(&shell, &format!("{}/v1/generate", first.uri()))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unexpected, "{status}: {err}");
        assert_eq!(err.http_status(), Some(status));
        assert!(err.message().contains("redirect"), "{err}");
        assert!(
            err.message().contains(&elsewhere.uri()),
            "names the origin: {err}"
        );
        assert!(!err.message().contains("steal"), "no path or query: {err}");
        assert!(!err.to_string().contains(KEY), "{err}");
        let reached = elsewhere.received_requests().await.unwrap_or_default();
        assert!(
            reached.is_empty(),
            "{status}: the second server saw {} request(s)",
            reached.len()
        );
        assert_eq!(first.received_requests().await.unwrap_or_default().len(), 1);
    }
}

#[tokio::test]
async fn a_body_over_the_bound_is_an_error_naming_the_bound() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 4096]))
        .mount(&server)
        .await;
    let shell = HttpShell::new().with_max_response_bytes(1024);
    let err = send_with_key(&shell, &server.uri()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
    assert!(err.message().contains("1024 bytes"), "{err}");
    assert!(err.message().contains("max_response_bytes"), "{err}");

    // At the bound exactly, the answer is whole.
    let shell = HttpShell::new().with_max_response_bytes(4096);
    let answer = send_with_key(&shell, &server.uri()).await.unwrap();
    assert_eq!(answer.body.len(), 4096);
    assert_eq!(shell.max_response_bytes(), 4096);
    assert_eq!(
        HttpShell::new().max_response_bytes(),
        imagegate_http::DEFAULT_MAX_RESPONSE_BYTES
    );
}

/// A server that answers one request with `head`, then `body`, then closes; it returns what it
/// read of the request.
async fn raw_server(
    head: &'static str,
    body: Vec<u8>,
) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut seen = vec![0u8; 8192];
        let n = socket.read(&mut seen).await.unwrap_or(0);
        let _ = socket.write_all(head.as_bytes()).await;
        let _ = socket.write_all(&body).await;
        let _ = socket.flush().await;
        drop(socket);
        String::from_utf8_lossy(&seen[..n]).into_owned()
    });
    (format!("http://{address}"), task)
}

#[tokio::test]
async fn a_chunked_body_without_a_length_is_cut_at_the_bound() {
    // 64 chunks of 1 KiB, no Content-Length: the shell must count as it reads.
    let mut body = Vec::new();
    for _ in 0..64 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&[b'y'; 1024]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let (url, task) = raw_server(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n",
        body,
    )
    .await;
    let shell = HttpShell::new().with_max_response_bytes(10 * 1024);
    let err = send_with_key(&shell, &url).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidResponse, "{err}");
    assert!(err.message().contains("10 KiB"), "{err}");
    task.abort();
}

#[tokio::test]
async fn a_connection_reset_mid_body_is_unavailable() {
    let (url, task) = raw_server(
        "HTTP/1.1 200 OK\r\ncontent-length: 100000\r\ncontent-type: application/json\r\n\r\n",
        b"{\"candidates\": [".to_vec(),
    )
    .await;
    let err = send_with_key(&HttpShell::new(), &url).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(err.is_temporary());
    assert!(err.message().contains("cut off"), "{err}");
    // The status it began with: the upstream served this one (the router keeps it counted).
    assert_eq!(err.http_status(), Some(200));
    let request = task.await.unwrap();
    assert!(request.starts_with("POST / HTTP/1.1"), "{request}");
}

#[tokio::test]
async fn a_refused_connection_is_connect_and_one_send_is_one_request() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let err = send_with_key(&HttpShell::new(), &format!("http://{address}"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect, "{err}");
    assert!(err.message().contains("the test server"), "{err}");

    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(503).set_body_string("{}"))
        .mount(&server)
        .await;
    let answer = send_with_key(&HttpShell::new(), &server.uri())
        .await
        .unwrap();
    assert_eq!(answer.status, 503);
    assert_eq!(
        server.received_requests().await.unwrap_or_default().len(),
        1
    );
}

//! One structured log line per request, carrying the request id, the client's name, the
//! dialect, the route, the target, the status and the kind, and never the key, the query or the
//! prompt.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::{settings, stack};
use imagegate_server::{ClientConfig, key_sha256};
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// A current-thread runtime: the subscriber set for this thread sees the gateway's tasks too.
#[tokio::test]
async fn one_line_per_request_naming_the_client_never_the_key() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_env_filter("imagegate::gateway=info")
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut config = settings();
    let client: ClientConfig = toml::from_str(&format!(
        "name = \"web\"\nkey_sha256 = \"{}\"",
        key_sha256("ig_secret_web_key")
    ))
    .unwrap();
    config.clients = vec![client];
    let s = stack(config).await;
    let http = reqwest::Client::new();
    let r = http
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash-image:generateContent?key=ig_secret_web_key",
            s.url
        ))
        .header("x-request-id", "req-42")
        .json(&json!({"contents": [{"parts": [{"text": "a very private prompt"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{}/v1/images/generations", s.url))
        .header("authorization", "Bearer ig_wrong_key")
        .json(&json!({"model": "gpt-image-1", "prompt": "another private prompt"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    s.stop().await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("request_id")).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let ok = lines[0];
    for field in [
        "request_id=\"req-42\"",
        "client=\"web\"",
        "dialect=\"gemini\"",
        "route=\"flash\"",
        "target=\"flash\"",
        "status=200",
        "kind=\"ok\"",
        "path=\"/v1beta/models/gemini-2.5-flash-image:generateContent\"",
    ] {
        assert!(ok.contains(field), "{field} missing from {ok}");
    }
    assert!(
        lines[1].contains("status=401") && lines[1].contains("kind=\"unauthorized\""),
        "{}",
        lines[1]
    );
    for secret in [
        "ig_secret_web_key",
        "ig_wrong_key",
        "private prompt",
        "key=",
    ] {
        assert!(
            !text.contains(secret),
            "`{secret}` reached the log:\n{text}"
        );
    }
}

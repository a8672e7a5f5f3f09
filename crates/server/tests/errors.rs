//! Each row of the dialect table (docs/gateway.md, "Errors"): the same failure asked for in the
//! three dialects, snapshotted (status, the retry headers, the body); then the 429 hints in
//! detail, the queue limit, auth, the body limit and a graceful stop with a request in flight.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{settings, stack, stack_on};
use imagegate_core::clock::TokioClock;
use imagegate_server::{ClientConfig, ServerConfig, key_sha256};
use serde_json::{Value, json};

/// The headers that carry retry hints, as the snapshot shows them.
const HINTS: [&str; 7] = [
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "content-type",
];

async fn answer(r: reqwest::Response) -> Value {
    let status = r.status().as_u16();
    let mut headers = serde_json::Map::new();
    for name in HINTS {
        if let Some(v) = r.headers().get(name) {
            headers.insert(name.to_owned(), json!(v.to_str().unwrap()));
        }
    }
    let body: Value = r.json().await.unwrap();
    json!({"status": status, "headers": headers, "body": body})
}

/// The same request in the three dialects: model `model`, extra headers, and `body_text` as the
/// prompt (or a replacement body when `raw` is given).
async fn three(url: &str, model: &str, headers: &[(&str, &str)], raw: Option<&str>) -> Value {
    let client = reqwest::Client::new();
    let with = |mut b: reqwest::RequestBuilder| {
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b
    };
    let send = |b: reqwest::RequestBuilder, body: Value| match raw {
        Some(raw) => b
            .header("content-type", "application/json")
            .body(raw.to_owned()),
        None => b.json(&body),
    };
    let openai = with(client.post(format!("{url}/v1/images/generations")));
    let openai = send(openai, json!({"model": model, "prompt": "a lighthouse"}))
        .send()
        .await
        .unwrap();
    let gemini = with(client.post(format!("{url}/v1beta/models/{model}:generateContent")));
    let gemini = send(
        gemini,
        json!({"contents": [{"parts": [{"text": "a lighthouse"}]}]}),
    )
    .send()
    .await
    .unwrap();
    let chat = with(client.post(format!("{url}/api/v1/chat/completions")));
    let chat = send(
        chat,
        json!({"model": model, "modalities": ["image"], "messages": [{"role": "user", "content": "a lighthouse"}]}),
    )
    .send()
    .await
    .unwrap();
    json!({"openai": answer(openai).await, "gemini": answer(gemini).await, "chat": answer(chat).await})
}

fn client(name: &str, key: &str, routes: Option<&[&str]>, budget: Option<f64>) -> ClientConfig {
    let text = format!(
        "name = \"{name}\"\nkey_sha256 = \"{}\"\n{}{}",
        key_sha256(key),
        routes.map_or(String::new(), |r| format!("routes = {r:?}\n")),
        budget.map_or(String::new(), |b| format!("budget_usd_per_day = {b:?}\n")),
    );
    toml::from_str(&text).unwrap()
}

fn with_clients() -> ServerConfig {
    let mut s = settings();
    s.clients = vec![
        client("app", "ig_app_key", None, None),
        client("narrow", "ig_narrow_key", Some(&["flash"]), None),
        client("broke", "ig_broke_key", None, Some(0.0)),
    ];
    s
}

/// Every row, each snapshotted in the three dialects.
#[tokio::test]
async fn each_row_of_the_dialect_table() {
    let s = stack(with_clients()).await;
    let app = [("authorization", "Bearer ig_app_key")];
    let mut rows = Vec::new();
    rows.push((
        "unauthorized",
        three(
            &s.url,
            "gpt-image-1",
            &[("authorization", "Bearer wrong")],
            None,
        )
        .await,
    ));
    rows.push((
        "forbidden",
        three(
            &s.url,
            "dall-e-3",
            &[("authorization", "Bearer ig_narrow_key")],
            None,
        )
        .await,
    ));
    rows.push(("not_found", three(&s.url, "dall-e-2", &app, None).await));
    rows.push((
        "invalid_request",
        three(&s.url, "gpt-image-1", &app, Some("{\"model\": 5")).await,
    ));
    // Spend the per-minute and per-day pools once each, then ask again.
    for route in ["pro", "daily"] {
        let r = reqwest::Client::new()
            .post(format!("{}/v1/images/generations", s.url))
            .header("authorization", "Bearer ig_app_key")
            .json(&json!({"model": route, "prompt": "first"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{route}");
    }
    rows.push(("rate_limited", three(&s.url, "pro", &app, None).await));
    rows.push(("quota_exhausted", three(&s.url, "daily", &app, None).await));
    rows.push((
        "budget_reached",
        three(
            &s.url,
            "gpt-image-1",
            &[("authorization", "Bearer ig_broke_key")],
            None,
        )
        .await,
    ));
    rows.push((
        "billing_required",
        three(&s.url, "billing", &app, None).await,
    ));
    rows.push((
        "content_blocked",
        three(&s.url, "blocked", &app, None).await,
    ));
    rows.push(("upstream", three(&s.url, "down", &app, None).await));
    rows.push(("timeout", three(&s.url, "slow", &app, None).await));
    rows.push(("internal", three(&s.url, "broken", &app, None).await));
    for (name, row) in &rows {
        for dialect in ["openai", "gemini", "chat"] {
            assert!(
                row[dialect]["status"].as_u64().unwrap() >= 400,
                "{name} {dialect}: {row}"
            );
        }
        // The router's capacity messages name instants in this machine's zone: pinned apart.
        let redact = matches!(*name, "rate_limited" | "quota_exhausted");
        if redact {
            for dialect in ["openai", "gemini", "chat"] {
                let m = row[dialect]["body"]["error"]["message"].as_str().unwrap();
                assert!(m.contains("capacity returns at"), "{m}");
            }
        }
        insta::with_settings!({snapshot_suffix => *name}, {
            if redact {
                insta::assert_json_snapshot!("row", row, {".*.body.error.message" => "[the router's message: when capacity returns]"});
            } else {
                insta::assert_json_snapshot!("row", row);
            }
        });
    }
    s.stop().await;
}

#[tokio::test]
async fn too_large_queue_full_and_shutting_down_rows() {
    let mut config = settings();
    config.max_body = 2_048;
    config.max_queue = 1;
    config.shutdown_grace = Duration::ZERO;
    let mut s = stack(config).await;
    let big = format!("{{\"prompt\": \"{}\"}}", "x".repeat(4_096));
    let too_large = three(&s.url, "gpt-image-1", &[], Some(&big)).await;
    insta::assert_json_snapshot!("row@too_large", too_large);

    // One request held in flight fills the queue of one.
    let url = s.url.clone();
    let held = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{url}/v1/images/generations"))
            .json(&json!({"model": "held", "prompt": "slow"}))
            .send()
            .await
            .unwrap()
    });
    s.gate.started.notified().await;
    let queue_full = three(&s.url, "gpt-image-1", &[], None).await;
    insta::assert_json_snapshot!("row@queue_full", queue_full);

    // With no grace, stopping answers the held request 503 with Retry-After.
    s.signal_stop();
    let r = held.await.unwrap();
    let shutting_down = answer(r).await;
    insta::assert_json_snapshot!("row@shutting_down", shutting_down);
    s.stopped().await.unwrap();
}

#[tokio::test]
async fn a_request_in_flight_finishes_during_a_graceful_stop() {
    let mut s = stack(settings()).await;
    let url = s.url.clone();
    let held = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{url}/v1/images/generations"))
            .json(&json!({"model": "held", "prompt": "slow"}))
            .send()
            .await
            .unwrap()
    });
    s.gate.started.notified().await;
    s.signal_stop();
    // Readiness says stopping while the request is still in flight.
    let ready = reqwest::get(format!("{}/readyz", s.url)).await;
    if let Ok(ready) = ready {
        assert_eq!(ready.status(), 503);
    }
    s.gate.release(1);
    let r = held.await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["data"][0]["b64_json"].is_string());
    s.stopped().await.unwrap();
}

#[tokio::test]
async fn the_429_hints_are_exact_and_a_longer_wait_is_served() {
    let s = stack(settings()).await;
    let client = reqwest::Client::new();
    let generate = |wait: Option<&'static str>| {
        let mut b = client
            .post(format!("{}/v1/images/generations", s.url))
            .json(&json!({"model": "dall-e-3", "prompt": "a lighthouse"}));
        if let Some(w) = wait {
            b = b.header("x-imagegate-max-wait", w);
        }
        b.send()
    };
    assert_eq!(generate(None).await.unwrap().status(), 200);
    // The pool allows 1 a minute and the clock has not moved: capacity returns in exactly 60 s,
    // beyond the default maximum wait of 30 s.
    let r = generate(None).await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "60");
    assert_eq!(r.headers()["retry-after-ms"], "60000");
    assert!(
        r.headers().get("x-should-retry").is_none(),
        "a minute is worth the SDK's retry"
    );
    // The client's own timeout sets the wait: google-genai's 20 s leaves 10 s, too short.
    let r = client
        .post(format!("{}/v1beta/models/dall-e-3:generateContent", s.url))
        .header("x-server-timeout", "20")
        .json(&json!({"contents": [{"parts": [{"text": "a lighthouse"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    let details = body["error"]["details"].as_array().unwrap();
    let quota = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.QuotaFailure")
        .unwrap();
    assert_eq!(
        quota["violations"][0]["quotaId"],
        "GenerateRequestsPerMinutePerProjectPerModel"
    );
    assert_eq!(quota["violations"][0]["quotaValue"], "1");
    assert_eq!(
        quota["violations"][0]["quotaDimensions"]["model"],
        "dall-e-3"
    );
    let retry = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .unwrap();
    assert_eq!(retry["retryDelay"], "60s");
    // The openai SDK's 600 s read timeout leaves 540 s: the gateway waits the minute and serves.
    let r = client
        .post(format!("{}/v1/images/generations", s.url))
        .header("x-stainless-read-timeout", "600.0")
        .json(&json!({"model": "dall-e-3", "prompt": "a lighthouse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // (The emulator's zero latencies are sleeps of nothing on the same clock.)
    let waits: Vec<Duration> = s
        .clock
        .sleeps()
        .into_iter()
        .filter(|d| !d.is_zero())
        .collect();
    assert_eq!(
        waits,
        vec![Duration::from_secs(60)],
        "waited exactly the window"
    );
    // A bad maximum wait is a 400 naming the header.
    let r = generate(Some("soon")).await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["param"], "x-imagegate-max-wait");
    s.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_maximum_wait_bounds_the_whole_queueing_not_each_wait() {
    // Two requests wait for the one slot of the next window (RPM 1). The one that loses it
    // would have to wait a second window: 60 s more, each wait alone within its maximum
    // wait (90 s, 70 s) but the total of 120 s beyond it. It is answered 429 when it loses,
    // not served a window later. (Tokio's paused clock, not the manual one: both requests
    // must be waiting at once, and a manual clock's sleep moves time before the second
    // arrives.)
    let start: jiff::Timestamp = common::START.parse().unwrap();
    let clock = Arc::new(TokioClock::starting_at(start));
    let s = stack_on(settings(), Some(clock.clone())).await;
    let client = reqwest::Client::new();
    let generate = |wait: &'static str| {
        client
            .post(format!("{}/v1/images/generations", s.url))
            .header("x-imagegate-max-wait", wait)
            .json(&json!({"model": "dall-e-3", "prompt": "a lighthouse"}))
            .send()
    };
    assert_eq!(generate("0").await.unwrap().status(), 200);
    let (a, b) = tokio::join!(generate("90"), generate("70"));
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 429],
        "one served at 60 s, the other refused then"
    );
    let waited = clock.elapsed();
    assert!(waited < Duration::from_secs(70), "waited {waited:?}");
    s.stop().await;
}

#[tokio::test]
async fn keys_arrive_in_any_of_the_three_places_and_are_never_echoed() {
    let s = stack(with_clients()).await;
    let client = reqwest::Client::new();
    let body = json!({"contents": [{"parts": [{"text": "a lighthouse"}]}]});
    let gemini = format!(
        "{}/v1beta/models/gemini-2.5-flash-image:generateContent",
        s.url
    );
    let ok = [
        client.post(&gemini).header("x-goog-api-key", "ig_app_key"),
        client.post(format!("{gemini}?key=ig_app_key")),
        client
            .post(&gemini)
            .header("authorization", "Bearer ig_app_key"),
    ];
    for request in ok {
        let r = request.json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = client.post(&gemini).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(text.contains("UNAUTHENTICATED"), "{text}");
    let r = client
        .post(format!("{gemini}?key=ig_app_kex"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        !text.contains("ig_app_kex"),
        "the key is not echoed: {text}"
    );
    // A client limited to some routes sees only their model names.
    let list: Value = client
        .get(format!("{}/v1/models", s.url))
        .header("authorization", "Bearer ig_narrow_key")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gemini-2.5-flash-image", "gpt-image-1", "flash"]);
    s.stop().await;
}

#[tokio::test]
async fn health_readiness_status_and_metrics() {
    let s = stack(settings()).await;
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v1/images/generations", s.url))
        .header("x-request-id", "trace-123")
        .json(&json!({"model": "dall-e-3", "prompt": "a lighthouse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-123");
    let r = client
        .post(format!("{}/v1/images/generations", s.url))
        .json(&json!({"model": "dall-e-3", "prompt": "again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        reqwest::get(format!("{}/healthz", s.url))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{}/readyz", s.url))
            .await
            .unwrap()
            .status(),
        200
    );
    let status: Value = reqwest::get(format!("{}/status.json", s.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status["queue"],
        json!({"held": 0, "max_queue": 1024, "by_priority": []})
    );
    let pro = status["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"]["pool"] == "gemini-3-pro-image-preview")
        .unwrap();
    let rpm = pro["dimensions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dimension"] == "rpm")
        .unwrap();
    assert_eq!(
        (rpm["used"].as_u64(), rpm["limit"].as_u64()),
        (Some(1), Some(1)),
        "{pro}"
    );
    let events = status["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "attempt_finished" && e["target"] == "pro"),
        "{status}"
    );
    let metrics = reqwest::get(format!("{}/metrics", s.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for needle in [
        "imagegate_gateway_requests_total{client=\"anonymous\",route=\"pro\",dialect=\"openai\",status=\"200\"} 1",
        "imagegate_gateway_requests_total{client=\"anonymous\",route=\"pro\",dialect=\"openai\",status=\"429\"} 1",
        "imagegate_upstream_calls_total{target=\"pro\",outcome=\"success\"} 1",
        "imagegate_pool_limit{pool=\"gemini/gw/gemini-3-pro-image-preview\",dimension=\"rpm\"} 1",
        "imagegate_gateway_request_duration_seconds_bucket",
        "imagegate_gateway_queue_depth 0",
    ] {
        assert!(
            metrics.contains(needle),
            "{needle} missing from:\n{metrics}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_still_waiting_for_capacity_is_answered_503_at_once_when_the_stop_begins() {
    // The router and the gateway on the real clock, so a request really waits for its window.
    let mut s = stack_on(
        settings(),
        Some(Arc::new(imagegate_core::clock::SystemClock)),
    )
    .await;
    let client = reqwest::Client::new();
    let post = |model: &'static str| {
        client
            .post(format!("{}/v1/images/generations", s.url))
            .header("x-imagegate-max-wait", "300")
            .json(&json!({"model": model, "prompt": "a lighthouse"}))
            .send()
    };
    // One call in flight, held by the gate.
    let in_flight = tokio::spawn(post("held"));
    s.gate.started.notified().await;
    // The pool of dall-e-3 allows 1 a minute: the first takes it, the second waits a minute.
    assert_eq!(post("dall-e-3").await.unwrap().status(), 200);
    let waiting = tokio::spawn(post("dall-e-3"));
    let mut held = 0;
    for _ in 0..10_000 {
        let status: Value = reqwest::get(format!("{}/status.json", s.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        held = status["queue"]["held"].as_u64().unwrap();
        if held == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(held, 2, "one request in flight and one waiting");

    s.signal_stop();
    // The waiting one is answered at once (a minute before its window), with a retry hint.
    let r = waiting.await.unwrap().unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "shutting_down", "{body}");
    // The one in flight still finishes within the grace period.
    s.gate.release(1);
    let r = in_flight.await.unwrap().unwrap();
    assert_eq!(r.status(), 200);
    s.stopped().await.unwrap();
}

//! The emulator over real HTTP on loopback: both dialects' success and error shapes, keys,
//! the body limit, stats, log and reset, and no overshoot under 500 concurrent requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{GEMINI_MODEL, OPENROUTER_MODEL, config, gemini_body, png_size, start};
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .retry(reqwest::retry::never())
        .build()
        .unwrap()
}

async fn post_gemini(
    url: &str,
    key: Option<&str>,
    path_model: &str,
    body: &Value,
) -> reqwest::Response {
    let mut request = client()
        .post(format!("{url}/v1beta/models/{path_model}:generateContent"))
        .json(body);
    if let Some(key) = key {
        request = request.header("x-goog-api-key", key);
    }
    request.send().await.unwrap()
}

async fn body_json(response: reqwest::Response) -> Value {
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

const ONE_GEMINI_POOL: &str = r#"
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image", "imagen-4.0-generate-001"]
rpm = 2
"#;

#[tokio::test]
async fn gemini_answers_with_a_png_of_the_asked_size_and_real_usage() {
    let emu = start(&config(ONE_GEMINI_POOL)).await;
    let response = post_gemini(
        &emu.url,
        Some("any-key"),
        GEMINI_MODEL,
        &gemini_body("a lighthouse", "16:9", "0.5K"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let body = body_json(response).await;
    let parts = body["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert!(parts[0]["text"].is_string(), "TEXT was asked for: {body}");
    let inline = &parts[1]["inlineData"];
    assert_eq!(inline["mimeType"], "image/png");
    assert_eq!(png_size(&b64(inline["data"].as_str().unwrap())), (512, 288));
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["modelVersion"], GEMINI_MODEL);
    let usage = &body["usageMetadata"];
    assert_eq!(usage["candidatesTokensDetails"][0]["modality"], "IMAGE");
    assert_eq!(usage["candidatesTokensDetails"][0]["tokenCount"], 1290);
    assert_eq!(
        usage["totalTokenCount"].as_u64().unwrap(),
        usage["promptTokenCount"].as_u64().unwrap()
            + usage["candidatesTokenCount"].as_u64().unwrap()
    );

    // The key in the query works as well as the header; /v1 as well as /v1beta.
    let response = client()
        .post(format!(
            "{}/v1/models/{GEMINI_MODEL}:generateContent?key=any-key",
            emu.url
        ))
        .json(&json!({"contents": [{"parts": [{"text": "x"}]}],
                      "generationConfig": {"responseModalities": ["IMAGE"]}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body = body_json(response).await;
    let parts = body["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(parts.len(), 1, "IMAGE only: no text part");
    assert_eq!(
        png_size(&b64(parts[0]["inlineData"]["data"].as_str().unwrap())),
        (1024, 1024)
    );
}

#[tokio::test]
async fn the_third_call_in_a_minute_gets_googles_429_with_the_true_wait() {
    let emu = start(&config(ONE_GEMINI_POOL)).await;
    let body = gemini_body("x", "1:1", "0.5K");
    assert_eq!(
        post_gemini(&emu.url, Some("k"), GEMINI_MODEL, &body)
            .await
            .status(),
        200
    );
    emu.clock.advance(Duration::from_secs(10));
    assert_eq!(
        post_gemini(&emu.url, Some("k"), GEMINI_MODEL, &body)
            .await
            .status(),
        200
    );
    emu.clock.advance(Duration::from_secs(10));
    let response = post_gemini(&emu.url, Some("k"), GEMINI_MODEL, &body).await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    assert!(
        response.headers().get("retry-after").is_none(),
        "Google sends no Retry-After"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.starts_with("{\n  \"error\": {\n") && text.ends_with("}\n"),
        "Google's layout: two-space indent, trailing newline: {text}"
    );
    let error = serde_json::from_str::<Value>(&text).unwrap()["error"].clone();
    assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
    let details = error["details"].as_array().unwrap();
    let failure = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.QuotaFailure")
        .unwrap();
    assert_eq!(
        failure["violations"][0]["quotaId"],
        "GenerateRequestsPerMinutePerProjectPerModel"
    );
    assert_eq!(failure["violations"][0]["quotaValue"], "2");
    let retry = details
        .iter()
        .find(|d| d["@type"] == "type.googleapis.com/google.rpc.RetryInfo")
        .unwrap();
    assert_eq!(
        retry["retryDelay"], "40s",
        "the first call leaves the window at 60 s"
    );
    // The refused call counted nothing: the window opens exactly when the 429 said.
    emu.clock.advance(Duration::from_secs(40));
    assert_eq!(
        post_gemini(&emu.url, Some("k"), GEMINI_MODEL, &body)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn keys_map_to_projects_and_bad_keys_get_googles_answers() {
    let emu = start(&config(
        r#"
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]
rpm = 1
[[upstream.pool]]
provider = "gemini"
project = "proj-b"
models = ["gemini-2.5-flash-image"]
rpm = 1
[[upstream.key]]
provider = "gemini"
project = "proj-a"
key = "key-a1"
[[upstream.key]]
provider = "gemini"
project = "proj-a"
key = "key-a2"
[[upstream.key]]
provider = "gemini"
project = "proj-b"
key = "key-b"
"#,
    ))
    .await;
    let body = gemini_body("x", "1:1", "0.5K");
    assert_eq!(
        post_gemini(&emu.url, Some("key-a1"), GEMINI_MODEL, &body)
            .await
            .status(),
        200
    );
    // Keys of one project share its pool; another project's key has its own.
    assert_eq!(
        post_gemini(&emu.url, Some("key-a2"), GEMINI_MODEL, &body)
            .await
            .status(),
        429
    );
    assert_eq!(
        post_gemini(&emu.url, Some("key-b"), GEMINI_MODEL, &body)
            .await
            .status(),
        200
    );

    let response = post_gemini(&emu.url, Some("not-a-key"), GEMINI_MODEL, &body).await;
    assert_eq!(response.status(), 400);
    let error = body_json(response).await["error"].clone();
    assert_eq!(error["status"], "INVALID_ARGUMENT");
    assert_eq!(error["details"][0]["reason"], "API_KEY_INVALID");

    let response = post_gemini(&emu.url, None, GEMINI_MODEL, &body).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        body_json(response).await["error"]["status"],
        "PERMISSION_DENIED"
    );

    let stats = emu.emulator.stats();
    assert_eq!(stats.pools[0].counters.admitted, 1);
    assert_eq!(stats.pools[0].counters.rate_limited, 1);
    assert_eq!(stats.pools[1].counters.admitted, 1);
    assert_eq!(stats.unattributed.client_errors, 2);
    assert_eq!(stats.totals.requests, 5);
}

#[tokio::test]
async fn bad_bodies_unknown_models_limit_zero_and_overloads_answer_as_google_does() {
    let emu = start(&config(
        r#"
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-3-pro-image-preview"]
rpd = 0
"#,
    ))
    .await;
    let response = client()
        .post(format!(
            "{}/v1beta/models/{GEMINI_MODEL}:generateContent",
            emu.url
        ))
        .header("x-goog-api-key", "k")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error = body_json(response).await["error"].clone();
    assert_eq!(error["status"], "INVALID_ARGUMENT");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON payload received.")
    );

    let response = post_gemini(&emu.url, Some("k"), GEMINI_MODEL, &json!({"contents": []})).await;
    assert_eq!(response.status(), 400);

    let response = post_gemini(
        &emu.url,
        Some("k"),
        "gemini-9-nonexistent",
        &gemini_body("x", "1:1", "1K"),
    )
    .await;
    assert_eq!(response.status(), 404);
    assert_eq!(body_json(response).await["error"]["status"], "NOT_FOUND");

    let response = post_gemini(
        &emu.url,
        Some("k"),
        "gemini-3-pro-image-preview",
        &gemini_body("x", "1:1", "1K"),
    )
    .await;
    assert_eq!(response.status(), 429);
    let error = body_json(response).await["error"].clone();
    assert!(
        error["message"].as_str().unwrap().contains("limit: 0"),
        "{error}"
    );

    let stats = emu.emulator.stats();
    assert_eq!(
        stats.pools[0].counters.client_errors, 2,
        "bad bodies count against the model's pool"
    );
    assert_eq!(stats.pools[1].counters.unentitled, 1);

    let overloaded = start(&format!("seed = 3\n[upstream]\nlatency = \"0s\"\nreject_latency = \"0s\"\noverload_rate = 0.999\n{ONE_GEMINI_POOL}")).await;
    let response = post_gemini(
        &overloaded.url,
        Some("k"),
        GEMINI_MODEL,
        &gemini_body("x", "1:1", "1K"),
    )
    .await;
    assert_eq!(response.status(), 503);
    assert_eq!(body_json(response).await["error"]["status"], "UNAVAILABLE");
    assert_eq!(overloaded.emulator.stats().pools[0].counters.overloaded, 1);
    assert_eq!(
        overloaded.emulator.stats().pools[0].in_use.rpm,
        0,
        "an overload counts nothing"
    );
}

#[tokio::test]
async fn streams_imagen_and_the_model_list() {
    let emu = start(&config(ONE_GEMINI_POOL)).await;
    let response = client()
        .post(format!(
            "{}/v1beta/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse",
            emu.url
        ))
        .header("x-goog-api-key", "k")
        .json(&gemini_body("x", "4:3", "0.5K"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.unwrap();
    let events: Vec<Value> = text
        .split("\r\n\r\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    assert!(events[0]["candidates"][0].get("finishReason").is_none());
    assert_eq!(events[1]["candidates"][0]["finishReason"], "STOP");
    let image = events[0]["candidates"][0]["content"]["parts"][1]["inlineData"]["data"]
        .as_str()
        .unwrap();
    assert_eq!(png_size(&b64(image)), (512, 384));

    let response = client()
        .post(format!("{}/v1beta/models/imagen-4.0-generate-001:predict", emu.url))
        .header("x-goog-api-key", "k")
        .json(&json!({"instances": [{"prompt": "a hamster"}],
                      "parameters": {"sampleCount": 2, "aspectRatio": "9:16", "sampleImageSize": "0.5K"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let predictions = body_json(response).await["predictions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(predictions.len(), 2);
    let first = b64(predictions[0]["bytesBase64Encoded"].as_str().unwrap());
    assert_eq!(png_size(&first), (288, 512));
    assert_ne!(
        first,
        b64(predictions[1]["bytesBase64Encoded"].as_str().unwrap()),
        "two different samples"
    );

    let models = body_json(
        client()
            .get(format!("{}/v1beta/models", emu.url))
            .header("x-goog-api-key", "k")
            .send()
            .await
            .unwrap(),
    )
    .await;
    let names: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "models/gemini-2.5-flash-image",
            "models/imagen-4.0-generate-001"
        ]
    );
    let one = client()
        .get(format!("{}/v1/models/{GEMINI_MODEL}", emu.url))
        .header("x-goog-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let missing = client()
        .get(format!("{}/v1/models/gemini-0", emu.url))
        .header("x-goog-api-key", "k")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(
        body_json(missing).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("API version v1,")
    );
}

#[tokio::test]
async fn bodies_over_20_mib_get_413_in_each_providers_shape() {
    let emu = start(&config(&format!("{ONE_GEMINI_POOL}\n[[upstream.pool]]\nprovider = \"openrouter\"\nproject = \"acct\"\nmodels = [\"{OPENROUTER_MODEL}\"]\n"))).await;
    let huge = vec![b' '; imagegate_emulator::MAX_BODY_BYTES + 1];
    let response = client()
        .post(format!(
            "{}/v1beta/models/{GEMINI_MODEL}:generateContent",
            emu.url
        ))
        .header("x-goog-api-key", "k")
        .header("content-type", "application/json")
        .body(huge.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let error = body_json(response).await["error"].clone();
    assert_eq!(error["code"], 413);
    assert!(error["message"].as_str().unwrap().contains("20971520"));
    let response = client()
        .post(format!("{}/api/v1/chat/completions", emu.url))
        .bearer_auth("k")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(body_json(response).await["error"]["code"], 413);
    // Exactly the limit is still read (and then refused for what it says, not its size).
    let at_limit = vec![b' '; imagegate_emulator::MAX_BODY_BYTES];
    let response = client()
        .post(format!(
            "{}/v1beta/models/{GEMINI_MODEL}:generateContent",
            emu.url
        ))
        .header("x-goog-api-key", "k")
        .body(at_limit)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let log = body_json(
        client()
            .get(format!("{}/emulator/log", emu.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let outcomes: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["too_large", "too_large", "bad_request"]);
}

const OPENROUTER_POOLS: &str = r#"
[[upstream.pool]]
provider = "openrouter"
project = "acct"
models = ["google/gemini-2.5-flash-image"]
rpm = 1
[[upstream.pool]]
provider = "openrouter"
project = "acct"
models = ["google/gemini-3-pro-image-preview"]
rpd = 0
[[upstream.key]]
provider = "openrouter"
project = "acct"
key = "or-key-1"
"#;

async fn chat(url: &str, key: Option<&str>, model: &str) -> reqwest::Response {
    let mut request = client()
        .post(format!("{url}/api/v1/chat/completions"))
        .json(&json!({
            "model": model,
            "messages": [{"role": "user", "content": "a nano banana dish"}],
            "modalities": ["image", "text"],
            "image_config": {"aspect_ratio": "3:2", "image_size": "0.5K"}
        }));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn openrouter_answers_images_429s_with_headers_402s_and_401s() {
    let emu = start(&config(OPENROUTER_POOLS)).await;
    let response = chat(&emu.url, Some("or-key-1"), OPENROUTER_MODEL).await;
    assert_eq!(response.status(), 200);
    let body = body_json(response).await;
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], OPENROUTER_MODEL);
    let url = body["choices"][0]["message"]["images"][0]["image_url"]["url"]
        .as_str()
        .unwrap();
    let data = url.strip_prefix("data:image/png;base64,").unwrap();
    assert_eq!(png_size(&b64(data)), (512, 341));

    emu.clock.advance(Duration::from_millis(15_500));
    let response = chat(&emu.url, Some("or-key-1"), OPENROUTER_MODEL).await;
    assert_eq!(response.status(), 429);
    let headers = response.headers().clone();
    assert_eq!(headers["x-ratelimit-limit"], "1");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let reset: i64 = headers["x-ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let start_ms = common::START
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    assert_eq!(reset, start_ms + 60_000);
    assert_eq!(headers["retry-after"], "45", "44.5 s rounded up");
    let error = body_json(response).await["error"].clone();
    assert_eq!(error["code"], 429);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Rate limit exceeded: ")
    );
    assert_eq!(
        error["metadata"]["headers"]["X-RateLimit-Reset"],
        reset.to_string()
    );

    let response = chat(
        &emu.url,
        Some("or-key-1"),
        "google/gemini-3-pro-image-preview",
    )
    .await;
    assert_eq!(response.status(), 402);
    assert!(response.headers().get("retry-after").is_none());

    let response = chat(&emu.url, None, OPENROUTER_MODEL).await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        body_json(response).await["error"]["message"],
        "No auth credentials found"
    );
    assert_eq!(
        chat(&emu.url, Some("sk-wrong"), OPENROUTER_MODEL)
            .await
            .status(),
        401
    );

    let key = client()
        .get(format!("{}/api/v1/key", emu.url))
        .bearer_auth("or-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), 200);
    assert!(body_json(key).await["data"]["is_free_tier"].is_boolean());
    let text_only = client()
        .post(format!("{}/api/v1/chat/completions", emu.url))
        .bearer_auth("or-key-1")
        .json(&json!({"model": "google/gemini-3-pro-image-preview", "messages": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(text_only.status(), 400);
    assert_eq!(body_json(text_only).await["error"]["code"], 400);
}

#[tokio::test]
async fn stats_log_and_reset_tell_the_truth() {
    let emu = start(&config(ONE_GEMINI_POOL)).await;
    let body = gemini_body("x", "1:1", "0.5K");
    for _ in 0..3 {
        post_gemini(&emu.url, Some("k"), GEMINI_MODEL, &body).await;
    }
    let stats = body_json(
        client()
            .get(format!("{}/emulator/stats", emu.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let pool = &stats["pools"][0];
    assert_eq!(pool["provider"], "gemini");
    assert_eq!(pool["day_zone"], "America/Los_Angeles");
    assert_eq!(pool["limits"]["rpm"], 2);
    assert_eq!(pool["limits"]["rpd"], Value::Null);
    assert_eq!(pool["in_use"]["rpm"], 2);
    assert_eq!(pool["in_use"]["rpd"], 2);
    assert_eq!(pool["in_use"]["ipm"], 2);
    assert_eq!(
        pool["counters"],
        json!({"requests": 3, "admitted": 2, "rate_limited": 1,
        "unentitled": 0, "overloaded": 0, "client_errors": 0})
    );
    assert_eq!(stats["totals"]["requests"], 3);

    let log = body_json(
        client()
            .get(format!("{}/emulator/log?since=1", emu.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1]["seq"], 3);
    assert_eq!(entries[1]["outcome"], "rate_limited");
    assert_eq!(entries[1]["refused_by"], json!(["rpm"]));
    assert_eq!(entries[1]["project"], "proj-a");
    assert_eq!(entries[1]["model"], GEMINI_MODEL);
    assert_eq!(entries[1]["at"], common::START);
    assert_eq!(log["last"], 3);
    let bad = client()
        .get(format!("{}/emulator/log?since=x", emu.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    let reset = client()
        .post(format!("{}/emulator/reset", emu.url))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    let stats = emu.emulator.stats();
    assert_eq!(stats.totals, imagegate_emulator::Counters::default());
    assert_eq!(stats.pools[0].in_use.rpm, 0);
    assert_eq!(
        post_gemini(&emu.url, Some("k"), GEMINI_MODEL, &body)
            .await
            .status(),
        200,
        "windows were emptied"
    );
    let log = body_json(
        client()
            .get(format!("{}/emulator/log", emu.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        log["entries"][0]["seq"], 4,
        "numbering goes on after a reset"
    );

    let unknown = client()
        .get(format!("{}/nothing/here", emu.url))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    emu.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_concurrent_requests_at_rpm_50_admit_exactly_50() {
    let emu = start(&config(
        r#"
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]
rpm = 50
"#,
    ))
    .await;
    let client = client();
    let body = json!({"contents": [{"parts": [{"text": "x"}]}],
                      "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"imageSize": "0.5K"}}});
    let url = format!("{}/v1beta/models/{GEMINI_MODEL}:generateContent", emu.url);
    let requests = (0..500).map(|_| {
        let client = client.clone();
        let url = url.clone();
        let body = body.clone();
        tokio::spawn(async move {
            client
                .post(url)
                .header("x-goog-api-key", "k")
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        })
    });
    let statuses: Vec<u16> = futures::future::join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 50);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 450);
    let stats = emu.emulator.stats();
    let pool = &stats.pools[0];
    assert_eq!(pool.counters.requests, 500);
    assert_eq!(pool.counters.admitted, 50);
    assert_eq!(pool.counters.rate_limited, 450);
    assert_eq!(pool.in_use.rpm, 50, "all in one window");
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Any bytes to any endpoint: an answer in the 2xx or 4xx range, never a dropped
        /// connection or a 5xx, and the server keeps serving.
        #[test]
        fn any_body_to_any_endpoint_is_answered(
            raw in prop::collection::vec(any::<u8>(), 0..512),
            endpoint in 0usize..4,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let emu = start(&config(&format!("{ONE_GEMINI_POOL}\n[[upstream.pool]]\nprovider = \"openrouter\"\nproject = \"acct\"\nmodels = [\"{OPENROUTER_MODEL}\"]\n"))).await;
                let (path, auth) = [
                    (format!("/v1beta/models/{GEMINI_MODEL}:generateContent"), ("x-goog-api-key", "k".to_owned())),
                    (format!("/v1/models/{GEMINI_MODEL}:streamGenerateContent?alt=sse"), ("x-goog-api-key", "k".to_owned())),
                    ("/v1beta/models/imagen-4.0-generate-001:predict".to_owned(), ("x-goog-api-key", "k".to_owned())),
                    ("/api/v1/chat/completions".to_owned(), ("authorization", "Bearer k".to_owned())),
                ][endpoint].clone();
                let response = client().post(format!("{}{path}", emu.url)).header(auth.0, auth.1).body(raw).send().await.unwrap();
                let status = response.status().as_u16();
                assert!(status < 500, "{path}: {status}");
                let stats = client().get(format!("{}/emulator/stats", emu.url)).send().await.unwrap();
                assert_eq!(stats.status(), 200);
            });
        }
    }
}

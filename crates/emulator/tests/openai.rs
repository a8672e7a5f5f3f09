//! The OpenAI Images dialect over real HTTP: images, the `x-ratelimit-*` headers on every
//! answer, the 429s in both of OpenAI's message forms, `insufficient_quota`, keys, edits and
//! links; and imagegate's own OpenAI provider classifying all of it as the real service's
//! answers (fixtures/openai).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{config, png_size, start};
use imagegate_core::clock::Clock;
use imagegate_core::quota::Dimension;
use imagegate_core::secret::ApiKey;
use imagegate_core::{AspectRatio, ErrorKind, GenerateRequest, ImageProvider, ReferenceImage};
use imagegate_openai::{OpenAiProvider, parse_error};
use serde_json::{Value, json};

const POOLS: &str = r#"
[[upstream.pool]]
provider = "openai"
project = "acme"
models = ["gpt-image-1"]
ipm = 2
rpm = 5
[[upstream.pool]]
provider = "openai"
project = "acme"
models = ["dall-e-3"]
tpm = 3000
[[upstream.pool]]
provider = "openai"
project = "acme"
models = ["gpt-image-1-mini"]
rpd = 0
[[upstream.key]]
provider = "openai"
project = "acme"
key = "sk-emulator-acme-0123456789"
"#;

const KEY: &str = "sk-emulator-acme-0123456789";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .retry(reqwest::retry::never())
        .build()
        .unwrap()
}

async fn generate(url: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = client()
        .post(format!("{url}/v1/images/generations"))
        .json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The answer split as parse_error takes it.
async fn parts(response: reqwest::Response) -> (http::StatusCode, http::HeaderMap, Vec<u8>) {
    let status = http::StatusCode::from_u16(response.status().as_u16()).unwrap();
    let mut headers = http::HeaderMap::new();
    for (k, v) in response.headers() {
        headers.insert(
            http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
            http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
        );
    }
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn generations_answer_b64_json_with_usage_and_rate_limit_headers() {
    let emu = start(&config(POOLS)).await;
    let response = generate(
        &emu.url,
        Some(KEY),
        &json!({"model": "gpt-image-1", "prompt": "a lighthouse", "size": "1536x1024"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "application/json");
    assert_eq!(header(&response, "x-ratelimit-limit-requests"), "5");
    assert_eq!(header(&response, "x-ratelimit-remaining-requests"), "4");
    assert_eq!(header(&response, "x-ratelimit-reset-requests"), "1m0s");
    assert_eq!(header(&response, "x-ratelimit-limit-images"), "2");
    assert_eq!(header(&response, "x-ratelimit-remaining-images"), "1");
    assert!(header(&response, "x-request-id").starts_with("req_"));
    assert!(response.headers().get("x-ratelimit-limit-tokens").is_none());
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(
        png_size(&b64(data[0]["b64_json"].as_str().unwrap())),
        (1024, 682)
    );
    assert_eq!(body["size"], "1536x1024");
    assert_eq!(body["usage"]["output_tokens"], 1290);
    assert_eq!(body["created"], 1_768_478_400);
}

#[tokio::test]
async fn the_images_per_minute_429_states_limit_current_and_the_true_wait() {
    let emu = start(&config(POOLS)).await;
    let request = json!({"model": "gpt-image-1", "prompt": "a lighthouse"});
    assert_eq!(generate(&emu.url, Some(KEY), &request).await.status(), 200);
    emu.clock.advance(Duration::from_millis(18_104));
    assert_eq!(generate(&emu.url, Some(KEY), &request).await.status(), 200);
    let response = generate(&emu.url, Some(KEY), &request).await;
    assert_eq!(response.status(), 429);
    assert_eq!(header(&response, "x-ratelimit-remaining-images"), "0");
    assert_eq!(header(&response, "x-ratelimit-reset-images"), "41.896s");
    assert_eq!(header(&response, "x-ratelimit-remaining-requests"), "3");
    let (status, headers, bytes) = parts(response).await;
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["param"], Value::Null);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Rate limit exceeded for images per minute in organization org-acme. Limit: 2/1min. Current: 3/1min. Please try again in 41.896s."
        ),
        "{message}"
    );
    let e = parse_error(status, &headers, &bytes, emu.clock.now());
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.quota().dimension, Some(Dimension::Ipm));
    assert_eq!(e.quota().quota_value, Some(2));
    assert_eq!(e.retry_after(), Some(Duration::from_millis(41_896)));
    assert_eq!(e.upstream_code(), Some("rate_limit_exceeded"));
    // Exactly then, the window has room again.
    emu.clock.advance(Duration::from_millis(41_896));
    assert_eq!(generate(&emu.url, Some(KEY), &request).await.status(), 200);
}

#[tokio::test]
async fn a_tokens_per_minute_429_has_the_reached_form_and_the_tokens_type() {
    let emu = start(&config(POOLS)).await;
    let body =
        json!({"model": "dall-e-3", "prompt": "a lighthouse", "response_format": "b64_json"});
    let first = generate(&emu.url, Some(KEY), &body).await;
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-limit-tokens"), "3000");
    let first: Value = serde_json::from_slice(&first.bytes().await.unwrap()).unwrap();
    assert_eq!(first["data"][0]["revised_prompt"], "a lighthouse");
    emu.clock.advance(Duration::from_secs(1));
    assert_eq!(generate(&emu.url, Some(KEY), &body).await.status(), 200);
    emu.clock.advance(Duration::from_secs(1));
    let (status, headers, bytes) = parts(generate(&emu.url, Some(KEY), &body).await).await;
    assert_eq!(status, 429);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(body["error"]["type"], "tokens");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Rate limit reached for dall-e-3 in organization org-acme on tokens per min (TPM): Limit 3000, Used 2586, Requested 1293. Please try again in 58s."
        ),
        "{message}"
    );
    let e = parse_error(status, &headers, &bytes, emu.clock.now());
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.quota().dimension, Some(Dimension::Tpm));
    assert_eq!(e.quota().quota_value, Some(3000));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(58)));
}

#[tokio::test]
async fn keys_unentitled_pools_unknown_models_and_bad_bodies_answer_as_openai_does() {
    let emu = start(&config(POOLS)).await;
    let body = json!({"model": "gpt-image-1", "prompt": "x"});
    let now = emu.clock.now();
    let classify = |(status, headers, bytes): (http::StatusCode, http::HeaderMap, Vec<u8>)| {
        parse_error(status, &headers, &bytes, now)
    };

    let e = classify(parts(generate(&emu.url, None, &body).await).await);
    assert_eq!(
        (e.kind(), e.http_status()),
        (ErrorKind::Unauthorized, Some(401))
    );
    let response = generate(&emu.url, Some("sk-wrong-key-0000000000000"), &body).await;
    let (status, headers, bytes) = parts(response).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(text.contains("sk-****0000"), "{text}");
    assert!(!text.contains("sk-wrong-key"), "the key is masked: {text}");
    let e = classify((status, headers, bytes));
    assert_eq!(e.kind(), ErrorKind::Unauthorized);
    assert_eq!(e.upstream_code(), Some("invalid_api_key"));

    let unentitled = json!({"model": "gpt-image-1-mini", "prompt": "x"});
    let e = classify(parts(generate(&emu.url, Some(KEY), &unentitled).await).await);
    assert_eq!(e.kind(), ErrorKind::BillingRequired, "{e}");
    assert_eq!(e.http_status(), Some(429));
    assert_eq!(e.upstream_code(), Some("insufficient_quota"));
    assert!(!e.is_temporary());

    let unknown = json!({"model": "gpt-image-9", "prompt": "x"});
    let e = classify(parts(generate(&emu.url, Some(KEY), &unknown).await).await);
    assert_eq!(e.kind(), ErrorKind::ModelNotFound, "{e}");

    for (bad, param) in [
        (
            json!({"model": "gpt-image-1", "prompt": "x", "size": "512"}),
            "size",
        ),
        (json!({"model": "gpt-image-1"}), "prompt"),
        (json!({"model": "gpt-image-1", "prompt": "x", "n": 11}), "n"),
        (
            json!({"model": "gpt-image-1", "prompt": "x", "response_format": "gif"}),
            "response_format",
        ),
    ] {
        let (status, headers, bytes) = parts(generate(&emu.url, Some(KEY), &bad).await).await;
        assert_eq!(status, 400, "{bad}");
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["param"], param, "{body}");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let e = parse_error(status, &headers, &bytes, now);
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
        assert!(e.message().contains(param), "{e}");
    }
    let stats = emu.emulator.stats();
    let pool = &stats.pools[0];
    assert_eq!(pool.counters.admitted, 0, "nothing was admitted: {stats:?}");
}

#[tokio::test]
async fn edits_take_image_array_parts_and_links_are_served_when_asked_for() {
    let emu = start(&config(POOLS)).await;
    let reference = imagegate_mock::render::render_png(
        &imagegate_mock::render::Fingerprint::from_bytes([3; 32]),
        16,
        16,
    )
    .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("model", "gpt-image-1")
        .text("prompt", "make it blue")
        .text("size", "1024x1024")
        .part(
            "image[]",
            reqwest::multipart::Part::bytes(reference.to_vec())
                .file_name("a.png")
                .mime_str("image/png")
                .unwrap(),
        )
        .part(
            "image[]",
            reqwest::multipart::Part::bytes(reference.to_vec())
                .file_name("b.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let response = client()
        .post(format!("{}/v1/images/edits", emu.url))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        png_size(&b64(body["data"][0]["b64_json"].as_str().unwrap())),
        (1024, 1024)
    );
    assert_eq!(
        body["usage"]["input_tokens_details"]["image_tokens"],
        2 * 1290
    );

    let not_an_image = reqwest::multipart::Form::new().text("prompt", "x").part(
        "image[]",
        reqwest::multipart::Part::bytes(b"hello".to_vec()).file_name("a.png"),
    );
    let response = client()
        .post(format!("{}/v1/images/edits", emu.url))
        .bearer_auth(KEY)
        .multipart(not_an_image)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"]["param"], "image");

    // As a link: the URL downloads the PNG, without a key.
    emu.clock.advance(Duration::from_secs(60));
    let response = generate(
        &emu.url,
        Some(KEY),
        &json!({"model": "gpt-image-1", "prompt": "x", "response_format": "url"}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let url = body["data"][0]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/emulator/openai/images/", emu.url)),
        "{url}"
    );
    let png = client().get(url).send().await.unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(png_size(&png.bytes().await.unwrap()), (1024, 1024));
    let gone = client()
        .get(format!("{}/emulator/openai/images/nope.png", emu.url))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn the_openai_provider_learns_limits_from_headers_and_429s() {
    let emu = start(&config(POOLS)).await;
    let provider = OpenAiProvider::new(ApiKey::new(KEY))
        .with_base_url(&format!("{}/v1", emu.url))
        .unwrap()
        .with_clock(emu.clock.clone());
    let request = GenerateRequest::new("a lighthouse")
        .with_model("gpt-image-1")
        .with_aspect_ratio(AspectRatio::new(2, 3).unwrap());
    let response = provider.generate(&request).await.unwrap();
    assert_eq!(response.images.len(), 1);
    assert_eq!(png_size(&response.images[0].bytes), (682, 1024));
    let images = response
        .rate_limits
        .iter()
        .find(|s| s.dimension == Dimension::Ipm)
        .unwrap();
    assert_eq!((images.limit, images.remaining), (Some(2), Some(1)));

    // An edit with a reference image goes to /images/edits as image[].
    let reference = ReferenceImage::new(response.images[0].bytes.clone(), "image/png");
    let edit = request.clone().with_reference_image(reference);
    let response = provider.generate(&edit).await.unwrap();
    let images = response
        .rate_limits
        .iter()
        .find(|s| s.dimension == Dimension::Ipm)
        .unwrap();
    assert_eq!(images.remaining, Some(0));
    assert_eq!(
        images.reset_at,
        Some(emu.clock.now() + Duration::from_secs(60))
    );

    let e = provider.generate(&request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.quota().dimension, Some(Dimension::Ipm));
    assert_eq!(e.quota().quota_value, Some(2));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
    assert_eq!(e.provider(), Some("openai"));
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn field_value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
            Just(json!("1024x1024")),
            Just(json!("url")),
            Just(json!([1, "x"])),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Any bytes, any multipart, any field values: an answer below 500 in OpenAI's
        /// envelope, never a dropped connection, and the server keeps serving.
        #[test]
        fn any_body_to_either_path_is_answered_in_openais_envelope(
            raw in prop::collection::vec(any::<u8>(), 0..512),
            fields in prop::collection::vec(
                (prop::sample::select(vec!["model", "prompt", "n", "size", "response_format", "image[]"]), field_value()),
                0..6,
            ),
            which in 0usize..3,
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let emu = start(&config(POOLS)).await;
                let request = match which {
                    0 => client().post(format!("{}/v1/images/generations", emu.url)).body(raw),
                    1 => {
                        let object: serde_json::Map<String, Value> =
                            fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
                        client().post(format!("{}/v1/images/generations", emu.url)).json(&object)
                    }
                    _ => {
                        let mut form = reqwest::multipart::Form::new();
                        for (k, v) in &fields {
                            form = form.part(*k, reqwest::multipart::Part::bytes(v.to_string().into_bytes()));
                        }
                        form = form.part("image[]", reqwest::multipart::Part::bytes(raw));
                        client().post(format!("{}/v1/images/edits", emu.url)).multipart(form)
                    }
                };
                let response = request.bearer_auth(KEY).send().await.unwrap();
                let status = response.status().as_u16();
                let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
                assert!(status < 500, "{which}: {status} {body}");
                if status != 200 {
                    assert!(body["error"]["message"].is_string(), "{body}");
                }
                let stats = client().get(format!("{}/emulator/stats", emu.url)).send().await.unwrap();
                assert_eq!(stats.status(), 200);
            });
        }
    }
}

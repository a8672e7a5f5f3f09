//! Every dialect and path of the gateway, in front of the emulator: OpenAI Images (b64_json,
//! url, edits), Gemini (generateContent under /v1beta and /v1, the stream, predict, models),
//! OpenRouter-style chat, model mapping and the listing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use common::{b64, png_size, settings, stack, tiny_png};
use serde_json::{Value, json};

async fn post(url: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn openai_generations_answer_b64_json_and_urls_the_gateway_serves() {
    let s = stack(settings()).await;
    let r = post(
        &format!("{}/v1/images/generations", s.url),
        &json!({"model": "gpt-image-1", "prompt": "a red fox", "n": 2, "size": "1536x1024"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["created"], json!(1_768_478_400));
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{body}");
    for item in data {
        assert_eq!(
            png_size(&b64(item["b64_json"].as_str().unwrap())),
            (1024, 682)
        );
    }
    assert_eq!(body["output_format"], "png");
    assert_eq!(body["size"], "1024x682");

    let r = post(
        &format!("{}/v1/images/generations", s.url),
        &json!({"model": "gpt-image-1", "prompt": "a red fox", "response_format": "url"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let url = body["data"][0]["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/v1/images/files/", s.url)),
        "{url}"
    );
    let image = reqwest::get(url).await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    assert_eq!(png_size(&image.bytes().await.unwrap()), (1024, 1024));
    let missing = reqwest::get(format!("{}/v1/images/files/{}", s.url, "0".repeat(32)))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn openai_edits_take_two_images_and_refuse_a_mask_or_a_non_image() {
    let s = stack(settings()).await;
    let png = tiny_png();
    let form = || {
        reqwest::multipart::Form::new()
            .text("model", "gpt-image-1")
            .text("prompt", "put them side by side")
            .part(
                "image[]",
                reqwest::multipart::Part::bytes(png.clone())
                    .file_name("a.png")
                    .mime_str("image/png")
                    .unwrap(),
            )
            .part(
                "image[]",
                reqwest::multipart::Part::bytes(png.clone())
                    .file_name("b.png")
                    .mime_str("image/png")
                    .unwrap(),
            )
    };
    let url = format!("{}/v1/images/edits", s.url);
    let client = reqwest::Client::new();
    let r = client.post(&url).multipart(form()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        png_size(&b64(body["data"][0]["b64_json"].as_str().unwrap())).0,
        1024
    );
    let log = s.emulator.stats();
    assert!(log.totals.admitted >= 1, "{log:?}");

    let with_mask = form().part(
        "mask",
        reqwest::multipart::Part::bytes(png.clone()).file_name("m.png"),
    );
    let r = client.post(&url).multipart(with_mask).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["param"], "mask", "{body}");

    let junk = reqwest::multipart::Form::new().text("prompt", "x").part(
        "image",
        reqwest::multipart::Part::bytes(b"not an image".to_vec()).file_name("a.png"),
    );
    let r = client.post(&url).multipart(junk).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["param"], "image", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not a readable"),
        "{body}"
    );

    let r = client
        .post(&url)
        .header("content-type", "multipart/form-data; boundary=x")
        .body("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    s.stop().await;
}

fn gemini_body() -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": "a lighthouse"}]}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": {"aspectRatio": "16:9"}}
    })
}

#[tokio::test]
async fn gemini_generate_content_stream_predict_and_models_under_v1beta_and_v1() {
    let s = stack(settings()).await;
    let client = reqwest::Client::new();
    for version in ["v1beta", "v1"] {
        let r = client
            .post(format!(
                "{}/{version}/models/gemini-2.5-flash-image:generateContent",
                s.url
            ))
            .header("x-goog-api-key", "anything")
            .json(&gemini_body())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{version}");
        let body: Value = r.json().await.unwrap();
        let part = &body["candidates"][0]["content"]["parts"][0]["inlineData"];
        assert_eq!(part["mimeType"], "image/png");
        assert_eq!(png_size(&b64(part["data"].as_str().unwrap())), (1024, 576));
        assert_eq!(body["candidates"][0]["finishReason"], "STOP");
        assert_eq!(body["modelVersion"], "gemini-2.5-flash-image");
    }
    // The stream, as server-sent events and as one JSON array.
    let r = client
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash-image:streamGenerateContent?alt=sse&key=k",
            s.url
        ))
        .json(&gemini_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let text = r.text().await.unwrap();
    let events: Vec<Value> = text
        .split("\r\n\r\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    assert!(events[0]["candidates"][0]["content"]["parts"][0]["inlineData"]["data"].is_string());
    assert_eq!(events[1]["candidates"][0]["finishReason"], "STOP");
    let r = client
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash-image:streamGenerateContent",
            s.url
        ))
        .json(&gemini_body())
        .send()
        .await
        .unwrap();
    let chunks: Value = r.json().await.unwrap();
    assert_eq!(chunks.as_array().unwrap().len(), 2);

    // Imagen's predict, served by whatever route the name maps to.
    let r = client
        .post(format!("{}/v1beta/models/gpt-image-1:predict", s.url))
        .json(&json!({"instances": [{"prompt": "a cat"}], "parameters": {"sampleCount": 2, "aspectRatio": "1:1"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["predictions"].as_array().unwrap().len(), 2);

    // Models: Gemini's list under /v1beta, and under /v1 for a Gemini key.
    for url in [
        format!("{}/v1beta/models?key=k", s.url),
        format!("{}/v1/models?key=k", s.url),
    ] {
        let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        let names: Vec<&str> = body["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"models/gemini-2.5-flash-image"), "{body}");
        assert!(
            names.contains(&"models/flash"),
            "route names are model names too: {body}"
        );
    }
    let one = client
        .get(format!("{}/v1beta/models/gemini-2.5-flash-image", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 200);
    let none = client
        .get(format!("{}/v1beta/models/gemini-1.0-pro", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
    let r = client
        .post(format!(
            "{}/v1beta/models/gemini-2.5-flash-image:countTokens",
            s.url
        ))
        .json(&gemini_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    s.stop().await;
}

#[tokio::test]
async fn chat_completions_with_modalities_answer_data_urls_on_both_paths() {
    let s = stack(settings()).await;
    for (path, model) in [
        ("/api/v1/chat/completions", "google/gemini-2.5-flash-image"),
        ("/v1/chat/completions", "gemini-2.5-flash-image"),
    ] {
        let r = post(
            &format!("{}{path}", s.url),
            &json!({
                "model": model,
                "modalities": ["image", "text"],
                "messages": [{"role": "user", "content": [{"type": "text", "text": "a banana"}]}],
                "image_config": {"aspect_ratio": "3:2"}
            }),
        )
        .await;
        assert_eq!(r.status(), 200, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        assert_eq!(body["model"], model);
        let url = body["choices"][0]["message"]["images"][0]["image_url"]["url"]
            .as_str()
            .unwrap();
        let data = url.strip_prefix("data:image/png;base64,").unwrap();
        assert_eq!(png_size(&b64(data)), (1024, 682));
    }
    let stats = s.emulator.stats();
    let served: Vec<&str> = stats
        .pools
        .iter()
        .filter(|p| p.counters.admitted > 0)
        .flat_map(|p| p.models.iter().map(String::as_str))
        .collect();
    assert!(
        served.contains(&"google/gemini-2.5-flash-image"),
        "{served:?}"
    );
    assert!(served.contains(&"gemini-2.5-flash-image"), "{served:?}");
    s.stop().await;
}

#[tokio::test]
async fn model_names_map_to_routes_then_route_names_then_the_default_route() {
    let mut config = settings();
    let s = stack(config.clone()).await;
    let body = |model: &str| json!({"model": model, "prompt": "a fox"});
    let url = format!("{}/v1/images/generations", s.url);
    // A route's own name selects it.
    assert_eq!(post(&url, &body("or")).await.status(), 200);
    // An unknown name without a default route: 404 in the dialect, listing what is served.
    let r = post(&url, &body("dall-e-2")).await;
    assert_eq!(r.status(), 404);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["code"], "model_not_found");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("gpt-image-1"),
        "{e}"
    );
    s.stop().await;

    config.default_route = Some("or".to_owned());
    let s = stack(config).await;
    let r = post(
        &format!("{}/v1/images/generations", s.url),
        &body("dall-e-2"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let stats = s.emulator.stats();
    let or = stats
        .pools
        .iter()
        .find(|p| {
            p.models
                .contains(&"google/gemini-2.5-flash-image".to_owned())
        })
        .unwrap();
    assert_eq!(or.counters.admitted, 1, "the default route served it");
    // The OpenAI list of model names.
    let list: Value = reqwest::get(format!("{}/v1/models", s.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        &ids[..4],
        [
            "dall-e-3",
            "gemini-2.5-flash-image",
            "google/gemini-2.5-flash-image",
            "gpt-image-1"
        ]
    );
    s.stop().await;
}

/// The emulator's pool serving `model`.
fn pool_of<'a>(
    stats: &'a imagegate_emulator::Stats,
    model: &str,
) -> &'a imagegate_emulator::PoolStats {
    stats
        .pools
        .iter()
        .find(|p| p.models.iter().any(|m| m == model))
        .unwrap()
}

#[tokio::test]
async fn the_openai_dialect_end_to_end_through_the_openai_provider_to_an_openai_upstream() {
    let s = stack(settings()).await;
    let url = format!("{}/v1/images/generations", s.url);
    // The gateway's OpenAI dialect -> the route `oai` -> imagegate-openai -> the emulator's
    // /v1/images/generations: the provider asks for the portrait size, the PNG keeps it.
    let r = post(
        &url,
        &json!({"model": "oai", "prompt": "a heron", "size": "1024x1536"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let png = b64(body["data"][0]["b64_json"].as_str().unwrap());
    assert_eq!(png_size(&png), (682, 1024));
    assert_eq!(
        pool_of(&s.emulator.stats(), "gpt-image-1")
            .counters
            .admitted,
        1
    );

    // An edit: two reference images reach the emulator's /v1/images/edits as image[].
    let png = tiny_png();
    let form = reqwest::multipart::Form::new()
        .text("model", "oai")
        .text("prompt", "side by side")
        .part(
            "image[]",
            reqwest::multipart::Part::bytes(png.clone())
                .file_name("a.png")
                .mime_str("image/png")
                .unwrap(),
        )
        .part(
            "image[]",
            reqwest::multipart::Part::bytes(png)
                .file_name("b.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let r = reqwest::Client::new()
        .post(format!("{}/v1/images/edits", s.url))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        pool_of(&s.emulator.stats(), "gpt-image-1")
            .counters
            .admitted,
        2
    );

    // One image a minute upstream: the first answer's x-ratelimit-* headers say none is left,
    // so the gateway refuses the second itself (a 429 in OpenAI's shape, with the wait) and the
    // upstream never sees it; the fallback route goes on to Gemini.
    let limited = json!({"model": "oai-limited", "prompt": "a heron"});
    assert_eq!(post(&url, &limited).await.status(), 200);
    let r = reqwest::Client::new()
        .post(&url)
        .header("x-imagegate-max-wait", "0")
        .json(&limited)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry_after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "requests", "{e}");
    let r = post(&url, &json!({"model": "oai-fallback", "prompt": "a heron"})).await;
    assert_eq!(r.status(), 200);
    let stats = s.emulator.stats();
    let mini = pool_of(&stats, "gpt-image-1-mini");
    assert_eq!(
        (mini.counters.admitted, mini.counters.rate_limited),
        (1, 0),
        "the full pool was never asked: {stats:?}"
    );
    assert_eq!(
        pool_of(&stats, "gemini-2.5-flash-image").counters.admitted,
        1,
        "the fallback served it"
    );
    s.stop().await;
}

//! The Vertex AI dialect over real HTTP: imagegate's Vertex provider, with credentials whose
//! `token_uri` is the emulator's token endpoint, gets images per location; Dynamic Shared
//! Quota's 429 teaches it nothing; tokens, projects, limit 0 and Imagen answer as Vertex does.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use base64::Engine as _;
use common::{config, png_size, start};
use imagegate_core::clock::Clock;
use imagegate_core::{AspectRatio, ErrorKind, GenerateRequest, ImageProvider};
use imagegate_vertex::{Credentials, VertexProvider, parse_error};
use serde_json::{Value, json};

const POOLS: &str = r#"
[[upstream.pool]]
provider = "vertex"
project = "proj-v/us-central1"
models = ["gemini-2.5-flash-image", "imagen-4.0-generate-001"]
rpm = 1
[[upstream.pool]]
provider = "vertex"
project = "proj-v/europe-west4"
models = ["gemini-2.5-flash-image"]
[[upstream.pool]]
provider = "vertex"
project = "unbilled"
models = ["gemini-2.5-flash-image"]
rpd = 0
"#;

const MODEL: &str = "gemini-2.5-flash-image";

/// `gcloud auth application-default login`'s file, its token endpoint the emulator's.
fn credentials(url: &str) -> Credentials {
    let file = json!({"type": "authorized_user", "client_id": "emulator-client",
        "client_secret": "emulator-secret", "refresh_token": "emulator-refresh",
        "token_uri": format!("{url}/emulator/vertex/token")});
    Credentials::from_json(file.to_string().as_bytes(), "the test's credentials").unwrap()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .retry(reqwest::retry::never())
        .build()
        .unwrap()
}

fn path(project: &str, location: &str, target: &str) -> String {
    format!("/v1/projects/{project}/locations/{location}/publishers/google/models/{target}")
}

#[tokio::test]
async fn the_vertex_provider_gets_images_and_a_dynamic_shared_quota_429_per_location() {
    let emu = start(&config(POOLS)).await;
    let provider = |location: &str| {
        VertexProvider::new(credentials(&emu.url), "proj-v", location)
            .unwrap()
            .with_base_url(&emu.url)
            .unwrap()
            .with_clock(emu.clock.clone())
    };
    let us = provider("us-central1");
    let request = GenerateRequest::new("a lighthouse")
        .with_model(MODEL)
        .with_aspect_ratio(AspectRatio::new(16, 9).unwrap());
    let response = us.generate(&request).await.unwrap();
    assert_eq!(png_size(&response.images[0].bytes), (1024, 576));

    // The region's capacity is full: rate limited, with nothing to learn.
    let e = us.generate(&request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited, "{e}");
    assert_eq!(e.provider(), Some("vertex"));
    assert_eq!(e.http_status(), Some(429));
    assert_eq!(e.quota().dimension, None, "{e}");
    assert_eq!(e.quota().quota_value, None, "{e}");
    assert_eq!(e.retry_after(), None, "{e}");

    // Another location is another pool.
    let eu = provider("europe-west4");
    assert_eq!(eu.generate(&request).await.unwrap().images.len(), 1);

    // No billing: the 403 is billing_required.
    let unbilled = VertexProvider::new(credentials(&emu.url), "unbilled", "us-central1")
        .unwrap()
        .with_base_url(&emu.url)
        .unwrap()
        .with_clock(emu.clock.clone());
    let e = unbilled.generate(&request).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BillingRequired, "{e}");

    let stats = emu.emulator.stats();
    assert_eq!(stats.pools[0].counters.admitted, 1);
    assert_eq!(stats.pools[0].counters.rate_limited, 1);
    assert_eq!(stats.pools[1].counters.admitted, 1);
    assert_eq!(stats.pools[0].provider, "vertex");
    assert_eq!(stats.pools[0].day_zone, "America/Los_Angeles");
}

#[tokio::test]
async fn tokens_projects_and_imagen_answer_as_vertex_does() {
    let emu = start(&config(POOLS)).await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "a fox"}]}]});
    let url = |p: &str| format!("{}{p}", emu.url);
    let now = emu.clock.now();

    let r = client()
        .post(url(&path(
            "proj-v",
            "europe-west4",
            &format!("{MODEL}:generateContent"),
        )))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["status"], "UNAUTHENTICATED");

    let r = client()
        .post(url(&path(
            "someone-else",
            "us-central1",
            &format!("{MODEL}:generateContent"),
        )))
        .bearer_auth("any-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = http::StatusCode::from_u16(r.status().as_u16()).unwrap();
    let bytes = r.bytes().await.unwrap();
    let e = parse_error(status, &http::HeaderMap::new(), &bytes, now);
    assert_eq!(status, 403);
    assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");

    let r = client()
        .post(url(&path(
            "proj-v",
            "us-central1",
            "imagen-4.0-generate-001:predict",
        )))
        .bearer_auth("any-token")
        .json(&json!({"instances": [{"prompt": "a fox"}], "parameters": {"sampleCount": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let predictions = v["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 2);
    let png = base64::engine::general_purpose::STANDARD
        .decode(predictions[0]["bytesBase64Encoded"].as_str().unwrap())
        .unwrap();
    assert_eq!(png_size(&png), (1024, 1024));

    // The token endpoint: both grants, and Google's refusal of anything else.
    let token = |form: &'static str| {
        client()
            .post(url("/emulator/vertex/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    let r =
        token("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=a.b.c")
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert!(
        v["access_token"]
            .as_str()
            .unwrap()
            .starts_with("emulator-vertex-access-")
    );
    assert_eq!(token("grant_type=password").await.unwrap().status(), 400);
}

#[test]
fn a_vertex_key_entry_is_refused_naming_why() {
    let text = config(&format!(
        "{POOLS}\n[[upstream.key]]\nprovider = \"vertex\"\nproject = \"unbilled\"\nkey = \"k\"\n"
    ));
    let e = imagegate_emulator::EmulatorConfig::parse(std::path::Path::new("v.toml"), &text)
        .unwrap_err();
    assert_eq!(e.key, "upstream.key[0].provider");
    assert!(e.expected.contains("any access token"), "{e}");
}

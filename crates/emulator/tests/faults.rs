//! Every injected fault, met by imagegate's own Gemini, OpenRouter, OpenAI and Vertex AI
//! providers over real loopback HTTP: each ends in a typed error of the kind the router acts on (or, for a wrong
//! content type, in the image), the emulator counts an image only for the faults that strike
//! after the upstream decided, and the next request on the same client is served.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::path::Path;
use std::time::Duration;

use common::{config, start};
use imagegate_core::{ErrorKind, GenerateRequest, ImageProvider, secret::ApiKey};
use imagegate_emulator::{Emulator, EmulatorConfig, Fault};
use imagegate_gemini::GeminiProvider;
use imagegate_openai::OpenAiProvider;
use imagegate_openrouter::OpenRouterProvider;
use imagegate_vertex::{Credentials, VertexProvider};

const POOLS: &str = r#"
[upstream.faults]
slow_body_bytes_per_second = 1024
oversized_body_bytes = 3145728
burst_length = 2

[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]

[[upstream.pool]]
provider = "openrouter"
project = "acct"
models = ["google/gemini-2.5-flash-image"]

[[upstream.pool]]
provider = "openai"
project = "org"
models = ["gpt-image-1"]

[[upstream.pool]]
provider = "vertex"
project = "proj-v/us-central1"
models = ["gemini-2.5-flash-image"]
"#;

/// Short enough that a fault which stalls costs the test little, long enough for a loopback
/// answer on a loaded machine.
const TIMEOUT: Duration = Duration::from_millis(1500);

fn gemini(url: &str) -> GeminiProvider {
    GeminiProvider::new(ApiKey::new("any-gemini-key"))
        .with_base_url(url)
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_max_response_bytes(2 * 1024 * 1024)
}

fn openrouter(url: &str) -> OpenRouterProvider {
    OpenRouterProvider::new(ApiKey::new("any-openrouter-key"))
        .with_base_url(url)
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_max_response_bytes(2 * 1024 * 1024)
}

fn openai(url: &str) -> OpenAiProvider {
    OpenAiProvider::new(ApiKey::new("any-openai-key"))
        .with_base_url(&format!("{url}/v1"))
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_max_response_bytes(2 * 1024 * 1024)
}

/// Vertex AI through the emulator's token endpoint (`gcloud auth application-default
/// login`'s file shape).
fn vertex(url: &str) -> VertexProvider {
    let file = serde_json::json!({"type": "authorized_user", "client_id": "emulator-client",
        "client_secret": "emulator-secret", "refresh_token": "emulator-refresh",
        "token_uri": format!("{url}/emulator/vertex/token")});
    let credentials =
        Credentials::from_json(file.to_string().as_bytes(), "the test's credentials").unwrap();
    VertexProvider::new(credentials, "proj-v", "us-central1")
        .unwrap()
        .with_base_url(url)
        .unwrap()
        .with_timeout(TIMEOUT)
        .with_max_response_bytes(2 * 1024 * 1024)
}

fn request(model: &str) -> GenerateRequest {
    GenerateRequest::new("a lighthouse").with_model(model)
}

/// Images the emulator served (paid calls).
fn paid(emulator: &Emulator) -> u64 {
    emulator.stats().totals.admitted
}

/// What each fault must become, and whether the upstream counted the call.
fn expected(fault: Fault) -> (Option<ErrorKind>, bool) {
    match fault {
        Fault::ResetBeforeHeaders => (Some(ErrorKind::Unavailable), false),
        Fault::ResetMidBody => (Some(ErrorKind::Unavailable), true),
        Fault::SlowBody => (Some(ErrorKind::Timeout), true),
        Fault::TruncatedBody => (Some(ErrorKind::InvalidResponse), true),
        Fault::Html502 => (Some(ErrorKind::Unavailable), false),
        Fault::Html200 => (Some(ErrorKind::InvalidResponse), false),
        // The body is the real answer: a client that parses it regardless gets the image.
        Fault::WrongContentType => (None, true),
        Fault::OversizedBody => (Some(ErrorKind::InvalidResponse), true),
        Fault::NeverResponds => (Some(ErrorKind::Timeout), true),
        Fault::Burst401 => (Some(ErrorKind::Unauthorized), false),
        Fault::Burst500 => (Some(ErrorKind::Unavailable), false),
    }
}

async fn each_fault_on(provider: &dyn ImageProvider, model: &str, emulator: &Emulator) {
    for fault in Fault::ALL {
        let before = paid(emulator);
        emulator.force_fault(fault);
        let (kind, counted) = expected(fault);
        let result = provider.generate(&request(model)).await;
        match (kind, result) {
            (Some(kind), Err(e)) => assert_eq!(e.kind(), kind, "{fault:?}: {e}"),
            (None, Ok(response)) => assert_eq!(response.images.len(), 1, "{fault:?}"),
            (kind, Ok(_)) => panic!("{fault:?}: expected {kind:?}, got an image"),
            (None, Err(e)) => panic!("{fault:?}: expected an image, got {e}"),
        }
        assert_eq!(
            paid(emulator) - before,
            u64::from(counted),
            "{fault:?}: images paid for"
        );
        if matches!(fault, Fault::Burst401 | Fault::Burst500) {
            // burst_length = 2: the second answer is the same, then it is over.
            let e = provider.generate(&request(model)).await.unwrap_err();
            assert_eq!(Some(e.kind()), kind, "{fault:?}, second of the burst: {e}");
        }
        // The same client is served at once afterwards: no poisoned connection, no stuck state.
        let after = provider.generate(&request(model)).await;
        assert!(after.is_ok(), "after {fault:?}: {:?}", after.err());
    }
    let counts = emulator.stats().faults;
    for fault in Fault::ALL {
        let n = if matches!(fault, Fault::Burst401 | Fault::Burst500) {
            2
        } else {
            1
        };
        assert_eq!(
            counts.get(fault.as_str()),
            Some(&n),
            "{fault:?}: {counts:?}"
        );
    }
}

/// On the wall clock: a slow body is slow in real time (1 KiB/s against a 1.5 s timeout).
async fn start_on_wall_clock(text: &str) -> (Emulator, String, tokio::sync::oneshot::Sender<()>) {
    let config = EmulatorConfig::parse(Path::new("test.toml"), text).unwrap();
    let emulator = Emulator::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(emulator.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    (emulator, url, stop)
}

#[tokio::test]
async fn every_fault_reaches_the_gemini_provider_as_its_kind() {
    let (emulator, url, _stop) = start_on_wall_clock(&config(POOLS)).await;
    each_fault_on(&gemini(&url), "gemini-2.5-flash-image", &emulator).await;
}

#[tokio::test]
async fn every_fault_reaches_the_openrouter_provider_as_its_kind() {
    let (emulator, url, _stop) = start_on_wall_clock(&config(POOLS)).await;
    each_fault_on(
        &openrouter(&url),
        "google/gemini-2.5-flash-image",
        &emulator,
    )
    .await;
}

#[tokio::test]
async fn every_fault_reaches_the_openai_provider_as_its_kind() {
    let (emulator, url, _stop) = start_on_wall_clock(&config(POOLS)).await;
    each_fault_on(&openai(&url), "gpt-image-1", &emulator).await;
}

#[tokio::test]
async fn every_fault_reaches_the_vertex_provider_as_its_kind() {
    let (emulator, url, _stop) = start_on_wall_clock(&config(POOLS)).await;
    each_fault_on(&vertex(&url), "gemini-2.5-flash-image", &emulator).await;
}

#[tokio::test]
async fn a_pools_own_table_replaces_the_global_one_and_bursts_stay_in_their_pool() {
    let text = config(
        r#"
[upstream.faults]
html_502 = 1.0

[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]

[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-3-pro-image-preview"]
[upstream.pool.faults]
burst_401 = 1.0
burst_length = 1

[[upstream.pool]]
provider = "openrouter"
project = "acct"
models = ["google/gemini-2.5-flash-image"]
[upstream.pool.faults]
html_200 = 1.0

[[upstream.pool]]
provider = "openrouter"
project = "acct"
models = ["google/gemini-3-pro-image-preview"]
"#,
    );
    let emu = start(&text).await;
    // OpenRouter names the model in the body: the pool's own table is found from it.
    let router = openrouter(&emu.url);
    let e = router
        .generate(&request("google/gemini-2.5-flash-image"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{e}");
    let e = router
        .generate(&request("google/gemini-3-pro-image-preview"))
        .await
        .unwrap_err();
    assert_eq!(e.http_status(), Some(502), "{e}");
    emu.emulator.reset();
    let provider = gemini(&emu.url);
    for _ in 0..3 {
        let e = provider
            .generate(&request("gemini-2.5-flash-image"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
        assert_eq!(e.http_status(), Some(502));
        let e = provider
            .generate(&request("gemini-3-pro-image-preview"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
    }
    let stats = emu.emulator.stats();
    assert_eq!(stats.faults.get("html_502"), Some(&3));
    assert_eq!(stats.faults.get("burst_401"), Some(&3));
    // Neither family of these faults reached the upstream.
    assert_eq!(stats.totals.admitted, 0);
    emu.stop().await;
}

#[tokio::test]
async fn drawn_faults_are_seeded_and_each_ends_typed_with_no_image_paid_twice() {
    let text = config(
        r#"
[upstream.faults]
reset_before_headers = 0.05
reset_mid_body = 0.05
truncated_body = 0.05
html_502 = 0.05
html_200 = 0.05
wrong_content_type = 0.05
oversized_body = 0.05
oversized_body_bytes = 3145728
burst_401 = 0.02
burst_500 = 0.03
burst_length = 2

[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]
"#,
    );
    let mut runs = Vec::new();
    for _ in 0..2 {
        let emu = start(&text).await;
        let provider = gemini(&emu.url);
        let mut outcomes = Vec::new();
        let mut images = 0u64;
        for _ in 0..60 {
            match provider.generate(&request("gemini-2.5-flash-image")).await {
                Ok(response) => {
                    images += response.images.len() as u64;
                    outcomes.push("ok".to_owned());
                }
                Err(e) => {
                    assert!(
                        matches!(
                            e.kind(),
                            ErrorKind::Unavailable
                                | ErrorKind::InvalidResponse
                                | ErrorKind::Unauthorized
                        ),
                        "{e}"
                    );
                    outcomes.push(e.kind().as_str().to_owned());
                }
            }
        }
        let stats = emu.emulator.stats();
        let struck = |f: Fault| stats.faults.get(f.as_str()).copied().unwrap_or(0);
        // Paid = images received + images lost to a fault after the upstream decided.
        let lost_after_paying = struck(Fault::ResetMidBody)
            + struck(Fault::TruncatedBody)
            + struck(Fault::OversizedBody);
        assert_eq!(stats.totals.admitted, images + lost_after_paying);
        let errors = outcomes.iter().filter(|o| *o != "ok").count() as u64;
        let total: u64 = stats.faults.values().sum();
        assert_eq!(errors, total - struck(Fault::WrongContentType));
        assert!(errors > 5 && errors < 40, "{errors} errors of 60");
        runs.push(outcomes);
        emu.stop().await;
    }
    assert_eq!(runs[0], runs[1], "the same seed, the same faults");
}

#[tokio::test]
async fn an_answer_that_never_comes_does_not_hold_up_shutdown() {
    let emu = start(&config(POOLS)).await;
    let provider = gemini(&emu.url).with_timeout(Duration::from_secs(30));
    emu.emulator.force_fault(Fault::NeverResponds);
    let call =
        tokio::spawn(async move { provider.generate(&request("gemini-2.5-flash-image")).await });
    // Wait until the upstream took it (counted), then stop the emulator.
    while emu.emulator.stats().totals.admitted == 0 {
        tokio::task::yield_now().await;
    }
    tokio::time::timeout(Duration::from_secs(10), emu.stop())
        .await
        .expect("the emulator stopped");
    let e = call.await.unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
}

#[test]
fn a_faults_table_that_cannot_be_used_names_its_key() {
    let e = EmulatorConfig::parse(
        Path::new("e.toml"),
        &config(
            r#"
[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["m"]
[upstream.pool.faults]
html_502 = -0.1
"#,
        ),
    )
    .unwrap_err();
    assert_eq!(e.key, "upstream.pool[0].faults.html_502");
    let e = EmulatorConfig::parse(
        Path::new("e.toml"),
        &config("[upstream.faults]\nhtml_503 = 0.1\n[[upstream.pool]]\nprovider = \"gemini\"\nproject = \"p\"\nmodels = [\"m\"]\n"),
    )
    .unwrap_err();
    assert!(e.expected.contains("unknown field `html_503`"), "{e}");
}

/// The raw bytes a client gets for one generation request, and how the reading ended.
async fn raw_call(url: &str) -> (Vec<u8>, std::io::Result<()>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let host = url.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    let body = r#"{"contents":[{"parts":[{"text":"a heron"}]}]}"#;
    let head = format!(
        "POST /v1beta/models/gemini-2.5-flash-image:generateContent HTTP/1.1\r\nHost: {host}\r\n\
         x-goog-api-key: k\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e)),
        }
    }
}

#[tokio::test]
async fn resets_are_real_tcp_resets_before_or_after_the_headers() {
    let emu = start(&config(POOLS)).await;
    emu.emulator.force_fault(Fault::ResetBeforeHeaders);
    let (got, ended) = raw_call(&emu.url).await;
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert_eq!(
        ended.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );

    emu.emulator.force_fault(Fault::ResetMidBody);
    let (got, ended) = raw_call(&emu.url).await;
    let text = String::from_utf8_lossy(&got);
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        !body.is_empty() && body.len() < length,
        "{} of {length} bytes",
        body.len()
    );
    assert_eq!(
        ended.unwrap_err().kind(),
        std::io::ErrorKind::ConnectionReset
    );
    emu.stop().await;
}

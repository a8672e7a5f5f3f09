//! The status page in a real browser: headless Chromium (Debian's `chromium`) loads it from a
//! gateway in front of the emulator, and from small servers answering `/status.json` with
//! fixtures (a pool with no limits, a billing block, thousands of pools, a gateway that stops
//! answering); the test reads the DOM after the page's scripts ran.
//!
//! Without Chromium the tests say why and pass, unless `IMAGEGATE_REQUIRE_CHROMIUM=1` (as
//! `.ci/run` sets), which turns that into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // failures are failed tests

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::{settings, stack};
use imagegate_core::clock::Clock as _;
use imagegate_server::{ClientConfig, STATUS_PAGE, key_sha256};
use serde_json::{Value, json};

/// Chromium, or `None` (after saying why) when it is absent and not required.
fn chromium() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("IMAGEGATE_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
            "IMAGEGATE_REQUIRE_CHROMIUM=1 but no chromium on PATH (apt-get install chromium)"
        );
        eprintln!(
            "skipping: no chromium on PATH (apt-get install chromium; set IMAGEGATE_REQUIRE_CHROMIUM=1 to fail instead)"
        );
    }
    found
}

/// Where the screenshots go: this test binary's own output directory.
fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status_page");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs Chromium on `url` with `args` after the common ones, in UTC, with a fresh profile.
async fn run_chromium(browser: &Path, url: &str, args: &[String]) -> String {
    let browser = browser.to_owned();
    let url = url.to_owned();
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        let profile = tempfile::tempdir().unwrap();
        let output = Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--lang=en-GB",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(&args)
            .arg(&url)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "chromium failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    })
    .await
    .unwrap()
}

/// The DOM after the scripts ran for `budget_ms` of virtual time.
async fn dom(browser: &Path, url: &str, budget_ms: u32) -> String {
    run_chromium(
        browser,
        url,
        &[
            format!("--virtual-time-budget={budget_ms}"),
            "--dump-dom".to_owned(),
        ],
    )
    .await
}

/// A PNG of the page at `width` x `height`, written to `file`.
async fn screenshot(browser: &Path, url: &str, file: &Path, width: u32, height: u32, dark: bool) {
    let scheme = if dark {
        "--force-dark-mode"
    } else {
        "--disable-features=WebContentsForceDark"
    };
    run_chromium(
        browser,
        url,
        &[
            "--virtual-time-budget=4000".to_owned(),
            scheme.to_owned(),
            format!("--window-size={width},{height}"),
            format!("--screenshot={}", file.display()),
        ],
    )
    .await;
    let png = std::fs::read(file).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}", file.display());
}

/// The value of `attr` on the `<body>` tag.
fn body_attr(dom: &str, attr: &str) -> String {
    let body = &dom[dom.find("<body").unwrap()..];
    let body = &body[..body.find('>').unwrap()];
    let start = body.find(&format!("{attr}=\"")).unwrap() + attr.len() + 2;
    body[start..start + body[start..].find('"').unwrap()].to_owned()
}

fn assert_clean(dom: &str) {
    assert_eq!(
        body_attr(dom, "data-errors"),
        "0",
        "the page reported an error: {dom}"
    );
    assert!(
        body_attr(dom, "data-renders").parse::<u32>().unwrap() >= 1,
        "never rendered: {dom}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_pools_the_429_and_the_resets_from_a_gateway() {
    let Some(browser) = chromium() else { return };
    let s = stack(settings()).await;
    let client = reqwest::Client::new();
    for (model, status) in [("gpt-image-1", 200), ("dall-e-3", 200), ("dall-e-3", 429)] {
        let r = client
            .post(format!("{}/v1/images/generations", s.url))
            .json(&json!({"model": model, "prompt": "a lighthouse"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{model}");
    }
    let status: Value = reqwest::get(format!("{}/status.json", s.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let now = status["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (now["requests"].as_u64(), now["rate_limited"].as_u64()),
        (Some(3), Some(1)),
        "{status}"
    );
    assert_eq!(status["history"].as_array().unwrap().len(), 60);
    for path in ["/", "/status"] {
        let page = reqwest::get(format!("{}{path}", s.url)).await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(page.text().await.unwrap(), STATUS_PAGE);
    }

    let dom = dom(&browser, &format!("{}/", s.url), 4000).await;
    assert_clean(&dom);
    assert_eq!(body_attr(&dom, "data-state"), "ok", "{dom}");
    // The pool bars: the pro pool's rpm is full, from its preset.
    let pro = &dom[dom
        .find(r#"data-pool="gemini / gw / gemini-3-pro-image-preview""#)
        .unwrap()..];
    let pro = &pro[..pro.find(r#"class="card pool"#).unwrap_or(pro.len())];
    assert!(pro.contains(r#"data-dim="rpm""#), "{pro}");
    assert!(pro.contains("rpm: 1 / 1"), "{pro}");
    assert!(
        pro.contains(r#"class="fill full" style="width: 100%;""#),
        "{pro}"
    );
    assert!(pro.contains("preset/configured"), "{pro}");
    // The next per-minute slot: a minute after the call at noon (UTC is local here).
    assert!(pro.contains("next slot in"), "{pro}");
    assert!(pro.contains("(12:01:00 local)"), "{pro}");
    // The daily pool's reset: midnight in Los Angeles, 08:00 UTC.
    let daily = &dom[dom
        .find(r#"data-pool="gemini / gw / gemini-3.1-flash-image-preview""#)
        .unwrap()..];
    assert!(
        daily.contains("Fri 08:00 local, Fri 00:00 Pacific"),
        "{daily}"
    );
    // The headline says which pool holds requests and when it frees up.
    assert!(
        dom.contains(r#"<b>gemini / gw / gemini-3-pro-image-preview</b>: rpm full, frees in <span data-at="1768478460000">"#),
        "{dom}"
    );
    // The 429 the gateway answered, in the events.
    assert!(dom.contains(r#"data-event="answered_429""#), "{dom}");
    assert!(
        dom.contains("429 answered to anonymous on route pro: rate limited"),
        "{dom}"
    );
    assert!(dom.contains("3 requests, 1 429s in the last hour"), "{dom}");
    assert!(dom.contains("call to flash: success in 0 ms"), "{dom}");

    let out = out_dir();
    screenshot(
        &browser,
        &s.url,
        &out.join("status-page.png"),
        1100,
        1500,
        false,
    )
    .await;
    screenshot(
        &browser,
        &s.url,
        &out.join("status-page-360.png"),
        360,
        2400,
        false,
    )
    .await;
    screenshot(
        &browser,
        &s.url,
        &out.join("status-page-dark.png"),
        1100,
        1500,
        true,
    )
    .await;
    eprintln!("screenshots in {}", out.display());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_clients_the_page_asks_for_a_key_and_uses_the_one_in_the_fragment() {
    let Some(browser) = chromium() else { return };
    let key = "ig_status-page-test-key";
    let mut config = settings();
    config.clients.push(ClientConfig {
        name: "web".to_owned(),
        key_sha256: key_sha256(key),
        routes: None,
        priority: Default::default(),
        budget_usd_per_day: Some(5.0),
    });
    let s = stack(config).await;
    let anonymous = reqwest::get(format!("{}/status.json", s.url))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let keyed = reqwest::Client::new()
        .get(format!("{}/status.json", s.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert_eq!(keyed.status(), 200);
    let body: Value = keyed.json().await.unwrap();
    assert_eq!(
        body["budget"]["clients"],
        json!([{"client": "web", "spent_usd": 0.0, "budget_usd_per_day": 5.0}])
    );

    let dom_without = dom(&browser, &format!("{}/status", s.url), 2000).await;
    assert_eq!(
        body_attr(&dom_without, "data-state"),
        "login",
        "{dom_without}"
    );
    assert_eq!(body_attr(&dom_without, "data-errors"), "0");
    assert!(dom_without.contains(r#"<form id="login" class="card show">"#));
    assert!(!dom_without.contains("data-pool="));

    let dom_with = dom(&browser, &format!("{}/status#key={key}", s.url), 2000).await;
    assert_clean(&dom_with);
    assert_eq!(body_attr(&dom_with, "data-state"), "ok", "{dom_with}");
    assert!(dom_with.contains(r#"data-pool="gemini / gw / gemini-3-pro-image-preview""#));
    assert!(dom_with.contains("<td>web</td>"), "{dom_with}");
    s.stop().await;
}

/// Serves the page, and `/status.json` from `answer` (called with how many came before).
async fn fixture_server(
    answer: impl Fn(usize) -> axum::response::Response + Send + Sync + 'static,
) -> (String, tokio::task::JoinHandle<()>) {
    let answer = Arc::new(answer);
    let calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/", axum::routing::get(imagegate_server::status_page))
        .route(
            "/status.json",
            axum::routing::get(move || {
                let answer = answer.clone();
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { answer(n) }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

fn json_answer(body: String) -> axum::response::Response {
    ([("content-type", "application/json")], body).into_response()
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pools_a_billing_block_and_odd_values_are_shown_without_an_error() {
    let Some(browser) = chromium() else { return };
    let body = fixture("status-bad-pools.json");
    let (url, task) = fixture_server(move |_| json_answer(body.clone())).await;
    let dom = dom(&browser, &url, 2000).await;
    assert_clean(&dom);
    assert_eq!(body_attr(&dom, "data-state"), "ok", "{dom}");
    // No limits at all.
    assert!(
        dom.contains("no limits configured or learned: nothing holds requests here"),
        "{dom}"
    );
    // Blocked for billing: first, with the reason and the advice.
    let first = &dom[dom.find(r#"class="card pool"#).unwrap()..];
    assert!(
        first.starts_with(r#"class="card pool blocked" data-pool="gemini / no-billing / gemini-3-pro-image-preview" data-blocked="billing_required""#),
        "{first}"
    );
    assert!(dom.contains("blocked: billing required"), "{dom}");
    assert!(dom.contains("until a person acts"), "{dom}");
    assert!(
        dom.contains("enable billing on project no-billing"),
        "{dom}"
    );
    // A learned limit of 0 and an unknown one.
    assert!(dom.contains("rpm: 0 / 0"), "{dom}");
    assert!(dom.contains("rpd: 0 / unknown (learning)"), "{dom}");
    // Use past the limit, a zone nobody knows, a reset that is not a time.
    assert!(dom.contains("tpm: 2500 / 1000"), "{dom}");
    assert!(dom.contains("full; when it frees up is not known"), "{dom}");
    assert!(
        dom.contains("limit 0: this project has no quota for it (billing or tier)"),
        "{dom}"
    );
    assert!(dom.contains("3 pools, 1 blocked"), "{dom}");
    assert!(
        dom.contains("<b>gemini / no-billing / gemini-3-pro-image-preview</b>: billing required"),
        "{dom}"
    );
    assert!(dom.contains("budget reached"), "{dom}");
    assert!(
        dom.contains(r#"<div class="dim" data-budget="today (UTC)"><div class="lab"><span>today (UTC): $0.1170 of $0.1000</span></div><div class="track"><div class="fill full" style="width:100.0%">"#),
        "{dom}"
    );
    assert!(dom.contains(r#"data-target="pro-nobill""#), "{dom}");
    assert!(
        dom.contains("fell back from pro-nobill to openrouter"),
        "{dom}"
    );
    assert!(
        dom.contains(
            "waiting 40 s for a per-minute slot on gemini/odd/gemini-2.5-flash-image (tpm)"
        ),
        "{dom}"
    );
    assert!(
        dom.contains("upstream 429 on gemini/no-billing/gemini-3-pro-image-preview (rpm, GenerateRequestsPerMinutePerProjectPerModel-FreeTier, limit 0)"),
        "{dom}"
    );
    assert!(dom.contains("<b>&lt;img src=x onerror="), "{dom}");
    assert!(!dom.contains("pwned=\"1\""), "{dom}");
    assert!(dom.contains("no history in this answer"), "{dom}");
    assert!(
        dom.contains(
            r#"background: 3 held, the oldest waiting <span data-since="1768478280000">2 min"#
        ),
        "{dom}"
    );
    assert!(
        dom.contains(r#"<div class="prio" data-priority="interactive">interactive: 0 held</div>"#),
        "{dom}"
    );
    let shot = out_dir().join("status-page-bad-pools-360.png");
    screenshot(&browser, &url, &shot, 360, 1400, false).await;
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_pools_show_the_fullest_first_and_say_how_many_are_hidden() {
    let Some(browser) = chromium() else { return };
    let pools: Vec<Value> = (0..5000)
        .map(|i| {
            json!({
                "id": {"provider": "gemini", "project": format!("p{i:04}"), "pool": "gemini-2.5-flash-image"},
                "models": ["gemini-2.5-flash-image"],
                "day_zone": "America/Los_Angeles",
                "at": "2026-01-15T12:00:00Z",
                "dimensions": [
                    {"dimension": "rpm", "configured": 10, "learned": null, "limit": 10,
                     "used": if i == 4321 { 10 } else { i % 10 }, "remaining": 0,
                     "resets_at": "2026-01-15T12:00:40Z"},
                ]
            })
        })
        .collect();
    let body = json!({"at": "2026-01-15T12:00:00Z", "queue": {"held": 0, "max_queue": 1024},
                      "spent_usd": 0.0, "pools": pools, "disabled_targets": [], "events": []})
    .to_string();
    let (url, task) = fixture_server(move |_| json_answer(body.clone())).await;
    let dom = dom(&browser, &url, 3000).await;
    assert_clean(&dom);
    assert!(dom.contains("5000 pools"), "{dom}");
    assert!(
        dom.contains("4880 more pools not shown"),
        "{}",
        &dom[..2000]
    );
    assert_eq!(dom.matches(r#"class="card pool"#).count(), 120);
    // The one full pool comes first.
    let first = &dom[dom.find(r#"class="card pool"#).unwrap()..];
    assert!(first.contains(r#"data-pool="gemini / p4321 / gemini-2.5-flash-image""#));
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_stops_answering_keeps_the_last_data_and_says_so() {
    let Some(browser) = chromium() else { return };
    let body = fixture("status-bad-pools.json");
    let (url, task) = fixture_server(move |n| match n {
        0 => json_answer(body.clone()),
        1 => (StatusCode::SERVICE_UNAVAILABLE, "restarting").into_response(),
        _ => (StatusCode::OK, "<html>not json</html>").into_response(),
    })
    .await;
    let dom = dom(&browser, &url, 8000).await;
    assert_eq!(body_attr(&dom, "data-errors"), "0", "{dom}");
    assert_eq!(body_attr(&dom, "data-state"), "offline", "{dom}");
    assert!(dom.contains("it may be restarting"), "{dom}");
    assert!(dom.contains("showing what it said"), "{dom}");
    // The last good answer is still on screen.
    assert!(dom.contains("3 pools, 1 blocked"), "{dom}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_quota_page_shows_pools_and_hides_what_only_a_gateway_knows() {
    use imagegate_core::quota::{
        Limits, MemoryQuotaStore, PACIFIC, PoolConfig, PoolId, QuotaStore,
    };
    let Some(browser) = chromium() else { return };
    let clock = Arc::new(imagegate_core::clock::ManualClock::new(
        common::START.parse().unwrap(),
    ));
    let store = Arc::new(MemoryQuotaStore::new());
    store
        .configure(
            PoolConfig::new(
                PoolId::new("gemini", "batch", "gemini-2.5-flash-image"),
                Limits {
                    rpm: Some(10),
                    rpd: Some(100),
                    ..Limits::NONE
                },
                PACIFIC.clone(),
            ),
            clock.now(),
        )
        .await
        .unwrap();
    let app = imagegate_server::quota_page(store, clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/status", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dom = dom(&browser, &url, 2000).await;
    assert_clean(&dom);
    assert!(
        dom.contains(r#"data-pool="gemini / batch / gemini-2.5-flash-image""#),
        "{dom}"
    );
    assert!(dom.contains("rpm: 0 / 10"), "{dom}");
    assert!(dom.contains("rpd: 0 / 100"), "{dom}");
    assert!(dom.contains("Fri 08:00 local, Fri 00:00 Pacific"), "{dom}");
    for section in ["queuesec", "chartsec", "spendsec", "eventssec"] {
        assert!(
            dom.contains(&format!(r#"<section id="{section}" hidden="">"#)),
            "{section}: {dom}"
        );
    }
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_shows_held_requests_by_priority_with_the_oldest_wait() {
    let Some(browser) = chromium() else { return };
    let s = stack(settings()).await;
    let url = s.url.clone();
    let held = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{url}/v1/images/generations"))
            .json(&json!({"model": "held", "prompt": "a lighthouse"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    s.gate.started.notified().await;
    s.clock.advance(std::time::Duration::from_secs(90));
    let status: Value = reqwest::get(format!("{}/status.json", s.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        status["queue"],
        json!({"held": 1, "max_queue": 1024, "by_priority": [
            {"priority": "interactive", "held": 1, "oldest_since": "2026-01-15T12:00:00Z", "oldest_wait_ms": 90000}
        ]})
    );
    let dom = dom(&browser, &format!("{}/", s.url), 1500).await;
    assert_clean(&dom);
    assert!(
        dom.contains(r#"<b>1</b> request held of at most 1024<div class="prio" data-priority="interactive">interactive: 1 held, the oldest waiting <span data-since="1768478400000">1 min 3"#),
        "{dom}"
    );
    s.gate.release(1);
    assert_eq!(held.await.unwrap(), 200);
    s.stop().await;
}

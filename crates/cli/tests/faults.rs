//! `generate`, `batch` and `imagegate serve` against the emulator with faults injected
//! (docs/emulate.md, "Faults"): each fault ends in a typed error of its kind or in an image,
//! the router retries, moves on or stops as docs/router.md says for that kind, a batch run
//! again until done has every image, and the emulator's count of images served shows no call
//! paid twice beyond the ones a fault struck in flight.
//!
//! The emulator runs in the test's process (so a test can force the next fault); the binary
//! talks to it over loopback. The faults that stall (a slow body, an answer that never comes)
//! meet a 2-second provider timeout from the configuration, not a long sleep.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Output, Stdio};

use common::{
    KillOnDrop, decode_png, imagegate, imagegate_process, spawn_listening, stderr, stdout,
};
use imagegate_emulator::{Emulator, EmulatorConfig, Fault};
use serde_json::Value;

const MODEL: &str = "gemini-2.5-flash-image";

/// Two projects with one pool each; faults only on proj-a's pool (its own table), so a burst
/// stays there and proj-b is where the router moves on to.
fn emulator_config(faults: &str) -> String {
    format!(
        r#"
seed = 21
[upstream]
latency = "0s"
reject_latency = "0s"

[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["{MODEL}"]
[upstream.pool.faults]
slow_body_bytes_per_second = 1024
oversized_body_bytes = 3145728
burst_length = 3
{faults}

[[upstream.pool]]
provider = "gemini"
project = "proj-b"
models = ["{MODEL}"]

[[upstream.key]]
provider = "gemini"
project = "proj-a"
key = "fault-key-a"

[[upstream.key]]
provider = "gemini"
project = "proj-b"
key = "fault-key-b"
"#
    )
}

/// One route over both projects, proj-a first; a short timeout and a small response bound.
fn imagegate_config(url: &str) -> String {
    let provider = |name: &str, project: &str, env: &str| {
        format!(
            "[providers.{name}]\nkind = \"gemini\"\nbase_url = \"{url}\"\napi_key_env = \"{env}\"\n\
             project = \"{project}\"\nmodel = \"{MODEL}\"\ntimeout = \"2s\"\n\
             max_response_bytes = 2097152\n"
        )
    };
    format!(
        "default_route = \"main\"\n{}{}[routes.main]\ntargets = [\"gemini-a\", \"gemini-b\"]\n\
         [server]\ndefault_route = \"main\"\n",
        provider("gemini-a", "proj-a", "FAULT_KEY_A"),
        provider("gemini-b", "proj-b", "FAULT_KEY_B"),
    )
}

struct Running {
    emulator: Emulator,
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn start(faults: &str) -> Running {
    let config = EmulatorConfig::parse(Path::new("faults.toml"), &emulator_config(faults)).unwrap();
    let emulator = Emulator::new(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(emulator.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    Running {
        emulator,
        url,
        _stop: stop,
    }
}

/// Images served (paid) by proj-a's pool and proj-b's.
fn paid(emulator: &Emulator) -> (u64, u64) {
    let stats = emulator.stats();
    (
        stats.pools[0].counters.admitted,
        stats.pools[1].counters.admitted,
    )
}

fn struck(emulator: &Emulator, fault: Fault) -> u64 {
    emulator
        .stats()
        .faults
        .get(fault.as_str())
        .copied()
        .unwrap_or(0)
}

fn command(dir: &Path, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = imagegate(dir);
    cmd.env("FAULT_KEY_A", "fault-key-a")
        .env("FAULT_KEY_B", "fault-key-b")
        .args(args);
    cmd
}

async fn run(mut cmd: assert_cmd::Command) -> Output {
    let output = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    for shown in [stdout(&output), stderr(&output)] {
        assert!(!shown.contains("fault-key-"), "a key leaked: {shown}");
        assert!(!shown.contains("panicked"), "a panic: {shown}");
    }
    output
}

/// How `generate` through the route ends after one `fault` on proj-a, by docs/router.md:
/// the error kind when it stops (None: an image), and the images each pool served.
fn expected(fault: Fault) -> (Option<&'static str>, (u64, u64)) {
    match fault {
        // `unavailable`: the same target is retried and serves (a reset mid-body was served
        // once already, and lost in flight).
        Fault::ResetBeforeHeaders | Fault::Html502 => (None, (1, 0)),
        Fault::ResetMidBody => (None, (2, 0)),
        // `timeout`: returned at once, never retried (the image may have been billed).
        Fault::SlowBody | Fault::NeverResponds => (Some("timeout"), (1, 0)),
        // `invalid_response`: the same request would fail everywhere; returned at once.
        Fault::TruncatedBody | Fault::OversizedBody => (Some("invalid_response"), (1, 0)),
        Fault::Html200 => (Some("invalid_response"), (0, 0)),
        Fault::WrongContentType => (None, (1, 0)),
        // `unauthorized`: proj-a's target is disabled; the route moves on to proj-b.
        Fault::Burst401 => (None, (0, 1)),
        // `unavailable` three times (the first try and both retries): leave proj-a for proj-b.
        Fault::Burst500 => (None, (0, 1)),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generate_meets_every_fault_with_its_kind_and_the_routers_action() {
    let emu = start("").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        imagegate_config(&emu.url),
    )
    .unwrap();
    for fault in Fault::ALL {
        emu.emulator.reset();
        emu.emulator.force_fault(fault);
        let out = format!("{}.png", fault.as_str());
        let cmd = command(
            dir.path(),
            &[
                "generate", "a heron", "--size", "0.5K", "-o", &out, "--json",
            ],
        );
        let output = run(cmd).await;
        let (kind, served) = expected(fault);
        let json: Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{fault:?}: stdout is not JSON ({e}): {}", stdout(&output)));
        match kind {
            None => {
                assert!(output.status.success(), "{fault:?}: {}", stderr(&output));
                let (w, h, _) = decode_png(&std::fs::read(dir.path().join(&out)).unwrap());
                // gemini-2.5-flash-image has one size (1K): `--size` is not sent for it.
                assert_eq!((w, h), (1024, 1024), "{fault:?}");
            }
            Some(kind) => {
                assert_eq!(
                    output.status.code(),
                    Some(1),
                    "{fault:?}: {}",
                    stderr(&output)
                );
                assert_eq!(json["error"]["kind"], kind, "{fault:?}: {json}");
                assert!(!dir.path().join(&out).exists(), "{fault:?}");
            }
        }
        assert_eq!(
            paid(&emu.emulator),
            served,
            "{fault:?}: images served by a, b"
        );
        // The 500 burst runs its three answers (the first try and both retries); the 401
        // disables the target after one.
        let answers = if fault == Fault::Burst500 { 3 } else { 1 };
        assert_eq!(struck(&emu.emulator, fault), answers, "{fault:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_run_again_until_done_has_every_image_and_pays_only_for_faults_in_flight() {
    // Over a third of proj-a's answers fail, every fault by a seeded draw; proj-b is clean.
    let emu = start(
        "reset_before_headers = 0.04\nreset_mid_body = 0.04\nslow_body = 0.03\n\
         truncated_body = 0.04\nhtml_502 = 0.04\nhtml_200 = 0.04\nwrong_content_type = 0.04\n\
         oversized_body = 0.03\nnever_responds = 0.03\nburst_401 = 0.02\nburst_500 = 0.03\n",
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        imagegate_config(&emu.url),
    )
    .unwrap();
    let jobs: String = (0..12)
        .map(|i| format!("{{\"id\": \"j{i}\", \"output\": \"j{i}\", \"prompt\": \"a heron number {i}\", \"size\": \"0.5K\"}}\n"))
        .collect();
    std::fs::write(dir.path().join("jobs.jsonl"), jobs).unwrap();
    let mut runs = 0;
    loop {
        runs += 1;
        let cmd = command(
            dir.path(),
            &[
                "batch",
                "jobs.jsonl",
                "--out",
                "out",
                "--route",
                "main",
                "--concurrency",
                "4",
            ],
        );
        let output = run(cmd).await;
        if output.status.success() {
            break;
        }
        assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
        assert!(
            runs < 8,
            "still failing after {runs} runs: {}",
            stderr(&output)
        );
    }
    let mut images: Vec<String> = std::fs::read_dir(dir.path().join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    images.sort();
    let want: Vec<String> = {
        let mut w: Vec<String> = (0..12).map(|i| format!("j{i}.png")).collect();
        w.sort();
        w
    };
    assert_eq!(images, want);
    let (a, b) = paid(&emu.emulator);
    // Every image served was either kept, or lost to a fault that struck after the upstream
    // served it (the call was in flight): nothing else was paid twice.
    let lost_in_flight = [
        Fault::ResetMidBody,
        Fault::SlowBody,
        Fault::TruncatedBody,
        Fault::OversizedBody,
        Fault::NeverResponds,
    ]
    .into_iter()
    .map(|f| struck(&emu.emulator, f))
    .sum::<u64>();
    assert_eq!(
        a + b,
        12 + lost_in_flight,
        "a {a}, b {b}, lost {lost_in_flight}"
    );
    let total: u64 = emu.emulator.stats().faults.values().sum();
    assert!(
        total > 0,
        "the seeded draw struck nothing: the test proves nothing"
    );
}

/// Starts `imagegate serve` in `dir` on a free port: the gateway, killed when dropped, and
/// its URL.
fn serve(dir: &Path) -> (KillOnDrop, String) {
    let (child, url) = spawn_listening(
        imagegate_process(dir)
            .env("FAULT_KEY_A", "fault-key-a")
            .env("FAULT_KEY_B", "fault-key-b")
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::null()),
    );
    (KillOnDrop(Some(child)), url)
}

/// An OpenAI images request to the gateway: the status code and the JSON body.
async fn images_request(url: String) -> (u16, Value) {
    tokio::task::spawn_blocking(move || {
        let host = url.strip_prefix("http://").unwrap();
        let mut stream = TcpStream::connect(host).unwrap();
        let body = format!(r#"{{"model": "{MODEL}", "prompt": "a heron", "size": "512x512"}}"#);
        write!(
            stream,
            "POST /v1/images/generations HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let response = String::from_utf8(response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let json =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {head}\n{body}"));
        (status, json)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_answers_every_fault_in_its_dialect_and_keeps_serving() {
    let emu = start("").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        imagegate_config(&emu.url),
    )
    .unwrap();
    let (mut gateway, url) = serve(dir.path());
    // The 401 burst last: it disables proj-a's target for the gateway's life.
    let mut order: Vec<Fault> = Fault::ALL
        .into_iter()
        .filter(|f| *f != Fault::Burst401)
        .collect();
    order.push(Fault::Burst401);
    for fault in order {
        emu.emulator.reset();
        emu.emulator.force_fault(fault);
        let (status, body) = images_request(url.clone()).await;
        let (kind, served) = expected(fault);
        match kind {
            None => {
                assert_eq!(status, 200, "{fault:?}: {body}");
                assert!(body["data"][0]["b64_json"].is_string(), "{fault:?}");
            }
            Some("timeout") => {
                assert_eq!(status, 504, "{fault:?}: {body}");
                assert_eq!(body["error"]["code"], "upstream_timeout", "{fault:?}");
            }
            Some(_) => {
                assert_eq!(status, 502, "{fault:?}: {body}");
                assert_eq!(body["error"]["code"], "upstream_error", "{fault:?}");
            }
        }
        assert_eq!(
            paid(&emu.emulator),
            served,
            "{fault:?}: images served by a, b"
        );
        assert!(
            gateway.0.as_mut().unwrap().try_wait().unwrap().is_none(),
            "{fault:?}: the gateway exited"
        );
    }
    // proj-a's target stays disabled after the 401: the next request goes to proj-b at once.
    emu.emulator.reset();
    let (status, _) = images_request(url.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(paid(&emu.emulator), (0, 1));
    assert!(gateway.0.as_mut().unwrap().try_wait().unwrap().is_none());
}

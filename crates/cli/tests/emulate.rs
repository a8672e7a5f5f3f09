//! `imagegate emulate` as a user runs it: the first line names the port, `imagegate generate
//! --provider gemini` (and `--provider openai`) pointed at it writes the emulator's PNG, the
//! pools hold, a route falls back across OpenAI, Gemini, Vertex AI and OpenRouter as each pool
//! fills, and SIGTERM or SIGINT stop it with exit 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;

use common::{KillOnDrop, decode_png, emulate, imagegate, stderr};
use imagegate_core::GenerateRequest;
use serde_json::Value;

const KEY: &str = "emulator-cli-credential";
const MODEL: &str = "gemini-2.5-flash-image";
const PROMPT: &str = "A watercolor lighthouse at dawn";

const CONFIG: &str = r#"
[upstream]
latency = "0s"
reject_latency = "0s"

[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]
rpm = 1

[[upstream.key]]
provider = "gemini"
project = "proj-a"
key = "emulator-cli-credential"
"#;

/// `GET path` over a plain socket: the response body.
fn get(url: &str, path: &str) -> String {
    let host = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

fn stop(mut running: KillOnDrop, signal: &str) -> std::process::ExitStatus {
    let mut child = running.0.take().unwrap();
    let pid = child.id().to_string();
    let sent = Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(sent.success());
    child.wait().unwrap()
}

fn generate(dir: &Path, url: &str, out: &str, extra: &[&str]) -> std::process::Output {
    let mut cmd = imagegate(dir);
    cmd.env("GEMINI_API_KEY", KEY)
        .env("GEMINI_BASE_URL", url)
        .args(["generate", PROMPT, "--provider", "gemini", "-o", out])
        .args(extra);
    cmd.output().unwrap()
}

#[test]
fn generate_against_the_emulator_writes_its_png_and_sigterm_stops_it_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = emulate(dir.path(), CONFIG);

    let output = generate(dir.path(), &url, "out.png", &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let written = std::fs::read(dir.path().join("out.png")).unwrap();
    let (width, height, _) = decode_png(&written);
    assert_eq!((width, height), (1024, 1024));
    // Byte for byte the mock renderer's picture of this prompt on this model.
    let expected =
        imagegate_mock::render::render_image(MODEL, &GenerateRequest::new(PROMPT), 0).unwrap();
    assert_eq!(written, expected.bytes.to_vec());

    // RPM 1: the second call in the minute is refused with the quota named. The emulator's
    // clock is real, so the run is told not to wait for the window (by default `generate`
    // would wait up to 2 minutes for it) and must fail at once saying when to retry.
    let output = generate(dir.path(), &url, "second.png", &["--max-wait", "0s"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("rpm"), "{}", stderr(&output));
    assert!(!dir.path().join("second.png").exists());

    let stats: Value = serde_json::from_str(&get(&url, "/emulator/stats")).unwrap();
    assert_eq!(stats["pools"][0]["counters"]["admitted"], 1, "{stats}");
    assert!(
        stats["pools"][0]["counters"]["rate_limited"]
            .as_u64()
            .unwrap()
            >= 1,
        "{stats}"
    );

    let status = stop(child, "-TERM");
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
}

#[test]
fn sigint_stops_it_with_exit_zero_and_a_bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (child, _url) = emulate(dir.path(), CONFIG);
    assert_eq!(stop(child, "-INT").code(), Some(0));

    std::fs::write(
        dir.path().join("bad.toml"),
        CONFIG.replace("project = \"proj-a\"\nkey", "project = \"proj-z\"\nkey"),
    )
    .unwrap();
    let output = imagegate(dir.path())
        .args(["emulate", "bad.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let message = stderr(&output);
    assert!(message.contains("upstream.key[0].project"), "{message}");
    assert!(
        output.stdout.is_empty(),
        "nothing listens, so no listening line"
    );
}

const OPENAI_KEY: &str = "emulator-cli-openai-credential";

/// An OpenAI organization allowed one image a minute, a Gemini project and an OpenRouter
/// account with one request a minute each (in this order in the stats).
const THREE_PROVIDERS: &str = r#"
[upstream]
latency = "0s"
reject_latency = "0s"

[[upstream.pool]]
provider = "openai"
project = "acme"
models = ["gpt-image-1"]
ipm = 1

[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["gemini-2.5-flash-image"]
rpm = 1

[[upstream.pool]]
provider = "openrouter"
project = "acct"
models = ["google/gemini-2.5-flash-image"]
rpm = 1

[[upstream.key]]
provider = "openai"
project = "acme"
key = "emulator-cli-openai-credential"

[[upstream.key]]
provider = "gemini"
project = "proj-a"
key = "emulator-cli-credential"
"#;

/// `imagegate ARGS` with every provider pointed at the emulator.
fn against(dir: &Path, url: &str, args: &[&str]) -> std::process::Output {
    let output = imagegate(dir)
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .env("OPENAI_BASE_URL", format!("{url}/v1"))
        .env("GEMINI_API_KEY", KEY)
        .env("GEMINI_BASE_URL", url)
        .env("OPENROUTER_API_KEY", "any-openrouter-key")
        .env("OPENROUTER_BASE_URL", format!("{url}/api/v1"))
        .args(args)
        .output()
        .unwrap();
    for shown in [
        stderr(&output),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    ] {
        assert!(!shown.contains(OPENAI_KEY), "the key leaked: {shown}");
    }
    output
}

#[test]
fn generate_with_the_openai_provider_against_the_emulator_and_its_429() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = emulate(dir.path(), THREE_PROVIDERS);

    let output = against(
        dir.path(),
        &url,
        &["generate", PROMPT, "--provider", "openai", "-o", "out.png"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let written = std::fs::read(dir.path().join("out.png")).unwrap();
    // Byte for byte the mock renderer's picture of this prompt on the default model.
    let expected =
        imagegate_mock::render::render_image("gpt-image-1", &GenerateRequest::new(PROMPT), 0)
            .unwrap();
    assert_eq!(written, expected.bytes.to_vec());

    // IPM 1: the answer's x-ratelimit-* headers said none remain, so the second run knows
    // without asking and, told not to wait, fails at once naming the images-per-minute quota.
    let output = against(
        dir.path(),
        &url,
        &[
            "generate",
            PROMPT,
            "--provider",
            "openai",
            "-o",
            "second.png",
            "--max-wait",
            "0s",
        ],
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("ipm"), "{}", stderr(&output));
    let stats: Value = serde_json::from_str(&get(&url, "/emulator/stats")).unwrap();
    assert_eq!(stats["pools"][0]["counters"]["admitted"], 1, "{stats}");

    // A fresh state knows nothing: the emulator's own 429 is classified as OpenAI's.
    std::fs::remove_dir_all(dir.path().join(".state")).unwrap();
    let output = against(
        dir.path(),
        &url,
        &[
            "generate",
            PROMPT,
            "--provider",
            "openai",
            "-o",
            "third.png",
            "--max-wait",
            "0s",
        ],
    );
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("status=429 retry_after_ms="),
        "the emulator's 429 was seen: {message}"
    );
    assert!(message.contains("[dimension ipm, limit 1]"), "{message}");
    let stats: Value = serde_json::from_str(&get(&url, "/emulator/stats")).unwrap();
    assert_eq!(stats["pools"][0]["counters"]["rate_limited"], 1, "{stats}");

    assert_eq!(stop(child, "-TERM").code(), Some(0));
}

#[test]
fn a_route_across_openai_gemini_and_openrouter_falls_back_as_each_pool_fills() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = emulate(dir.path(), THREE_PROVIDERS);
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "default_route = \"main\"\n\
         [providers.gemini]\nproject = \"proj-a\"\n\
         [providers.openai]\nproject = \"acme\"\n\
         [providers.openrouter]\nproject = \"acct\"\nmodel = \"google/gemini-2.5-flash-image\"\n\
         [routes.main]\ntargets = [\"openai\", \"gemini\", \"openrouter\"]\n",
    )
    .unwrap();
    let mut served = Vec::new();
    for i in 0..3 {
        let out = format!("image-{i}.png");
        let output = against(
            dir.path(),
            &url,
            &["generate", PROMPT, "-o", &out, "--json", "--max-wait", "0s"],
        );
        assert!(output.status.success(), "{i}: {}", stderr(&output));
        let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
        served.push(summary["model"].as_str().unwrap().to_owned());
        assert!(dir.path().join(&out).is_file());
    }
    assert_eq!(
        served,
        [
            "gpt-image-1",
            "gemini-2.5-flash-image",
            "google/gemini-2.5-flash-image"
        ]
    );
    // Every pool full: the fourth fails at once, naming when to retry.
    let output = against(
        dir.path(),
        &url,
        &["generate", PROMPT, "-o", "fourth.png", "--max-wait", "0s"],
    );
    assert!(!output.status.success());
    // Each pool admitted its one image; the OpenAI pool was never asked past its limit: the
    // first answer's x-ratelimit-* headers said none remained (Gemini and OpenRouter, with no
    // limits configured, learned theirs from one 429 each).
    let stats: Value = serde_json::from_str(&get(&url, "/emulator/stats")).unwrap();
    let pools = stats["pools"].as_array().unwrap();
    for pool in pools {
        assert_eq!(pool["counters"]["admitted"], 1, "{stats}");
    }
    assert_eq!(pools[0]["provider"], "openai");
    assert_eq!(pools[0]["counters"]["rate_limited"], 0, "{stats}");
    assert_eq!(stop(child, "-TERM").code(), Some(0));
}

/// A `gcloud auth application-default login` credentials file whose token endpoint is the
/// emulator's.
fn vertex_credentials(dir: &Path, url: &str) -> std::path::PathBuf {
    let file = dir.join("adc.json");
    let json = serde_json::json!({"type": "authorized_user", "client_id": "emulator-client",
        "client_secret": "emulator-secret", "refresh_token": "emulator-refresh",
        "token_uri": format!("{url}/emulator/vertex/token")});
    std::fs::write(&file, json.to_string()).unwrap();
    file
}

#[test]
fn a_route_across_all_four_providers_falls_back_as_each_pool_fills() {
    let dir = tempfile::tempdir().unwrap();
    // Vertex AI in us-central1, one request a minute of shared capacity, last in the stats.
    let config = format!(
        "{THREE_PROVIDERS}\n[[upstream.pool]]\nprovider = \"vertex\"\nproject = \"proj-v/us-central1\"\nmodels = [\"gemini-2.5-flash-image\"]\nrpm = 1\n"
    );
    let (child, url) = emulate(dir.path(), &config);
    let credentials = vertex_credentials(dir.path(), &url);
    std::fs::write(
        dir.path().join("imagegate.toml"),
        format!(
            "default_route = \"main\"\n\
             [providers.gemini]\nproject = \"proj-a\"\n\
             [providers.openai]\nproject = \"acme\"\n\
             [providers.vertex-us]\nkind = \"vertex\"\nproject = \"proj-v/us-central1\"\nbase_url = \"{url}\"\n\
             [providers.openrouter]\nproject = \"acct\"\nmodel = \"google/gemini-2.5-flash-image\"\n\
             [routes.main]\ntargets = [\"openai\", \"gemini\", \"vertex-us\", \"openrouter\"]\n"
        ),
    )
    .unwrap();
    let admitted = || -> Vec<u64> {
        let stats: Value = serde_json::from_str(&get(&url, "/emulator/stats")).unwrap();
        stats["pools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["counters"]["admitted"].as_u64().unwrap())
            .collect()
    };
    let run = |out: &str| {
        let mut cmd = imagegate(dir.path());
        cmd.env("OPENAI_API_KEY", OPENAI_KEY)
            .env("OPENAI_BASE_URL", format!("{url}/v1"))
            .env("GEMINI_API_KEY", KEY)
            .env("GEMINI_BASE_URL", &url)
            .env("OPENROUTER_API_KEY", "any-openrouter-key")
            .env("OPENROUTER_BASE_URL", format!("{url}/api/v1"))
            .env("GOOGLE_APPLICATION_CREDENTIALS", &credentials)
            .args(["generate", PROMPT, "-o", out, "--max-wait", "0s"]);
        let output = cmd.output().unwrap();
        for shown in [
            stderr(&output),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ] {
            assert!(!shown.contains(OPENAI_KEY), "the key leaked: {shown}");
            assert!(
                !shown.contains("emulator-vertex-access-"),
                "the token leaked: {shown}"
            );
        }
        output
    };
    // Stats order: openai, gemini, openrouter, vertex. Each run is served by the next pool
    // with room: OpenAI (whose headers then say it is full), Gemini (learning its limit from
    // the 429 of the third run), Vertex AI, and OpenRouter once Vertex's shared capacity
    // answers 429.
    let expected: [[u64; 4]; 4] = [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 0, 1], [1, 1, 1, 1]];
    for (i, after) in expected.iter().enumerate() {
        let output = run(&format!("image-{i}.png"));
        assert!(output.status.success(), "run {i}: {}", stderr(&output));
        assert_eq!(admitted(), after, "run {i}");
    }
    // Every pool full: the fifth fails, saying so.
    let output = run("image-4.png");
    assert!(!output.status.success());
    let stats: Value = serde_json::from_str(&get(&url, "/emulator/stats")).unwrap();
    assert_eq!(stats["pools"][0]["counters"]["rate_limited"], 0, "{stats}");
    assert!(
        stats["pools"][3]["counters"]["rate_limited"]
            .as_u64()
            .unwrap()
            >= 1,
        "{stats}"
    );
    assert_eq!(stop(child, "-TERM").code(), Some(0));
}

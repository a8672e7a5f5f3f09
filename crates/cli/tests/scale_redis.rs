//! End to end across processes: three `imagegate serve` gateways sharing one Redis, in front of
//! one `imagegate emulate` pool, driven from here at far more than the pool's rate. The emulator
//! counts what really reached the upstream: with the Redis store it answers no 429 (at most one
//! per learned dimension) and the gateways use at least 95% of the quota. The same run with the
//! file store, each gateway with its own state directory as on separate machines, shows the
//! overshoot each gateway's private ledger causes (a documented comparison, ignored by default,
//! its numbers in docs/scaling.md).
//!
//! Everything is a real process on loopback: `redis-server` (skipped with a printed reason when
//! it is not installed, unless `IMAGEGATE_REQUIRE_REDIS=1`), the emulator and the gateways
//! (the real binary, each on 127.0.0.1:0, its port read from its `listening on` line). The
//! emulator's windows are real 60-second windows, so the run that CI takes is one window of a
//! small pool (RPM 15, 45 requests in 15 s); the three-minute run at RPM 60 is ignored and run
//! by hand.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod common;
#[path = "../../redis/tests/support/mod.rs"]
mod redis_support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const KEY: &str = "scale-test-upstream-credential";
const MODEL: &str = "gemini-2.5-flash-image";
const GATEWAYS: usize = 3;

/// Where the gateways keep the quota.
#[derive(Clone, Copy, Debug)]
enum Store<'a> {
    /// One Redis for all of them.
    Redis(&'a str),
    /// The state file, each gateway in its own directory (separate machines).
    File,
}

/// One run: the pool's true RPM (known to the gateways too), how long the driver sends, how
/// fast, and how many requests it holds open at most.
#[derive(Clone, Copy, Debug)]
struct Run {
    rpm: u64,
    duration: Duration,
    per_second: u64,
    clients: usize,
}

/// What the driver saw and what the emulator counted.
#[derive(Debug, Default)]
struct Outcome {
    sent: u64,
    /// 200s the driver received.
    ok: u64,
    /// 429s the gateways answered the driver (a wait beyond the request's maximum wait).
    driver_429: u64,
    /// Anything else: status lines, for the failure message.
    other: Vec<String>,
    upstream_requests: u64,
    upstream_admitted: u64,
    upstream_429: u64,
    /// The quota the run could use: RPM times the windows it spans.
    quota: u64,
    elapsed: Duration,
}

impl Outcome {
    fn quota_used(&self) -> f64 {
        self.upstream_admitted as f64 / self.quota as f64
    }

    fn report(&self, label: &str) -> String {
        format!(
            "{label}: sent {} in {:.1} s; driver: {} ok, {} gateway 429s, {} other {:?}; \
             upstream: {} requests, {} admitted, {} 429s; quota used {}/{} = {:.1}%",
            self.sent,
            self.elapsed.as_secs_f64(),
            self.ok,
            self.driver_429,
            self.other.len(),
            self.other.iter().take(5).collect::<Vec<_>>(),
            self.upstream_requests,
            self.upstream_admitted,
            self.upstream_429,
            self.upstream_admitted,
            self.quota,
            100.0 * self.quota_used(),
        )
    }
}

/// A child process killed (SIGKILL) if the test ends without stopping it.
struct Proc(Option<Child>);

impl Proc {
    /// SIGTERM, then wait: the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.0.take().unwrap();
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        child.wait().unwrap()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts the binary with `args` in `dir`, stdout and stderr going to files there (a pipe
/// nobody reads would block a long run), and waits for its `listening on` line: the process
/// and its URL.
fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (Proc, String) {
    let out = dir.join("stdout.log");
    let err = dir.join("stderr.log");
    let child = common::imagegate_process(dir)
        .envs(env.iter().copied())
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let mut proc = Proc(Some(child));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        if let Some(line) = text.lines().next()
            && text.contains('\n')
        {
            let url = line
                .strip_prefix("listening on ")
                .unwrap_or_else(|| panic!("{args:?}: the first line was {line:?}"))
                .to_owned();
            assert!(url.starts_with("http://127.0.0.1:"), "{url}");
            return (proc, url);
        }
        if let Some(child) = &mut proc.0
            && let Ok(Some(status)) = child.try_wait()
        {
            panic!(
                "{args:?} exited with {status} before listening: {}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{args:?} never said where it listens"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP/1.1 exchange over a fresh connection: the status code and the body.
fn exchange(url: &str, request_line: &str, headers: &str, body: &str) -> (u16, String) {
    let host = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    write!(
        stream,
        "{request_line} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    if let Err(e) = stream.read_to_end(&mut response) {
        // Held past the read timeout: reported with the other unexpected answers.
        return (0, format!("no answer: {e}"));
    }
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

fn emulator_config(rpm: u64) -> String {
    format!(
        r#"
[upstream]
latency = "100ms"
reject_latency = "0s"

[[upstream.pool]]
provider = "gemini"
project = "proj-a"
models = ["{MODEL}"]
rpm = {rpm}

[[upstream.key]]
provider = "gemini"
project = "proj-a"
key = "{KEY}"
"#
    )
}

/// A gateway whose one provider is the emulator's project, its true RPM known.
fn gateway_config(emulator: &str, rpm: u64, store: Store<'_>) -> String {
    let state = match store {
        Store::Redis(url) => format!("[state]\nstore = \"{url}\"\nkey_prefix = \"scale\"\n"),
        Store::File => "[state]\nstore = \"file\"\n".to_owned(),
    };
    format!(
        r#"
[providers.gemini]
base_url = "{emulator}"
project = "proj-a"
model = "{MODEL}"
timeout = "30s"

[providers.gemini.quota.models."{MODEL}"]
rpm = {rpm}

[server]
max_wait = "120s"
max_queue = 1024

{state}
"#
    )
}

/// Starts the emulator and three gateways, sends `run.per_second` requests a second for
/// `run.duration` round-robin over the gateways from at most `run.clients` connections at once,
/// and reads the emulator's stats once every request has its answer.
///
/// Each request's maximum wait (`x-imagegate-max-wait`) is the time left in the run: long enough
/// to wait for the next window whenever it opens before the end, so a gateway answers 429 only
/// to a request the run's quota cannot serve any more.
fn drive(run: Run, store: Store<'_>) -> Outcome {
    let root = tempfile::tempdir().unwrap();
    let emulator_dir = root.path().join("emulator");
    std::fs::create_dir(&emulator_dir).unwrap();
    std::fs::write(emulator_dir.join("emulate.toml"), emulator_config(run.rpm)).unwrap();
    let (emulator, emulator_url) = start(&emulator_dir, &["emulate", "emulate.toml"], &[]);

    let mut gateways = Vec::new();
    let mut urls = Vec::new();
    for i in 0..GATEWAYS {
        let dir: PathBuf = root.path().join(format!("gateway-{i}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("imagegate.toml"),
            gateway_config(&emulator_url, run.rpm, store),
        )
        .unwrap();
        let (proc, url) = start(
            &dir,
            &["serve", "--listen", "127.0.0.1:0"],
            &[("GEMINI_API_KEY", KEY)],
        );
        gateways.push(proc);
        urls.push(url);
    }
    let urls = Arc::new(urls);

    let total = run.per_second * run.duration.as_secs();
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let end = started + run.duration;
    let workers: Vec<_> = (0..run.clients)
        .map(|_| {
            let next = Arc::clone(&next);
            let urls = Arc::clone(&urls);
            let per_second = run.per_second;
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return seen;
                    }
                    let due = started + Duration::from_millis(i * 1000 / per_second);
                    if let Some(d) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(d);
                    }
                    let max_wait = end.saturating_duration_since(Instant::now()).as_secs();
                    let body = format!(r#"{{"model": "{MODEL}", "prompt": "lighthouse {i}"}}"#);
                    let headers = format!(
                        "Content-Type: application/json\r\nAuthorization: Bearer driver\r\nx-imagegate-max-wait: {max_wait}\r\n"
                    );
                    let url = &urls[(i % urls.len() as u64) as usize];
                    let (status, body) =
                        exchange(url, "POST /v1/images/generations", &headers, &body);
                    seen.push((status, body));
                }
            })
        })
        .collect();

    let mut outcome = Outcome::default();
    for worker in workers {
        for (status, body) in worker.join().unwrap() {
            outcome.sent += 1;
            match status {
                200 => outcome.ok += 1,
                429 => outcome.driver_429 += 1,
                _ => outcome.other.push(format!(
                    "{status}: {}",
                    body.chars().take(300).collect::<String>()
                )),
            }
        }
    }
    outcome.elapsed = started.elapsed();

    let (status, stats) = exchange(&emulator_url, "GET /emulator/stats", "", "");
    assert_eq!(status, 200, "{stats}");
    let stats: Value = serde_json::from_str(&stats).unwrap();
    let counters = &stats["pools"][0]["counters"];
    outcome.upstream_requests = counters["requests"].as_u64().unwrap();
    outcome.upstream_admitted = counters["admitted"].as_u64().unwrap();
    outcome.upstream_429 = counters["rate_limited"].as_u64().unwrap();
    let windows = run.duration.as_secs().div_ceil(60);
    outcome.quota = run.rpm * windows;

    for gateway in gateways {
        assert_eq!(gateway.stop().code(), Some(0), "a gateway stops cleanly");
    }
    assert_eq!(
        emulator.stop().code(),
        Some(0),
        "the emulator stops cleanly"
    );
    outcome
}

/// The assertions of the Redis runs: nothing refused upstream but what a learned dimension
/// costs, at least 95% of the quota used, every request answered 200 or the gateway's own 429.
fn assert_shared_quota_held(outcome: &Outcome) {
    let report = outcome.report("redis store");
    eprintln!("{report}");
    assert!(outcome.other.is_empty(), "{report}");
    assert_eq!(outcome.ok + outcome.driver_429, outcome.sent, "{report}");
    // The gateways know the one limit (rpm); nothing is learned from a 429, so at most one.
    assert!(outcome.upstream_429 <= 1, "{report}");
    assert!(outcome.upstream_admitted <= outcome.quota, "{report}");
    assert!(outcome.quota_used() >= 0.95, "{report}");
    assert_eq!(outcome.ok, outcome.upstream_admitted, "{report}");
}

/// CI's run: one 60-second window of an RPM 15 pool, 45 requests in 15 s (three times the
/// quota within the run) spread over the three gateways.
const ONE_WINDOW: Run = Run {
    rpm: 15,
    duration: Duration::from_secs(15),
    per_second: 3,
    clients: 48,
};

/// The full proof: RPM 60 driven at three times that rate for three minutes.
const THREE_MINUTES: Run = Run {
    rpm: 60,
    duration: Duration::from_secs(180),
    per_second: 3,
    clients: 192,
};

#[test]
fn three_gateways_sharing_one_redis_never_overshoot_one_window() {
    let Some(redis) = redis_support::RedisServer::start() else {
        return;
    };
    let outcome = drive(ONE_WINDOW, Store::Redis(&redis.url()));
    assert_shared_quota_held(&outcome);
}

#[test]
#[ignore = "three real minutes; run by hand, result in docs/scaling.md"]
fn three_gateways_sharing_one_redis_never_overshoot_three_minutes() {
    let Some(redis) = redis_support::RedisServer::start() else {
        return;
    };
    let outcome = drive(THREE_MINUTES, Store::Redis(&redis.url()));
    assert_shared_quota_held(&outcome);
}

/// The comparison: each gateway's own state file believes it has the whole quota. Prints the
/// numbers; asserts only that every request was answered.
fn file_store_comparison(run: Run) {
    let outcome = drive(run, Store::File);
    let report = outcome.report("file store, one state directory per gateway");
    eprintln!("{report}");
    assert!(outcome.other.is_empty(), "{report}");
}

#[test]
#[ignore = "a documented comparison, not a proof; run by hand, result in docs/scaling.md"]
fn file_store_comparison_one_window() {
    file_store_comparison(ONE_WINDOW);
}

#[test]
#[ignore = "three real minutes; a documented comparison, result in docs/scaling.md"]
fn file_store_comparison_three_minutes() {
    file_store_comparison(THREE_MINUTES);
}

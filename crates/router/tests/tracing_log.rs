//! Every upstream 429 reaches the log with provider, project, model, status and quota facts;
//! daily-limit warnings and disabled targets are logged at warn.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use imagegate_core::{GenerateRequest, ImageProvider};
use imagegate_mock::Outcome;
use imagegate_router::Router;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_429_is_logged_with_its_provider_project_model_status_and_quota_facts() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .without_time()
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let clock = clock();
    let a = scripted("a", &clock);
    a.push(rate_limited(Duration::from_secs(3)));
    a.push(limit_zero());
    let b = always("b", &clock, Outcome::image());
    let router = Router::builder(dyn_clock(&clock))
        .target(target("a", &a, unlimited()))
        .target(target("b", &b, unlimited()))
        .build()
        .unwrap();
    router.generate(&GenerateRequest::new("x")).await.unwrap();
    clock_advance(Duration::from_secs(5)).await;
    router.generate(&GenerateRequest::new("x")).await.unwrap();

    let log = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("upstream 429")).collect();
    assert_eq!(lines.len(), 2, "{log}");
    for line in &lines {
        for field in [
            "provider=a",
            "project=a-proj",
            "model=model-a",
            "status=429",
        ] {
            assert!(line.contains(field), "{field} missing: {line}");
        }
    }
    assert!(lines[0].contains("kind=rate_limited"), "{}", lines[0]);
    assert!(lines[0].contains("retry_after_ms=3000"), "{}", lines[0]);
    assert!(lines[0].contains("dimension=rpm"), "{}", lines[0]);
    assert!(
        lines[0].contains("GenerateRequestsPerMinutePerProjectPerModel"),
        "{}",
        lines[0]
    );
    assert!(lines[1].contains("kind=billing_required"), "{}", lines[1]);
    assert!(lines[1].contains("quota_value=0"), "{}", lines[1]);
    assert!(log.contains("target disabled"), "{log}");
}

async fn clock_advance(d: Duration) {
    tokio::time::sleep(d).await;
}

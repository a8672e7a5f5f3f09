//! A running emulator for a test: configuration text in, a loopback URL out, on a clock the
//! test moves.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // shared by several test files

use std::path::Path;
use std::sync::Arc;

use imagegate_core::clock::ManualClock;
use imagegate_emulator::{Emulator, EmulatorConfig};
use tokio::sync::oneshot;

/// Noon UTC on a winter day: 04:00 in Los Angeles, 20 hours before the Pacific day ends.
pub(crate) const START: &str = "2026-01-15T12:00:00Z";

pub(crate) struct Running {
    pub(crate) url: String,
    pub(crate) emulator: Emulator,
    pub(crate) clock: Arc<ManualClock>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Running {
    /// Stops the server and waits for it to finish cleanly.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts an emulator of `config` (TOML) on 127.0.0.1:0 with a manual clock at [`START`].
pub(crate) async fn start(config: &str) -> Running {
    let config = EmulatorConfig::parse(Path::new("test.toml"), config).unwrap();
    let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
    let emulator = Emulator::with_clock(config, clock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(emulator.clone().serve(listener, async {
        let _ = stopped.await;
    }));
    Running {
        url,
        emulator,
        clock,
        stop: Some(stop),
        task: Some(task),
    }
}

/// An upstream with no waiting at all, and the given pools (TOML `[[upstream.pool]]` and
/// `[[upstream.key]]` entries).
pub(crate) fn config(pools: &str) -> String {
    format!("seed = 11\n[upstream]\nlatency = \"0s\"\nreject_latency = \"0s\"\n{pools}")
}

pub(crate) const GEMINI_MODEL: &str = "gemini-2.5-flash-image";
pub(crate) const OPENROUTER_MODEL: &str = "google/gemini-2.5-flash-image";

/// A minimal generateContent body asking for an image of `ratio` and `size`.
pub(crate) fn gemini_body(prompt: &str, ratio: &str, size: &str) -> serde_json::Value {
    serde_json::json!({
        "contents": [{"role": "user", "parts": [{"text": prompt}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
                             "imageConfig": {"aspectRatio": ratio, "imageSize": size}}
    })
}

/// Decodes a PNG: (width, height).
pub(crate) fn png_size(bytes: &[u8]) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let reader = decoder.read_info().expect("a PNG header");
    let info = reader.info();
    (info.width, info.height)
}

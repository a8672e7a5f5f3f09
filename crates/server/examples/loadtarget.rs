//! The two servers of the load test in docs/performance.md, on loopback:
//!
//! - `gateway ADDR [SIZE] [HOLD_MS]`: `imagegate serve`'s gateway over one target that answers
//!   a pre-rendered mock image of SIZE (0.5K by default) after HOLD_MS (0), through the whole
//!   path (auth, parsing, the router's admission on an unlimited pool, the answer in the
//!   OpenAI dialect, the log and metrics layer);
//! - `bare ADDR [SIZE]`: a bare axum handler answering the same bytes the gateway answers,
//!   the physical limit of HTTP on the machine.
//!
//! Each prints `listening on http://HOST:PORT` first and serves until killed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a measuring tool, not the product

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use imagegate_core::quota::{Limits, PACIFIC, PoolConfig, PoolId};
use imagegate_core::{
    Capabilities, GenerateRequest, GenerateResponse, Image, ImageProvider, ImageSize, ServedBy,
    clock::SystemClock,
};
use imagegate_router::{Router, Target};
use imagegate_server::{Gateway, ServerConfig};

#[derive(Debug)]
struct Prerendered {
    image: Image,
    hold: Duration,
}

#[async_trait]
impl ImageProvider for Prerendered {
    fn name(&self) -> &str {
        "prerendered"
    }
    fn default_model(&self) -> &str {
        "prerendered"
    }
    fn capabilities(&self, _model: Option<&str>) -> Capabilities {
        Capabilities::new(10)
    }
    async fn generate(
        &self,
        request: &GenerateRequest,
    ) -> imagegate_core::Result<GenerateResponse> {
        if !self.hold.is_zero() {
            tokio::time::sleep(self.hold).await;
        }
        let images = (0..request.count).map(|_| self.image.clone()).collect();
        Ok(GenerateResponse::new(
            images,
            ServedBy::new("prerendered", "prerendered", None),
        ))
    }
}

fn image(size: ImageSize) -> Image {
    let request = GenerateRequest::new("a lighthouse").with_size(size);
    imagegate_mock::render::render_image("prerendered", &request, 0).unwrap()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str).unwrap_or("gateway");
    let addr = args.get(1).map_or("127.0.0.1:0", String::as_str);
    let size: ImageSize = args.get(2).map_or(ImageSize::Half, |s| s.parse().unwrap());
    let hold = Duration::from_millis(args.get(3).map_or(0, |h| h.parse().unwrap()));
    let image = image(size);
    eprintln!(
        "image: {} bytes PNG, {:?}x{:?}",
        image.bytes.len(),
        image.width,
        image.height
    );
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    println!("listening on http://{}", listener.local_addr().unwrap());
    match mode {
        "gateway" => {
            let pool = PoolConfig::new(
                PoolId::new("mock", "load", "prerendered"),
                Limits::NONE,
                PACIFIC.clone(),
            );
            let provider = Arc::new(Prerendered { image, hold });
            let router = Router::builder(Arc::new(SystemClock))
                .target(Target::new("prerendered", provider, "prerendered", pool))
                .route("prerendered", vec!["prerendered".to_owned()])
                .concurrency(100_000)
                .target_concurrency(100_000)
                .build()
                .unwrap();
            let settings = ServerConfig {
                default_route: Some("prerendered".to_owned()),
                max_queue: 100_000,
                ..ServerConfig::default()
            };
            let files = std::env::temp_dir().join("imagegate-loadtarget-files");
            let gateway = Gateway::new(router, settings, files).unwrap();
            gateway
                .serve(listener, std::future::pending())
                .await
                .unwrap();
        }
        "bare" => {
            // The bytes the gateway answers for the same image.
            let body = serde_json::json!({
                "created": 1_768_478_400,
                "data": [{"b64_json": base64::engine::general_purpose::STANDARD.encode(&image.bytes)}],
                "output_format": "png",
                "size": format!("{}x{}", image.width.unwrap_or(0), image.height.unwrap_or(0)),
            })
            .to_string();
            let body = bytes::Bytes::from(body);
            let app = axum::Router::new().route(
                "/v1/images/generations",
                axum::routing::post(move || {
                    let body = body.clone();
                    async move { ([(http::header::CONTENT_TYPE, "application/json")], body) }
                }),
            );
            axum::serve(listener, app).await.unwrap();
        }
        other => panic!("unknown mode {other}: gateway or bare"),
    }
}

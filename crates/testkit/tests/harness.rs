//! The harness tested on itself: a toy provider that keeps the contract passes the table and
//! the conformance suite; providers that leak the key or retry are caught.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use imagegate_core::{
    Capabilities, Error, ErrorKind, GenerateRequest, GenerateResponse, Image, ImageProvider,
    ServedBy, secret::ApiKey,
};
use imagegate_testkit::Fixture;
use imagegate_testkit::check_fixtures;
use imagegate_testkit::conformance::{CONFORMANCE_KEY, Suite};

fn echo_fixtures() -> Vec<Fixture> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    ["echo/generate/ok.json", "echo/generate/rate-limited.json"]
        .iter()
        .map(|p| Fixture::load(&root, &root.join(p)).unwrap())
        .collect()
}

/// The toy protocol's pure parser.
fn parse(status: u16, retry_after: Option<&str>, body: &[u8]) -> Result<GenerateResponse, Error> {
    if status == 429 {
        let mut error = Error::new(ErrorKind::RateLimited, "slow down").with_http_status(429);
        if let Some(secs) = retry_after.and_then(|v| v.parse::<u64>().ok()) {
            error = error.with_retry_after(Duration::from_secs(secs));
        }
        return Err(error);
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Error::new(ErrorKind::InvalidResponse, e.to_string()))?;
    let b64 = value["png_base64"].as_str().unwrap_or_default();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| Error::new(ErrorKind::InvalidResponse, e.to_string()))?;
    let image = Image::checked(bytes, "image/png")?;
    Ok(GenerateResponse::new(
        vec![image],
        ServedBy::new("echo", "echo-1", None),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    Good,
    KeyInUrl,
    RetriesOnce,
}

struct Echo {
    base: String,
    key: ApiKey,
    behaviour: Behaviour,
    http: reqwest::Client,
}

impl std::fmt::Debug for Echo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Echo({}, {:?})", self.base, self.key)
    }
}

#[async_trait]
impl ImageProvider for Echo {
    fn name(&self) -> &str {
        "echo"
    }
    fn default_model(&self) -> &str {
        "echo-1"
    }
    fn capabilities(&self, _model: Option<&str>) -> Capabilities {
        Capabilities::new(1)
    }
    async fn generate(
        &self,
        request: &GenerateRequest,
    ) -> imagegate_core::Result<GenerateResponse> {
        let mut url = format!("{}/v1/generate", self.base);
        if self.behaviour == Behaviour::KeyInUrl {
            url.push_str(&format!("?key={}", self.key.expose()));
        }
        let attempts = if self.behaviour == Behaviour::RetriesOnce {
            2
        } else {
            1
        };
        let mut last = None;
        for _ in 0..attempts {
            let response = self
                .http
                .post(&url)
                .header("x-api-key", self.key.expose())
                .json(&serde_json::json!({ "prompt": request.prompt }))
                .send()
                .await
                .map_err(|e| Error::new(ErrorKind::Connect, e.without_url().to_string()))?;
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = response.bytes().await.unwrap_or_default();
            last = Some(parse(status, retry_after.as_deref(), &body));
        }
        last.unwrap()
    }
}

fn suite(behaviour: Behaviour) -> Suite<'static> {
    Suite {
        provider_dir: "echo",
        make_provider: Box::new(move |base, _now, key| {
            Arc::new(Echo {
                base: base.to_owned(),
                key,
                behaviour,
                http: reqwest::Client::new(),
            }) as Arc<dyn ImageProvider>
        }),
        request_for: Box::new(|_| Some(GenerateRequest::new("a red square"))),
    }
}

#[test]
fn the_table_runner_passes_a_right_parser_and_names_every_failure_of_a_wrong_one() {
    let fixtures = echo_fixtures();
    let parse_fixture = |f: &Fixture| {
        let headers = f.headers();
        let retry = headers.get("retry-after").and_then(|v| v.to_str().ok());
        parse(f.response.status, retry, &f.body())
    };
    assert_eq!(check_fixtures(&fixtures, parse_fixture), Ok(2));

    let always_unavailable =
        |_: &Fixture| Err(Error::new(ErrorKind::Unavailable, "down").with_http_status(503));
    let report = check_fixtures(&fixtures, always_unavailable).unwrap_err();
    assert!(report.starts_with("2 of 2 fixtures failed"), "{report}");
    assert!(report.contains("echo/generate/ok"), "{report}");
    assert!(
        report.contains("kind: expected rate_limited, got unavailable"),
        "{report}"
    );

    assert!(
        check_fixtures(&[], parse_fixture).is_err(),
        "an empty table must not pass"
    );
}

#[tokio::test]
async fn a_provider_that_keeps_the_contract_conforms() {
    assert_eq!(
        suite(Behaviour::Good).run_fixtures(&echo_fixtures()).await,
        Ok(2)
    );
}

#[tokio::test]
async fn a_key_in_the_url_is_caught() {
    let report = suite(Behaviour::KeyInUrl)
        .run_fixtures(&echo_fixtures())
        .await
        .unwrap_err();
    assert!(
        report.contains("the API key appears in the request URL"),
        "{report}"
    );
    assert!(
        !report.contains(CONFORMANCE_KEY),
        "the report itself must not echo the key"
    );
}

#[tokio::test]
async fn a_provider_that_retries_is_caught() {
    let report = suite(Behaviour::RetriesOnce)
        .run_fixtures(&echo_fixtures())
        .await
        .unwrap_err();
    assert!(
        report.contains("expected exactly one upstream request, saw 2"),
        "{report}"
    );
}

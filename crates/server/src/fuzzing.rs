//! Entry points for the fuzz targets under `fuzz/` (the `fuzzing` feature only): the request
//! parsers are crate-private, and this keeps them so for every other user of the crate.
//!
//! [`request`] runs what a handler runs before the router sees anything: authentication, the
//! dialect's body parser (JSON, or multipart for image edits) and the maximum-wait headers,
//! then renders the failure the client would get, and returns all of it as text for the fuzz
//! target's checks (no panic, and the client's key never echoed).

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;

use crate::auth::authenticate;
use crate::config::ClientConfig;
use crate::failure::{Dialect, Failure};
use crate::keys::{Keys, key_sha256};
use crate::{chat, deadline, gemini, openai, query, size};

/// A request parser of the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/images/generations` (JSON).
    OpenAiGenerations,
    /// `POST /v1/images/edits` (multipart).
    OpenAiEdits,
    /// `POST /v1beta/models/{model}:generateContent` (JSON).
    GeminiGenerateContent,
    /// `POST /v1beta/models/{model}:predict` (JSON, Imagen).
    GeminiPredict,
    /// `POST /v1/chat/completions` (JSON).
    ChatCompletions,
}

/// Which clients the gateway knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clients<'k> {
    /// None: every request is anonymous.
    Open,
    /// One client, whose key is this.
    One(&'k str),
}

/// What came of a request, as text.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// The client's name, when authentication passed.
    pub client: Option<String>,
    /// The parsed request's `Debug`, when parsing passed.
    pub parsed: Option<String>,
    /// The failure's `Debug`, its HTTP status and its rendered response (headers and body).
    pub failure: Option<String>,
    /// The maximum wait the request's headers ask for, or why they were refused.
    pub max_wait: String,
}

/// Authenticates and parses one request as the handler for `endpoint` does.
pub fn request(
    endpoint: Endpoint,
    clients: Clients<'_>,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    body: &[u8],
) -> Outcome {
    let configured = match clients {
        Clients::Open => Vec::new(),
        Clients::One(key) => vec![ClientConfig {
            name: "fuzz-client".to_owned(),
            key_sha256: key_sha256(key),
            routes: None,
            priority: imagegate_core::Priority::Interactive,
            budget_usd_per_day: None,
        }],
    };
    let keys = Keys::new(&configured);
    let pairs = query::pairs(raw_query);
    let dialect = match endpoint {
        Endpoint::OpenAiGenerations | Endpoint::OpenAiEdits => Dialect::OpenAi,
        Endpoint::GeminiGenerateContent | Endpoint::GeminiPredict => Dialect::Gemini,
        Endpoint::ChatCompletions => Dialect::Chat,
    };
    let mut outcome = Outcome {
        max_wait: format!(
            "{:?}",
            deadline::max_wait(headers, Duration::from_secs(30)).map_err(|e| e.0)
        ),
        ..Outcome::default()
    };
    let parsed = authenticate(&keys, headers, &pairs).and_then(|client| {
        outcome.client = Some(client.name);
        parse(endpoint, headers, body)
    });
    match parsed {
        Ok(parsed) => outcome.parsed = Some(parsed),
        Err(failure) => outcome.failure = Some(render(&failure, dialect)),
    }
    outcome
}

fn parse(endpoint: Endpoint, headers: &HeaderMap, body: &[u8]) -> Result<String, Failure> {
    Ok(match endpoint {
        Endpoint::OpenAiGenerations => format!("{:?}", openai::parse_generation(body)?),
        Endpoint::OpenAiEdits => {
            let content_type = headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let parsed = futures::executor::block_on(openai::parse_edit(
                Bytes::copy_from_slice(body),
                content_type,
            ))?;
            format!("{parsed:?}")
        }
        Endpoint::GeminiGenerateContent => format!("{:?}", gemini::parse_generate(body)?),
        Endpoint::GeminiPredict => format!("{:?}", gemini::parse_predict(body)?),
        Endpoint::ChatCompletions => format!("{:?}", chat::parse(body)?),
    })
}

fn render(failure: &Failure, dialect: Dialect) -> String {
    let response = failure.render(dialect, jiff::Timestamp::UNIX_EPOCH);
    let status = response.status();
    let headers = format!("{:?}", response.headers());
    let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), usize::MAX))
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    format!("{failure:?}\n{status}\n{headers}\n{body}")
}

/// The `size` parser alone (`1024x1024`, `auto`, `16:9`, ...), as text.
pub fn image_size(text: &str) -> String {
    format!("{:?}", size::parse(text))
}

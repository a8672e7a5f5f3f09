//! Helpers shared by the integration tests (included with `mod common;`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use aws_lc_rs::encoding::AsDer;
use base64::Engine as _;
use imagegate_core::{
    Error, GenerateRequest, GenerateResponse, ImageProvider, clock::ManualClock, secret::ApiKey,
};
use imagegate_testkit::Fixture;
use imagegate_vertex::{Credentials, VertexProvider, parse_response};
use jiff::Timestamp;

/// The prompt sent when a fixture does not name one.
pub const PROMPT: &str = "a watercolor lighthouse at dawn";

/// The model a fixture's request path names (`.../models/{model}:{method}`).
pub fn model_of(fixture: &Fixture) -> String {
    fixture
        .request
        .as_ref()
        .and_then(|r| r.path.as_deref())
        .and_then(|p| p.rsplit_once("/models/"))
        .and_then(|(_, rest)| rest.split_once(':'))
        .map_or_else(
            || imagegate_vertex::DEFAULT_MODEL.to_owned(),
            |(m, _)| m.to_owned(),
        )
}

/// Runs a fixture through the pure parser.
pub fn parse_fixture(fixture: &Fixture) -> Result<GenerateResponse, Error> {
    parse_response(
        fixture.status(),
        &fixture.headers(),
        &fixture.body(),
        &model_of(fixture),
        fixture.now(),
    )
}

/// A provider for `test-project` in `us-central1` sending to `server` with a ready access
/// token, its clock frozen at `now`.
pub fn provider(server: &str, now: Timestamp, token: ApiKey) -> VertexProvider {
    VertexProvider::new(
        Credentials::AccessToken(token),
        "test-project",
        "us-central1",
    )
    .unwrap()
    .with_base_url(server)
    .unwrap()
    .with_clock(Arc::new(ManualClock::new(now)))
}

/// The request a fixture expects, from its path's model and its partial body.
pub fn request_for(fixture: &Fixture) -> Option<GenerateRequest> {
    fixture.request.as_ref()?;
    Some(GenerateRequest::new(PROMPT).with_model(model_of(fixture)))
}

/// A provider as the conformance suite wants it: the suite's key is the access token.
pub fn dyn_provider(server: &str, now: Timestamp, key: ApiKey) -> Arc<dyn ImageProvider> {
    Arc::new(provider(server, now, key))
}

/// A fresh 2048-bit RSA key for the test (never a committed one): the PKCS#8 PEM a
/// service-account file carries, and the public key's PKCS#1 DER to check signatures with.
pub fn test_rsa_key() -> (String, Vec<u8>) {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = pair.as_der().unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    use aws_lc_rs::signature::KeyPair as _;
    (pem, pair.public_key().as_ref().to_vec())
}

/// A service-account key file's JSON for `pem`, exchanging at `token_uri`.
pub fn service_account_json(pem: &str, token_uri: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "project_id": "test-project",
        "private_key_id": "test-key-id",
        "private_key": pem,
        "client_email": "imagegate-test@test-project.iam.gserviceaccount.com",
        "client_id": "000000000000000000000",
        "token_uri": token_uri,
    })
    .to_string()
}

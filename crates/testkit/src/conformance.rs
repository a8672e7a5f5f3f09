//! The conformance suite a provider runs to prove itself against recorded exchanges.
//!
//! For each fixture the suite starts a fresh wiremock server on loopback, mounts the fixture's
//! response, builds the provider pointed at that server, makes one `generate` call and checks:
//!
//! 1. the outcome matches the fixture's `expect` (the same check as the table runner, now
//!    through the real HTTP path: headers, status handling, body reading);
//! 2. the call made exactly one upstream request (the `ImageProvider` contract: no retries);
//! 3. the request went to the fixture's method and path and carries the headers and (partial)
//!    JSON body the fixture names;
//! 4. the API key the suite handed the provider appears in a request header, and never in the
//!    URL, the error's `Display` or `Debug`, or the provider's own `Debug`.

use std::sync::Arc;

use imagegate_core::{GenerateRequest, ImageProvider, secret::ApiKey};
use jiff::Timestamp;
use serde_json::Value;
use wiremock::MockServer;

use crate::fixture::Fixture;
use crate::mount::mount;

/// The key the suite hands providers: not key-shaped (so the secret scan stays quiet) and
/// distinctive enough that finding it anywhere is a leak, not a coincidence.
pub const CONFORMANCE_KEY: &str = "conformance-test-credential-7f3a9c";

/// What the suite needs from a provider crate.
pub struct Suite<'a> {
    /// The fixture directory under `fixtures/`, e.g. `gemini`.
    pub provider_dir: &'a str,
    /// Builds the provider: `(base_url, now, key)`. `now` is the fixture's instant; give it
    /// to the provider's clock so reset times match the fixture's expectation.
    #[allow(clippy::type_complexity)]
    pub make_provider: Box<dyn Fn(&str, Timestamp, ApiKey) -> Arc<dyn ImageProvider> + 'a>,
    /// The request to send for a fixture, or `None` to skip it (e.g. fixtures of an endpoint
    /// `generate` does not call).
    #[allow(clippy::type_complexity)]
    pub request_for: Box<dyn Fn(&Fixture) -> Option<GenerateRequest> + 'a>,
}

impl std::fmt::Debug for Suite<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Suite")
            .field("provider_dir", &self.provider_dir)
            .finish_non_exhaustive()
    }
}

impl Suite<'_> {
    /// Runs every fixture of the provider; returns how many ran.
    ///
    /// # Errors
    /// One line per failing fixture with every problem found; also when no fixture ran.
    pub async fn run(&self) -> Result<usize, String> {
        let fixtures = Fixture::load_dir(self.provider_dir)?;
        self.run_fixtures(&fixtures).await
    }

    /// Runs the given fixtures (a subset, or fixtures kept beside a test).
    ///
    /// # Errors
    /// As [`Suite::run`].
    pub async fn run_fixtures(&self, fixtures: &[Fixture]) -> Result<usize, String> {
        let mut ran = 0;
        let mut failures = Vec::new();
        for fixture in fixtures {
            let Some(request) = (self.request_for)(fixture) else {
                continue;
            };
            ran += 1;
            let problems = self.run_one(fixture, &request).await;
            if !problems.is_empty() {
                failures.push(format!("{}: {}", fixture.id, problems.join("; ")));
            }
        }
        if ran == 0 {
            return Err(format!(
                "no fixture under fixtures/{} was run",
                self.provider_dir
            ));
        }
        if failures.is_empty() {
            Ok(ran)
        } else {
            Err(format!(
                "{} of {ran} conformance scenarios failed:\n  {}",
                failures.len(),
                failures.join("\n  ")
            ))
        }
    }

    /// Runs one fixture; returns the problems found (empty when it conforms).
    pub async fn run_one(&self, fixture: &Fixture, request: &GenerateRequest) -> Vec<String> {
        let server = MockServer::start().await;
        mount(&server, fixture).await;
        let provider =
            (self.make_provider)(&server.uri(), fixture.now(), ApiKey::new(CONFORMANCE_KEY));
        let outcome = provider.generate(request).await;

        let mut problems = Vec::new();
        if let Err(why) = fixture.expect.check(&outcome) {
            problems.push(why);
        }
        if let Err(error) = &outcome {
            for shown in [error.to_string(), format!("{error:?}")] {
                if shown.contains(CONFORMANCE_KEY) {
                    problems.push("the API key appears in the error".to_owned());
                }
            }
        }
        if format!("{provider:?}").contains(CONFORMANCE_KEY) {
            problems.push("the API key appears in the provider's Debug output".to_owned());
        }

        let received = server.received_requests().await.unwrap_or_default();
        if received.len() != 1 {
            problems.push(format!(
                "expected exactly one upstream request, saw {}",
                received.len()
            ));
        }
        if let Some(sent) = received.first() {
            check_request(fixture, sent, &mut problems);
        }
        problems
    }
}

fn check_request(fixture: &Fixture, sent: &wiremock::Request, problems: &mut Vec<String>) {
    if sent.url.as_str().contains(CONFORMANCE_KEY) {
        problems.push("the API key appears in the request URL".to_owned());
    }
    let in_header = sent
        .headers
        .values()
        .any(|v| v.to_str().is_ok_and(|v| v.contains(CONFORMANCE_KEY)));
    if !in_header {
        problems.push("the API key is not sent in any header".to_owned());
    }
    let Some(expected) = &fixture.request else {
        return;
    };
    if let Some(m) = &expected.method
        && !sent.method.as_str().eq_ignore_ascii_case(m)
    {
        problems.push(format!("method: expected {m}, sent {}", sent.method));
    }
    if let Some(p) = &expected.path
        && sent.url.path() != p
    {
        problems.push(format!("path: expected {p}, sent {}", sent.url.path()));
    }
    for (name, value) in &expected.headers {
        let got = sent
            .headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok());
        if got != Some(value.as_str()) {
            problems.push(format!("header {name}: expected {value:?}, sent {got:?}"));
        }
    }
    if let Some(body) = &expected.body_json {
        match serde_json::from_slice::<Value>(&sent.body) {
            Ok(actual) => {
                if let Err(why) = json_contains(&actual, body, "$") {
                    problems.push(format!("request body: {why}"));
                }
            }
            Err(e) => problems.push(format!("request body is not JSON: {e}")),
        }
    }
}

/// True when `actual` contains everything in `expected`: objects may carry extra keys, arrays
/// and scalars must match exactly.
///
/// # Errors
/// The JSON path of the first difference and what differs.
pub fn json_contains(actual: &Value, expected: &Value, at: &str) -> Result<(), String> {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => {
            for (key, want) in expected {
                let here = format!("{at}.{key}");
                match actual.get(key) {
                    Some(got) => json_contains(got, want, &here)?,
                    None => return Err(format!("{here} is missing")),
                }
            }
            Ok(())
        }
        (Value::Array(actual), Value::Array(expected)) => {
            if actual.len() != expected.len() {
                return Err(format!(
                    "{at}: expected {} elements, got {}",
                    expected.len(),
                    actual.len()
                ));
            }
            for (i, (got, want)) in actual.iter().zip(expected).enumerate() {
                json_contains(got, want, &format!("{at}[{i}]"))?;
            }
            Ok(())
        }
        _ if actual == expected => Ok(()),
        _ => Err(format!("{at}: expected {expected}, got {actual}")),
    }
}

#[cfg(test)]
mod tests {
    use super::json_contains;
    use serde_json::json;

    #[test]
    fn partial_objects_match_and_differences_are_located() {
        let actual = json!({"a": {"b": [1, 2], "c": "x"}, "d": true});
        assert!(json_contains(&actual, &json!({"a": {"b": [1, 2]}}), "$").is_ok());
        let err = json_contains(&actual, &json!({"a": {"c": "y"}}), "$").unwrap_err();
        assert!(err.contains("$.a.c"), "{err}");
        let err = json_contains(&actual, &json!({"e": 1}), "$").unwrap_err();
        assert!(err.contains("$.e is missing"), "{err}");
        assert!(json_contains(&actual, &json!({"a": {"b": [1]}}), "$").is_err());
    }
}

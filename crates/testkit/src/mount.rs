//! Serving a fixture's response from a per-test wiremock server.

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::fixture::Fixture;

/// The response a fixture describes, as a wiremock template (status, headers, exact body).
pub fn response_template(fixture: &Fixture) -> ResponseTemplate {
    let mut template = ResponseTemplate::new(fixture.response.status);
    for (name, value) in &fixture.response.headers {
        template = template.insert_header(name.as_str(), value.as_str());
    }
    template.set_body_bytes(fixture.body())
}

/// Mounts the fixture's response on `server`.
///
/// The mock answers the fixture's method and path when the fixture names them (so a request
/// to the wrong endpoint gets wiremock's 404 and the test sees it), and any request otherwise.
pub async fn mount(server: &MockServer, fixture: &Fixture) {
    let request = fixture.request.clone().unwrap_or_default();
    let template = response_template(fixture);
    let mock = match (request.method, request.path) {
        (Some(m), Some(p)) => Mock::given(method(m.as_str())).and(path(p.as_str())),
        (Some(m), None) => Mock::given(method(m.as_str())),
        (None, Some(p)) => Mock::given(path(p.as_str())),
        (None, None) => Mock::given(wiremock::matchers::any()),
    };
    mock.respond_with(template).mount(server).await;
}

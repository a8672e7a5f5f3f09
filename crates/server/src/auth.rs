//! Who is calling: the key from `Authorization: Bearer`, `x-goog-api-key` or `?key=`, matched
//! against the configured clients. The key itself is never logged or echoed; the client's name is.

use http::HeaderMap;
use imagegate_core::Priority;

use crate::failure::{Failure, FailureKind};
use crate::keys::Keys;

/// The client a request comes from.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    pub(crate) name: String,
    pub(crate) routes: Option<Vec<String>>,
    pub(crate) priority: Priority,
    pub(crate) budget_usd_per_day: Option<f64>,
}

/// The name of every request when no clients are configured.
pub(crate) const ANONYMOUS: &str = "anonymous";

/// The key a client presented, in any of the three places SDKs put it.
pub(crate) fn presented_key(headers: &HeaderMap, query: &[(String, String)]) -> Option<String> {
    if let Some(bearer) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    {
        return Some(bearer.trim().to_owned());
    }
    if let Some(key) = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim().to_owned());
    }
    crate::query::get(query, "key").map(str::to_owned)
}

/// The client for this request, or a 401.
pub(crate) fn authenticate(
    keys: &Keys,
    headers: &HeaderMap,
    query: &[(String, String)],
) -> Result<Client, Failure> {
    if keys.is_open() {
        return Ok(Client {
            name: ANONYMOUS.to_owned(),
            routes: None,
            priority: Priority::Interactive,
            budget_usd_per_day: None,
        });
    }
    let Some(key) = presented_key(headers, query) else {
        return Err(Failure::new(
            FailureKind::Unauthorized,
            "no API key: send it as `Authorization: Bearer KEY`, `x-goog-api-key: KEY` or `?key=KEY`",
        ));
    };
    keys.find(&key)
        .map(|c| Client {
            name: c.name.clone(),
            routes: c.routes.clone(),
            priority: c.priority,
            budget_usd_per_day: c.budget_usd_per_day,
        })
        .ok_or_else(|| {
            Failure::new(
                FailureKind::Unauthorized,
                "the API key is not valid for this gateway",
            )
        })
}

//! Where a Vertex AI model lives: `https://{location}-aiplatform.googleapis.com` for a region,
//! `https://aiplatform.googleapis.com` for `global`, then
//! `/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{method}`
//! (Google's Vertex AI REST reference, `projects.locations.publishers.models`).

use imagegate_core::Error;
use imagegate_gemini_wire::Endpoint;

use crate::classify::PROVIDER;

/// The location used when neither configuration nor `GOOGLE_CLOUD_LOCATION` names one: the
/// region where every Gemini image and Imagen model is offered.
pub const DEFAULT_LOCATION: &str = "us-central1";

/// The public origin serving `location`.
pub fn origin_for(location: &str) -> String {
    if location == "global" {
        "https://aiplatform.googleapis.com".to_owned()
    } else {
        format!("https://{location}-aiplatform.googleapis.com")
    }
}

/// The request path of `model`'s `endpoint` in `project` at `location`.
pub fn model_path(project: &str, location: &str, model: &str, endpoint: Endpoint) -> String {
    format!(
        "/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{}",
        endpoint.method()
    )
}

/// Splits the configured project, `PROJECT` or `PROJECT/LOCATION` (one target per location:
/// each location is its own quota pool), and checks both can go into a URL as they are.
///
/// # Errors
/// [`imagegate_core::ErrorKind::ConfigInvalid`] naming what is not a project id or location.
pub fn split_project(text: &str) -> Result<(String, Option<String>), Error> {
    let text = text.trim();
    let (project, location) = match text.split_once('/') {
        Some((p, l)) => (p.trim(), Some(l.trim())),
        None => (text, None),
    };
    check("project", project)?;
    if let Some(location) = location {
        check("location", location)?;
    }
    Ok((project.to_owned(), location.map(str::to_owned)))
}

/// Checks a project id or location: lowercase letters, digits, dashes (and `:` / `.` for the
/// older domain-scoped project ids).
///
/// # Errors
/// As [`split_project`].
pub(crate) fn check(what: &str, text: &str) -> Result<(), Error> {
    let ok = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | ':' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`{text}` is not a Vertex AI {what} (lowercase letters, digits and dashes, e.g. \
             my-project/us-central1)"
        ))
        .with_provider(PROVIDER))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regional_and_global_origins_and_paths() {
        assert_eq!(
            origin_for("us-central1"),
            "https://us-central1-aiplatform.googleapis.com"
        );
        assert_eq!(origin_for("global"), "https://aiplatform.googleapis.com");
        assert_eq!(
            model_path(
                "p1",
                "europe-west4",
                "imagen-4.0-generate-001",
                Endpoint::Predict
            ),
            "/v1/projects/p1/locations/europe-west4/publishers/google/models/imagen-4.0-generate-001:predict"
        );
        assert_eq!(
            split_project("p1/global").unwrap(),
            ("p1".to_owned(), Some("global".to_owned()))
        );
        assert_eq!(split_project("p1").unwrap(), ("p1".to_owned(), None));
        for bad in ["", "P1", "p1/", "p/../x", "p?x=1", "p1/us central"] {
            assert!(split_project(bad).is_err(), "{bad}");
        }
    }
}

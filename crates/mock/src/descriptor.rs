//! [`DESCRIPTOR`]: the mock in the registry: no key, no network, no quota figures.

use std::sync::Arc;

use imagegate_core::ImageProvider;
use imagegate_core::registry::{ProviderDescriptor, ProviderSettings};

use crate::provider::{DEFAULT_MODEL, MockProvider};

/// The built-in offline provider in the registry.
pub static DESCRIPTOR: ProviderDescriptor = ProviderDescriptor {
    name: "mock",
    label: "the mock provider",
    key_vars: &[],
    key_help: "",
    base_url_var: None,
    default_model: DEFAULT_MODEL,
    day_zone: "UTC",
    presets: None,
    // Mock images cost nothing; an unpriced model is estimated at zero.
    prices: &[],
    parse_error: None,
    recognises: None,
    build,
};

fn build(settings: &ProviderSettings) -> imagegate_core::Result<Arc<dyn ImageProvider>> {
    let mut mock = MockProvider::new().with_name(settings.name.clone());
    if let Some(project) = &settings.project {
        mock = mock.with_project(project.clone());
    }
    if let Some(model) = &settings.model {
        mock = mock.with_default_model(model.clone());
    }
    Ok(Arc::new(mock))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_builds_under_its_configured_name_without_a_key() {
        let built = (DESCRIPTOR.build)(
            &ProviderSettings::new("stand-in").with_model(Some("m-2".to_owned())),
        )
        .unwrap();
        assert_eq!(built.name(), "stand-in");
        assert_eq!(built.default_model(), "m-2");
    }
}

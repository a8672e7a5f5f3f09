//! The providers the simulator models, from their registry entries: each simulated upstream
//! answers in one of these wire formats (the mock's [`UpstreamKind`]), and everything else
//! about the provider (its classifier, day zone and prices) comes from its descriptor, never
//! from a copy here.

use imagegate_core::quota::PriceTable;
use imagegate_core::registry::{self, ProviderDescriptor};
use imagegate_mock::sim::wire::UpstreamKind;
use jiff::tz::TimeZone;

/// The registry entries whose wire format the simulated upstream speaks.
pub static SIMULATED: &[&ProviderDescriptor] = &[
    &imagegate_gemini::DESCRIPTOR,
    &imagegate_openrouter::DESCRIPTOR,
    &imagegate_openai::DESCRIPTOR,
    &imagegate_vertex::DESCRIPTOR,
];

/// The entry of `kind`.
pub fn descriptor(kind: UpstreamKind) -> &'static ProviderDescriptor {
    match kind {
        UpstreamKind::Gemini => &imagegate_gemini::DESCRIPTOR,
        UpstreamKind::OpenRouter => &imagegate_openrouter::DESCRIPTOR,
        UpstreamKind::OpenAi => &imagegate_openai::DESCRIPTOR,
        UpstreamKind::Vertex => &imagegate_vertex::DESCRIPTOR,
    }
}

/// The simulated kind named `name` (a registry name), if the simulator models it.
pub fn kind_named(name: &str) -> Option<UpstreamKind> {
    UpstreamKind::ALL
        .into_iter()
        .find(|k| descriptor(*k).name.eq_ignore_ascii_case(name))
}

/// The zone whose midnight ends `kind`'s day.
pub fn zone(kind: UpstreamKind) -> TimeZone {
    descriptor(kind).zone()
}

/// Every simulated provider's default prices.
pub fn prices() -> PriceTable {
    registry::price_table(SIMULATED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_simulated_kind_has_its_entry_and_a_classifier() {
        for kind in UpstreamKind::ALL {
            let d = descriptor(kind);
            assert_eq!(d.name, kind.as_str());
            assert!(d.parse_error.is_some(), "{}", d.name);
            assert_eq!(kind_named(d.name), Some(kind));
            assert!(SIMULATED.contains(&d));
        }
        assert_eq!(kind_named("mock"), None);
    }
}

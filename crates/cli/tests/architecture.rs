//! The crate boundaries of docs/architecture.md, read from `cargo metadata`:
//! core and router know no provider; no provider knows another; the emulator knows only core
//! and mock; nothing links OpenSSL.

#![allow(clippy::expect_used)] // a failed expectation is a failed test

use std::collections::{BTreeMap, BTreeSet};

use cargo_metadata::{DependencyKind, MetadataCommand};

const PROVIDERS: [&str; 3] = ["imagegate-gemini", "imagegate-openrouter", "imagegate-mock"];

/// Each workspace package and the workspace packages it depends on (normal and build
/// dependencies; dev-dependencies may use anything, tests need fakes).
fn internal_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let metadata = MetadataCommand::new()
        .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
        .no_deps()
        .exec()
        .expect("cargo metadata runs");
    let members: BTreeSet<String> = metadata
        .workspace_packages()
        .iter()
        .map(|p| p.name.to_string())
        .collect();
    metadata
        .workspace_packages()
        .iter()
        .map(|package| {
            let deps = package
                .dependencies
                .iter()
                .filter(|d| d.kind != DependencyKind::Development)
                .filter(|d| members.contains(&d.name))
                .map(|d| d.name.clone())
                .collect();
            (package.name.to_string(), deps)
        })
        .collect()
}

#[test]
fn core_and_router_depend_on_no_provider_and_no_provider_on_another() {
    let graph = internal_dependencies();
    assert!(graph.contains_key("imagegate-core") && graph.contains_key("imagegate-router"));
    let mut violations = Vec::new();
    for (package, deps) in &graph {
        let is_provider = PROVIDERS.contains(&package.as_str());
        let must_not_know_providers =
            package == "imagegate-core" || package == "imagegate-router" || is_provider;
        if !must_not_know_providers {
            continue;
        }
        for dep in deps {
            if PROVIDERS.contains(&dep.as_str()) {
                violations.push(format!("{package} depends on provider {dep}"));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(
        graph["imagegate-core"].is_empty(),
        "imagegate-core depends on no workspace crate: {:?}",
        graph["imagegate-core"]
    );
}

#[test]
fn the_emulator_serves_the_simulated_upstream_and_knows_no_real_provider() {
    let graph = internal_dependencies();
    let deps = graph
        .get("imagegate-emulator")
        .expect("the emulator is a workspace member");
    let expected: BTreeSet<String> = ["imagegate-core", "imagegate-mock"]
        .map(str::to_owned)
        .into();
    assert_eq!(
        deps, &expected,
        "the emulator depends on core and mock only (the real clients are dev-dependencies)"
    );
}

#[test]
fn nothing_links_openssl_or_native_tls() {
    let metadata = MetadataCommand::new()
        .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
        .exec()
        .expect("cargo metadata runs");
    let resolve = metadata.resolve.as_ref().expect("a resolved graph");
    let forbidden: Vec<String> = resolve
        .nodes
        .iter()
        .filter_map(|node| {
            let package = &metadata[&node.id];
            ["openssl-sys", "openssl", "native-tls"]
                .contains(&package.name.as_str())
                .then(|| package.name.to_string())
        })
        .collect();
    assert!(forbidden.is_empty(), "rustls only: found {forbidden:?}");
}

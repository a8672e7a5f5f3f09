//! The crate boundaries of docs/architecture.md, read from `cargo metadata`:
//! core and router know no provider; no provider knows another; router, http and google-rpc
//! know only core; the Redis quota store knows only core; nothing links OpenSSL.

#![allow(clippy::expect_used, clippy::panic)] // a failed expectation is a failed test

use std::collections::{BTreeMap, BTreeSet};

use cargo_metadata::{DependencyKind, MetadataCommand};

/// The workspace members that are not providers; every other member is one (so a new provider
/// crate is held to the rules without editing this file). The emulator (a server in front of
/// mock's simulated upstream) is listed ahead of its arrival: it serves, it does not provide.
const NOT_PROVIDERS: [&str; 9] = [
    "imagegate-core",
    "imagegate-redis",
    "imagegate-google-rpc",
    "imagegate-http",
    "imagegate-router",
    "imagegate-testkit",
    "imagegate-sim",
    "imagegate-emulator",
    "imagegate",
];

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
    let providers: Vec<&str> = graph
        .keys()
        .map(String::as_str)
        .filter(|p| !NOT_PROVIDERS.contains(p))
        .collect();
    for known in ["imagegate-gemini", "imagegate-openrouter", "imagegate-mock"] {
        assert!(providers.contains(&known), "{known} in {providers:?}");
    }
    let mut violations = Vec::new();
    for (package, deps) in &graph {
        let is_provider = providers.contains(&package.as_str());
        let must_not_know_providers =
            package == "imagegate-core" || package == "imagegate-router" || is_provider;
        if !must_not_know_providers {
            continue;
        }
        for dep in deps {
            if providers.contains(&dep.as_str()) {
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
fn shared_crates_depend_on_core_only() {
    // The router, the HTTP shell and the google.rpc protocol crate are shared by providers (or
    // sit above them): each knows core and nothing else of the workspace.
    let graph = internal_dependencies();
    // The Redis quota store implements core's QuotaStore and nothing else.
    for package in [
        "imagegate-router",
        "imagegate-http",
        "imagegate-google-rpc",
        "imagegate-redis",
    ] {
        let deps: Vec<&str> = graph
            .get(package)
            .unwrap_or_else(|| panic!("{package} is a workspace member"))
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(deps, ["imagegate-core"], "{package} depends on {deps:?}");
    }
    // Every HTTP provider sends through the shared shell.
    for provider in ["imagegate-gemini", "imagegate-openrouter"] {
        assert!(
            graph[provider].contains("imagegate-http"),
            "{provider} does not use imagegate-http"
        );
    }
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

//! The crate boundaries of docs/architecture.md, read from `cargo metadata`:
//! core and router know no provider; no provider knows another; router, http and google-rpc
//! know only core; the emulator knows only core and mock; the gateway knows only core and the
//! router; the Redis quota store knows only core; nothing links OpenSSL.

#![allow(clippy::expect_used, clippy::panic)] // a failed expectation is a failed test

use std::collections::{BTreeMap, BTreeSet};

use cargo_metadata::{DependencyKind, MetadataCommand};

/// The workspace members that are not providers; every other member is one (so a new provider
/// crate is held to the rules without editing this file). The emulator (a server in front of
/// mock's simulated upstream) is listed ahead of its arrival: it serves, it does not provide.
const NOT_PROVIDERS: [&str; 11] = [
    "imagegate-core",
    "imagegate-redis",
    "imagegate-google-rpc",
    "imagegate-gemini-wire",
    "imagegate-http",
    "imagegate-router",
    "imagegate-testkit",
    "imagegate-sim",
    "imagegate-emulator",
    "imagegate-server",
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
        "imagegate-gemini-wire",
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
    // Every provider but the mock (which has no upstream) sends through the shared shell, so
    // a new provider cannot bring its own HTTP rules.
    let providers = graph
        .keys()
        .filter(|p| !NOT_PROVIDERS.contains(&p.as_str()) && p.as_str() != "imagegate-mock");
    for provider in providers {
        assert!(
            graph[provider].contains("imagegate-http"),
            "{provider} does not use imagegate-http"
        );
    }
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
fn the_gateway_takes_a_built_router_and_knows_no_provider() {
    let graph = internal_dependencies();
    let deps = graph
        .get("imagegate-server")
        .expect("the gateway is a workspace member");
    let expected: BTreeSet<String> = ["imagegate-core", "imagegate-router"]
        .map(str::to_owned)
        .into();
    assert_eq!(
        deps, &expected,
        "the gateway depends on core and the router only: the CLI assembles the router from \
         configuration and hands it over (providers and the emulator are dev-dependencies)"
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

/// The workspace's root directory.
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("a source directory");
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of a file that are code (not comments), with everything after `#[cfg(test)]`
/// left out (unit tests may exercise anything).
fn code_lines(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).expect("a readable source file");
    text.lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(str::to_owned)
        .collect()
}

/// One admission path: outside the stores (core's quota module and the Redis store, whose
/// fallback ledger admits locally while Redis is away), only the router
/// asks a quota store to admit a call (its admission step, and the partner reservations of
/// shared-pool linking). A second admit/wait loop anywhere else (the CLI's former quota gate)
/// fails this test. The mock's simulated upstream keeps its own books of what the *upstream*
/// admits (it is the thing that answers 429s), which is not imagegate's admission.
#[test]
fn only_the_router_and_the_stores_call_admission() {
    let root = workspace_root();
    let allowed = [
        "crates/core/src/quota/",
        "crates/redis/src/",
        "crates/router/src/admit.rs",
        "crates/router/src/linking.rs",
        "crates/mock/src/sim/",
    ];
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root.join("crates")).expect("the crates directory") {
        let src = entry.expect("a crate").path().join("src");
        if src.is_dir() {
            rust_files(&src, &mut files);
        }
    }
    assert!(files.len() > 20, "the sources were found: {}", files.len());
    let mut callers = Vec::new();
    for file in &files {
        let relative = file
            .strip_prefix(&root)
            .expect("under the root")
            .to_string_lossy()
            .replace('\\', "/");
        if allowed.iter().any(|a| relative.starts_with(a)) {
            continue;
        }
        for (n, line) in code_lines(file).iter().enumerate() {
            if line.contains(".admit(") || line.contains("admit_now(") {
                callers.push(format!("{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        callers.is_empty(),
        "admission outside the router and the stores: {callers:#?}"
    );
}

/// The top-level modules of one crate and the modules each names through `crate::`.
fn module_graph(krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = workspace_root().join("crates").join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |path: &std::path::Path| -> Option<String> {
        let relative = path.strip_prefix(&src).ok()?;
        let first = relative.components().next()?.as_os_str().to_string_lossy();
        let name = first.trim_end_matches(".rs").to_owned();
        (name != "lib" && name != "main").then_some(name)
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let edges = graph.entry(module.clone()).or_default();
        for line in code_lines(file) {
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != module && modules.contains(&name) {
                    edges.insert(name);
                }
            }
        }
    }
    graph
}

/// A cycle in `graph`, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

/// Modules import one another in one direction only: in core, `error` stands below `quota`
/// and `advice`; in the router, the public face (`router`) stands above the modules that
/// serve a request, which share state through `inner`, not through `router`.
#[test]
fn core_and_router_modules_import_without_loops() {
    for krate in ["core", "router"] {
        let graph = module_graph(krate);
        assert!(graph.len() > 5, "{krate}: modules found: {graph:?}");
        assert_eq!(find_cycle(&graph), None, "{krate}: {graph:#?}");
    }
    let core = module_graph("core");
    assert!(
        core["quota"].contains("error"),
        "the scan sees imports: {core:?}"
    );
    assert!(!core["error"].contains("quota") && !core["error"].contains("advice"));
    let router = module_graph("router");
    assert!(router["router"].contains("serve"), "{router:?}");
}

/// The `pub mod` names a module file declares, and the modules its `pub use` lines re-export
/// from. A name in both is an item reachable at two public paths (`krate::Item` and
/// `krate::module::Item`): publishing fixes both, so each item keeps exactly one.
fn public_modules_and_reexports(path: &std::path::Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut modules = BTreeSet::new();
    let mut reexported_from = BTreeSet::new();
    for line in code_lines(path) {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("pub mod ") {
            modules.insert(rest.trim_end_matches(';').trim().to_owned());
        } else if let Some(rest) = line.strip_prefix("pub use ") {
            let first = rest.split("::").next().unwrap_or_default();
            let first = first.strip_prefix("self::").unwrap_or(first);
            reexported_from.insert(first.to_owned());
        }
    }
    (modules, reexported_from)
}

#[test]
fn every_public_item_has_one_public_path() {
    let root = workspace_root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    let mut doubled = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !matches!(name, "lib.rs" | "mod.rs")
            || file.components().any(|c| c.as_os_str() == "tests")
        {
            continue;
        }
        let (modules, reexported_from) = public_modules_and_reexports(&file);
        for module in modules.intersection(&reexported_from) {
            doubled.push(format!(
                "{}: pub mod {module} and pub use {module}::...",
                file.display()
            ));
        }
    }
    assert!(
        doubled.is_empty(),
        "items reachable at two public paths (make the module private, or drop the re-export):\n{}",
        doubled.join("\n")
    );
}

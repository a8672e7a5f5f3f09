//! The fixtures stand on their own: every `source` and `description` names a public origin or
//! a document in this repository, never a machine path or a document outside it.

#![allow(clippy::panic)] // test helpers: a failed expectation is a failed test

use std::path::Path;

use imagegate_testkit::Fixture;

/// What a fixture must not cite: local paths and documents that live outside the repository.
const FORBIDDEN: [&str; 9] = [
    "shared/",
    "samples/",
    "wire-formats",
    "domain.md",
    "DESIGN.md",
    "/work/",
    "/home/",
    "/tmp/",
    "seed 0",
];

fn every_fixture() -> Vec<Fixture> {
    let root = imagegate_testkit::fixtures_root();
    let mut all = Vec::new();
    for provider in std::fs::read_dir(&root).unwrap_or_else(|e| panic!("{}: {e}", root.display())) {
        let provider = provider.unwrap_or_else(|e| panic!("{e}")).path();
        let name = provider
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if provider.is_dir() && name != "scenarios" {
            all.extend(Fixture::load_dir(&name).unwrap_or_else(|e| panic!("{name}: {e}")));
        }
    }
    all
}

#[test]
fn no_fixture_cites_a_local_path_or_an_outside_document() {
    let fixtures = every_fixture();
    assert!(
        fixtures.len() >= 100,
        "only {} fixtures found",
        fixtures.len()
    );
    let mut bad = Vec::new();
    for f in &fixtures {
        for text in [&f.source, &f.description] {
            if let Some(word) = FORBIDDEN.iter().find(|w| text.contains(**w)) {
                bad.push(format!("{}: cites `{word}`: {text}", f.id));
            }
        }
        if f.source.trim().is_empty() {
            bad.push(format!("{}: no source", f.id));
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

#[test]
fn the_fixtures_readme_cites_nothing_outside_the_repository() {
    let readme = imagegate_testkit::fixtures_root().join("README.md");
    let text = std::fs::read_to_string(&readme)
        .unwrap_or_else(|e| panic!("{}: {e}", Path::new(&readme).display()));
    for word in FORBIDDEN {
        assert!(!text.contains(word), "fixtures/README.md cites `{word}`");
    }
}

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
        if provider.is_dir() && name != "scenarios" && name != "fuzz" {
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

/// What no file of the repository may cite: the documents the project was planned from live
/// outside it, and so do the machines it was written on. A reader of a clone can follow every
/// citation, or it is not one.
const OUTSIDE: [&str; 10] = [
    "shared/",
    "wire-formats.md",
    "domain.md",
    "DESIGN.md",
    "clients-and-peers",
    "style-anchors",
    "/work/",
    "seed 00",
    "the issue",
    "The issue",
];

/// Every source, document and fixture under the workspace root, skipping build output and
/// version control.
fn repository_text_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.is_dir() {
            if !matches!(name, "target" | ".git" | "node_modules") && !name.starts_with('.') {
                repository_text_files(&path, out);
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("rs" | "md" | "toml" | "json" | "jsonl" | "py" | "txt" | "sh" | "html" | "js")
        ) || name == "run"
        {
            out.push(path);
        }
    }
}

#[test]
fn no_file_in_the_repository_cites_a_document_or_path_outside_it() {
    let root = imagegate_testkit::fixtures_root().join("..");
    let mut files = Vec::new();
    repository_text_files(&root, &mut files);
    assert!(
        files.len() > 100,
        "only {} files found under {}",
        files.len(),
        root.display()
    );
    let this_file = Path::new(file!()).file_name();
    let mut bad = Vec::new();
    for path in files {
        if path.file_name() == this_file {
            continue; // the list above names what it forbids
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue; // not text: nothing to cite
        };
        for (n, line) in text.lines().enumerate() {
            if let Some(word) = OUTSIDE.iter().find(|w| line.contains(**w)) {
                bad.push(format!("{}:{}: cites `{word}`", path.display(), n + 1));
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}

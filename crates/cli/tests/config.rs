//! Configuration layers and the errors bad configuration gets (exit 2, naming key and file).

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::{imagegate, stderr};

fn run_with(toml: &str, extra: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("custom.toml"), toml).unwrap();
    let mut cmd = imagegate(dir.path());
    cmd.args([
        "generate",
        "x",
        "--size",
        "0.5K",
        "-o",
        "x.png",
        "--config",
        "custom.toml",
    ]);
    for (name, value) in extra {
        cmd.env(name, value);
    }
    cmd.output().unwrap()
}

#[test]
fn a_key_written_in_the_file_is_refused_with_what_to_do_instead() {
    let output = run_with("[providers.gemini]\napi_key = \"secret-value\"\n", &[]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("providers.gemini.api_key"), "{err}");
    assert!(err.contains("custom.toml"), "{err}");
    assert!(err.contains("api_key_env"), "{err}");
    assert!(
        !err.contains("secret-value"),
        "the key must not be echoed: {err}"
    );
}

#[test]
fn wrong_types_and_unknown_keys_name_the_key_the_file_and_the_expectation() {
    let output = run_with("[providers.mock]\ntimeout = 5\n", &[]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("providers.mock.timeout") && err.contains("custom.toml"),
        "{err}"
    );
    assert!(err.contains("expected a duration"), "{err}");

    let output = run_with("default_providr = \"mock\"\n", &[]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("default_providr") && err.contains("custom.toml"),
        "{err}"
    );

    let output = run_with("this is not toml", &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("custom.toml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_named_file_that_does_not_exist_is_an_error_not_silence() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args(["generate", "x", "--config", "nope.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("nope.toml"), "{}", stderr(&output));

    let output = imagegate(dir.path())
        .env("IMAGEGATE_CONFIG", "also-missing.toml")
        .args(["generate", "x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("also-missing.toml"));
}

#[test]
fn the_file_then_the_environment_choose_the_provider() {
    // The file names a mock provider under another name; the environment overrides its model.
    let toml = "default_provider = \"studio\"\n[providers.studio]\nkind = \"mock\"\nmodel = \"from-file\"\n";
    let output = run_with(toml, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("using the built-in mock"),
        "a configured provider"
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("from studio/from-file"));

    let output = run_with(toml, &[("IMAGEGATE_PROVIDERS__STUDIO__MODEL", "from-env")]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("from studio/from-env"));

    let output = run_with(toml, &[("IMAGEGATE_DEFAULT_PROVIDER", "elsewhere")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("default_provider"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn imagegate_toml_in_the_working_directory_is_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[providers.mock]\nmodel = \"local-file\"\n",
    )
    .unwrap();
    let output = imagegate(dir.path())
        .args([
            "generate",
            "x",
            "--size",
            "0.5K",
            "-o",
            "x.png",
            "--provider",
            "mock",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("mock/local-file"));
}

#[test]
fn a_gemini_key_in_the_environment_makes_gemini_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .env("GEMINI_API_KEY", "test-key-not-real")
        .env("GEMINI_BASE_URL", "not a url")
        .args(["generate", "x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(err.contains("providers.gemini.base_url"), "{err}");
    assert!(!err.contains("test-key-not-real"), "{err}");
}

#[test]
fn prices_from_the_file_give_the_estimate_before_sending() {
    let toml = "[prices.models.\"mock-image-1\"]\nper_image = 0.25\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("imagegate.toml"), toml).unwrap();
    let output = imagegate(dir.path())
        .args([
            "generate", "x", "-n", "2", "--size", "0.5K", "-o", "out/", "--json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["estimated_cost_usd"], 0.5);

    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[prices.models.m]\nper_img = 1\n",
    )
    .unwrap();
    let output = imagegate(dir.path())
        .args(["generate", "x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("per_img"), "{}", stderr(&output));
}

/// Found by the `config` fuzz target (docs/testing.md): a TOML syntax error quoted the line at
/// fault, and with it a key pasted there.
#[test]
fn a_syntax_error_on_a_key_line_does_not_quote_the_key() {
    let path = imagegate_testkit::fixtures_root().join("fuzz/config/api-key-unclosed-quote.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    let key = "fuzzheldkey-7QzXw2vN9pL4tR8m";
    assert!(
        toml.contains(key),
        "{} no longer holds the key",
        path.display()
    );
    let output = run_with(&toml, &[]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(!err.contains(key), "the key must not be echoed: {err}");
    assert!(err.contains("custom.toml"), "{err}");
    assert!(err.contains("line 4"), "the position stays: {err}");
}

/// Found by the `config` fuzz target (docs/testing.md): `api_key` directly under `[providers]`
/// is read as a provider, and the type error quoted the value it found, the key.
#[test]
fn a_key_where_a_provider_belongs_is_not_quoted() {
    let path =
        imagegate_testkit::fixtures_root().join("fuzz/config/api-key-in-providers-table.toml");
    let toml = std::fs::read_to_string(&path).unwrap();
    let key = "fuzzheldkey-7QzXw2vN9pL4tR8m";
    assert!(
        toml.contains(key),
        "{} no longer holds the key",
        path.display()
    );
    let output = run_with(&toml, &[]);
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(!err.contains(key), "the key must not be echoed: {err}");
    assert!(err.contains("providers.api_key"), "{err}");
    assert!(err.contains("api_key_env"), "{err}");
}

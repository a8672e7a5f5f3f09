//! `imagegate generate` end to end on the embedded default: the mock provider.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod common;

use common::{decode_png, imagegate, stderr, stdout};

#[test]
fn with_no_configuration_it_uses_the_mock_and_writes_a_valid_png() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args(["generate", "a lighthouse at dusk", "-o", "lighthouse.png"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("using the built-in mock provider"));
    assert!(stdout(&output).contains("wrote lighthouse.png"));

    let bytes = std::fs::read(dir.path().join("lighthouse.png")).unwrap();
    let (width, height, pixels) = decode_png(&bytes);
    assert_eq!((width, height), (1024, 1024));
    let first = &pixels[..3];
    assert!(
        pixels.chunks(3).any(|px| px != first),
        "the image must show a pattern, not one colour"
    );
}

fn generate_bytes(prompt: &str, seed: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args([
            "generate", prompt, "--seed", seed, "--size", "0.5K", "-o", "x.png",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    std::fs::read(dir.path().join("x.png")).unwrap()
}

#[test]
fn same_prompt_and_seed_give_the_same_bytes_and_another_prompt_does_not() {
    let first = generate_bytes("a lighthouse at dusk", "7");
    assert_eq!(first, generate_bytes("a lighthouse at dusk", "7"));
    assert_ne!(first, generate_bytes("a harbour at dawn", "7"));
    assert_ne!(first, generate_bytes("a lighthouse at dusk", "8"));
}

#[test]
fn several_images_into_a_directory_with_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args(["generate", "tide pools", "-n", "3", "--size", "0.5K"])
        .args(["--aspect-ratio", "16:9", "-o", "out/", "--json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["provider"], "mock");
    assert_eq!(summary["model"], "mock-image-1");
    let images = summary["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    let mut seen = Vec::new();
    for image in images {
        let path = dir.path().join(image["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap();
        let (width, height, _) = decode_png(&bytes);
        assert!(width > height, "16:9 is landscape, got {width}x{height}");
        assert_eq!(image["width"], width);
        assert_eq!(image["bytes"], bytes.len());
        seen.push(bytes);
    }
    seen.dedup();
    assert_eq!(seen.len(), 3, "three different images");
}

#[test]
fn a_file_name_with_several_images_is_numbered() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args([
            "generate", "moss", "-n", "2", "--size", "0.5K", "-o", "moss.png",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(dir.path().join("moss-1.png").is_file());
    assert!(dir.path().join("moss-2.png").is_file());
}

#[test]
fn bad_arguments_exit_2_and_say_what_was_wrong() {
    let dir = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (vec!["generate", "x", "--size", "3K"], "3K"),
        (vec!["generate", "x", "--aspect-ratio", "wide"], "wide"),
        (vec!["generate", "x", "-n", "0"], "0"),
        (
            vec!["generate", "x", "--reference", "missing.png"],
            "missing.png",
        ),
        (vec!["generate", "x", "--provider", "nowhere"], "nowhere"),
        (vec!["generate", "   "], "prompt"),
    ] {
        let output = imagegate(dir.path()).args(&args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[test]
fn an_unknown_imagegate_variable_is_a_warning_naming_it_not_an_exit() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .env("IMAGEGATE_WRAPPER_RUN_ID", "42")
        .args(["generate", "x", "--size", "0.5K", "-o", "x.png"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("IMAGEGATE_WRAPPER_RUN_ID"),
        "{}",
        stderr(&output)
    );
    assert!(dir.path().join("x.png").is_file());
}

#[test]
fn log_lines_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args(["-v", "generate", "x", "--size", "0.5K", "-o", "x.png"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("INFO"), "info lines are logged with -v: {err}");
    assert!(!err.contains('\u{1b}'), "no ANSI escape in a pipe: {err:?}");
}

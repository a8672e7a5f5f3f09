//! `imagegate serve` as a user runs it: with no configuration the first line names the port
//! and the mock answers an OpenAI images request; a non-loopback address without clients is
//! refused; `keys new` prints a key whose hash the gateway then accepts; SIGTERM stops it
//! with exit 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::{imagegate, imagegate_process, spawn_listening, stderr};
use serde_json::Value;

/// Starts `imagegate serve` in `dir` on a free port: the child and its URL.
fn serve(dir: &Path, extra: &[&str]) -> (Child, String) {
    spawn_listening(
        imagegate_process(dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stderr(Stdio::piped()),
    )
}

/// `POST path` with a JSON body over a plain socket: the status line and the body.
fn post(url: &str, path: &str, headers: &str, body: &str) -> (String, String) {
    let host = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

fn stop(mut child: Child, signal: &str) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success()
    );
    child.wait().unwrap()
}

#[test]
fn with_no_configuration_the_mock_answers_and_sigterm_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let (child, url) = serve(dir.path(), &[]);
    let (status, body) = post(
        &url,
        "/v1/images/generations",
        "",
        r#"{"model": "gpt-image-1", "prompt": "a lighthouse", "size": "512x512"}"#,
    );
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(body["data"][0]["b64_json"].as_str().unwrap().len() > 100);
    let status = stop(child, "-TERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_non_loopback_address_without_clients_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = stderr(&output);
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 with no clients"),
        "{err}"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_key_from_keys_new_is_accepted_and_any_other_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args(["keys", "new", "app"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let key = stdout.lines().next().unwrap().to_owned();
    assert!(key.starts_with("ig_"), "{stdout}");
    let entry = &stdout[stdout.find("[[server.clients]]").unwrap()..];
    assert!(
        !entry.contains(&key),
        "the configuration holds only the hash"
    );
    std::fs::write(
        dir.path().join("imagegate.toml"),
        format!("[server]\nmax_wait = \"5s\"\n{entry}"),
    )
    .unwrap();

    let (child, url) = serve(dir.path(), &[]);
    let body = r#"{"contents": [{"parts": [{"text": "a lighthouse"}]}]}"#;
    let path = "/v1beta/models/gemini-2.5-flash-image:generateContent";
    let (status, _) = post(&url, path, &format!("x-goog-api-key: {key}\r\n"), body);
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, answer) = post(&url, path, "x-goog-api-key: ig_not_it\r\n", body);
    assert_eq!(status, "HTTP/1.1 401 Unauthorized");
    assert!(answer.contains("UNAUTHENTICATED"), "{answer}");
    let status = stop(child, "-INT");
    assert!(status.success(), "{status:?}");
}

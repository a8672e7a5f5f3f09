//! `imagegate quota --serve`: the gateway's status page over the local quota state. The first
//! line names the port, `/status.json` lists the configured pools, `/` is the page, SIGTERM
//! stops it with exit 0, and a non-loopback address is refused (the page has no keys).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod common;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::{imagegate, imagegate_process, spawn_listening, stderr};
use serde_json::Value;

/// `GET path` over a plain socket: the status line and the body.
fn get(url: &str, path: &str) -> (String, String) {
    let host = url.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[test]
fn quota_serve_shows_the_configured_pools_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, url) = spawn_listening(
        imagegate_process(dir.path())
            .env("GEMINI_API_KEY", "test-key-not-real")
            .args(["quota", "--serve", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped()),
    );

    let (status, body) = get(&url, "/status.json");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["source"], "quota");
    let pools: Vec<&str> = json["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"]["pool"].as_str().unwrap())
        .collect();
    assert!(pools.contains(&"gemini-2.5-flash-image"), "{json}");
    assert!(!body.contains("test-key-not-real"));
    for path in ["/", "/status"] {
        let (status, page) = get(&url, path);
        assert_eq!(status, "HTTP/1.1 200 OK");
        assert!(page.contains("<title>imagegate status</title>"), "{page}");
    }

    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn quota_serve_refuses_a_non_loopback_address_and_listen_needs_serve() {
    let dir = tempfile::tempdir().unwrap();
    let output = imagegate(dir.path())
        .args(["quota", "--serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("loopback only"),
        "{}",
        stderr(&output)
    );

    let output = imagegate(dir.path())
        .args(["quota", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(stderr(&output).contains("--serve"), "{}", stderr(&output));
}

//! `imagegate generate` against a hostile but realistic user: parallel runs into one
//! directory, an output that cannot be written, FIFOs in place of files, huge references,
//! the umask. Each test reproduces a defect that lost a paid image or replaced a file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod hostile_kit;

use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::process::Stdio;
use std::time::Duration;

use hostile_kit::*;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

fn generate(extra: &[&str]) -> Vec<String> {
    let mut args = strings(&["generate", "a lighthouse at dusk", "--provider", "gemini"]);
    args.extend(strings(extra));
    args
}

/// Answers every request at one fixed instant, however early it arrived.
struct AtOnce {
    at: std::time::Instant,
    template: ResponseTemplate,
}

impl Respond for AtOnce {
    fn respond(&self, _: &wiremock::Request) -> ResponseTemplate {
        let wait = self.at.saturating_duration_since(std::time::Instant::now());
        self.template.clone().set_delay(wait)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn parallel_runs_into_one_directory_never_overwrite_each_other() {
    let runs = 16;
    // Every answer is released at the same instant, so every run picks its name at once.
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(AtOnce {
            at: std::time::Instant::now() + Duration::from_millis(1500),
            template: imagegate_testkit::response_template(
                &imagegate_testkit::Fixture::by_id(SUCCESS).unwrap(),
            ),
        })
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    // Limits high enough that no run waits for a minute window (the free tier allows 10).
    std::fs::write(
        dir.path().join("imagegate.toml"),
        "[providers.gemini.quota.models.\"gemini-2.5-flash-image\"]\nrpm = 1000\nipm = 1000\n",
    )
    .unwrap();
    let children: Vec<_> = (0..runs)
        .map(|_| {
            let mut cmd = command(dir.path(), &server);
            cmd.args(generate(&["-o", "out/"]))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let output = finish(child, Duration::from_secs(60)).await;
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert_eq!(requests(&server).await, runs);
    assert_eq!(
        images_in(&dir.path().join("out")).len(),
        runs,
        "every paid image is on disk"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_output_that_cannot_be_created_is_refused_before_paying() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blocker"), b"a file").unwrap();
    let output = run(dir.path(), &server, generate(&["-o", "blocker/sub/"])).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("blocker"), "{}", stderr(&output));
    assert_eq!(requests(&server).await, 0, "nothing was paid");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_that_cannot_be_written_after_paying_is_kept_in_the_state_directory() {
    let server = server(Duration::from_millis(600)).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let mut cmd = command(dir.path(), &server);
    cmd.args(generate(&["-o", "out/"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let received = {
        let server = &server;
        async move {
            loop {
                if requests(server).await > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), received)
        .await
        .unwrap();
    // Paid, and now the destination is gone (its path is a file).
    std::fs::rename(dir.path().join("out"), dir.path().join("out.moved")).unwrap();
    std::fs::write(dir.path().join("out"), b"in the way").unwrap();
    let output = finish(child, Duration::from_secs(60)).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    let recovered = std::fs::read_dir(dir.path().join(".state/recovered"))
        .unwrap_or_else(|e| panic!("no recovery directory ({e}): {err}"))
        .map(|e| e.unwrap().path())
        .collect::<Vec<_>>();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(std::fs::read(&recovered[0]).unwrap(), fixture_png());
    assert!(err.contains(&recovered[0].display().to_string()), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn output_at_a_fifo_is_refused_and_left_alone() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("out.png");
    mkfifo(&fifo);
    let output = run(dir.path(), &server, generate(&["-o", "out.png"])).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("not a regular file"),
        "{}",
        stderr(&output)
    );
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn image_files_follow_the_umask() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let cmd = command(dir.path(), &server);
    let mut shell = std::process::Command::new("sh");
    shell
        .arg("-c")
        .arg("umask 022; exec \"$0\" \"$@\"")
        .arg(cmd.get_program())
        .args(generate(&["-o", "x.png"]));
    for (name, value) in cmd.get_envs() {
        match value {
            Some(value) => shell.env(name, value),
            None => shell.env_remove(name),
        };
    }
    shell
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let output = finish(shell.spawn().unwrap(), Duration::from_secs(60)).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let mode = std::fs::metadata(dir.path().join("x.png"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644, "{mode:o}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_or_huge_reference_is_refused_without_reading_it() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("pipe.png"));
    let mut huge = std::fs::File::create(dir.path().join("huge.png")).unwrap();
    huge.write_all(&fixture_png()).unwrap();
    huge.set_len(40 * 1024 * 1024).unwrap();
    drop(huge);
    for (reference, expected) in [
        ("pipe.png", "not a regular file"),
        ("huge.png", "too large"),
    ] {
        let output = run(
            dir.path(),
            &server,
            generate(&["-o", "x.png", "--reference", reference]),
        )
        .await;
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    }
    assert_eq!(requests(&server).await, 0);
}

//! `imagegate batch` against a hostile but realistic user: colliding names, a second run on
//! the same directory, SIGTERM, a full disk, FIFOs and huge files as references, damaged
//! journals and inputs. Each test is the reproduction of a defect that lost paid images, paid
//! twice or hung, run against the real binary and a wiremock Gemini.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed unwrap is a failed test

mod hostile_kit;

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use hostile_kit::*;
use serde_json::Value;

fn write(path: &std::path::Path, text: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

fn skipped_lines(summary: &Value) -> Vec<u64> {
    summary["malformed_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["line"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn image_names_that_would_collide_are_refused_per_line_and_nothing_is_overwritten() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("in.jsonl"),
        concat!(
            // x-y-1.png and x-y-2.png
            "{\"id\": \"x\", \"prompt\": \"y\", \"n\": 2}\n",
            // x-y-1.png again
            "{\"id\": \"x-y\", \"prompt\": \"1\"}\n",
            // cat-1.png and cat-2.png
            "{\"prompt\": \"c\", \"output\": \"cat\", \"n\": 2}\n",
            // cat-1.png again
            "{\"prompt\": \"d\", \"output\": \"cat-1\"}\n",
        )
        .as_bytes(),
    );
    let output = run(dir.path(), &server, batch_args("in.jsonl", &["--json"])).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let summary = json(&output);
    assert_eq!(skipped_lines(&summary), [2, 4], "{summary}");
    let on_disk = images_in(&dir.path().join("out"));
    assert_eq!(
        names(&on_disk),
        ["cat-1.png", "cat-2.png", "x-y-1.png", "x-y-2.png"]
    );
    assert_eq!(summary["images_written"], 4, "as many written as on disk");
    assert_eq!(requests(&server).await, 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_on_the_same_out_exits_2_naming_the_first_runs_pid() {
    let server = server(Duration::from_millis(400)).await;
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("in.txt"), b"one\ntwo\nthree\n");
    let mut first = command(dir.path(), &server);
    first
        .args(batch_args("in.txt", &["--concurrency", "1"]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let first = first.spawn().unwrap();
    let pid = first.id();
    let out = dir.path().join("out");
    wait_until("the first run started a call", || {
        events(&journal(&out), "started") >= 1
    })
    .await;
    let second = run(dir.path(), &server, batch_args("in.txt", &[])).await;
    assert_eq!(second.status.code(), Some(2), "{}", stderr(&second));
    let err = stderr(&second);
    assert!(err.contains(&format!("pid {pid}")), "{err}");
    let first = finish(first, Duration::from_secs(60)).await;
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(requests(&server).await, 3, "every image paid once");
    assert_eq!(images_in(&out).len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_the_calls_in_flight_like_ctrl_c() {
    let jobs = 8;
    let server = server(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..jobs).map(|i| format!("a boat number {i}\n")).collect();
    write(&dir.path().join("in.txt"), text.as_bytes());
    let mut cmd = command(dir.path(), &server);
    cmd.args(batch_args("in.txt", &["--concurrency", "2"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let out = dir.path().join("out");
    wait_until("one image written", || {
        events(&journal(&out), "written") >= 1
    })
    .await;
    signal(child.id(), "-TERM");
    let output = finish(child, Duration::from_secs(60)).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run the same command again"),
        "{}",
        stderr(&output)
    );
    assert!(stdout(&output).contains("batch: "), "a summary was printed");
    let written = events(&journal(&out), "written");
    assert!(written < jobs, "stopped early");
    assert_eq!(
        requests(&server).await,
        written,
        "every call in flight finished and its image was kept"
    );
    assert_eq!(images_in(&out).len(), written);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unwritable_output_stops_new_calls_and_keeps_paid_images_for_the_rerun() {
    let server = server(Duration::from_millis(500)).await;
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("in.txt"), b"one\ntwo\nthree\n");
    let mut cmd = command(dir.path(), &server);
    cmd.args(batch_args("in.txt", &["--concurrency", "1", "--json"]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let out = dir.path().join("out");
    let moved = dir.path().join("out.moved");
    wait_until("the first call is in flight", || {
        events(&journal(&out), "started") >= 1
    })
    .await;
    // The output can no longer take files (as on a full disk): its path is now a file.
    std::fs::rename(&out, &moved).unwrap();
    write(&out, b"not a directory");
    let output = finish(child, Duration::from_secs(60)).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(requests(&server).await, 1, "no new call after the failure");
    let err = stderr(&output);
    assert!(err.contains("no new calls"), "{err}");
    let summary = json(&output);
    let rescued = summary["rescued"].as_array().unwrap();
    assert_eq!(rescued.len(), 1, "{summary}");
    let rescued = std::path::PathBuf::from(rescued[0].as_str().unwrap());
    assert!(
        rescued.starts_with(dir.path().join(".state")),
        "{rescued:?}"
    );
    assert_eq!(std::fs::read(&rescued).unwrap(), fixture_png());
    assert!(err.contains(&rescued.display().to_string()), "{err}");

    // Space is back: the rerun moves the paid image into place and pays only for the rest.
    std::fs::remove_file(&out).unwrap();
    std::fs::rename(&moved, &out).unwrap();
    let rerun = run(dir.path(), &server, batch_args("in.txt", &["--json"])).await;
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(
        requests(&server).await,
        3,
        "the rescued image was not paid again"
    );
    assert_eq!(images_in(&out).len(), 3);
    assert!(!rescued.exists(), "moved into the output");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifo_or_a_huge_file_as_reference_fails_its_job_without_hanging_or_reading_it() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("pipe.png"));
    let mut huge = std::fs::File::create(dir.path().join("huge.png")).unwrap();
    huge.write_all(&fixture_png()).unwrap();
    huge.set_len(40 * 1024 * 1024).unwrap(); // sparse: a "PNG" of 40 MB
    drop(huge);
    write(&dir.path().join("notes.png"), b"not an image at all");
    write(
        &dir.path().join("in.jsonl"),
        concat!(
            "{\"prompt\": \"from a pipe\", \"references\": [\"pipe.png\"]}\n",
            "{\"prompt\": \"from a huge file\", \"references\": [\"huge.png\"]}\n",
            "{\"prompt\": \"from notes\", \"references\": [\"notes.png\"]}\n",
            "{\"prompt\": \"plain\"}\n",
        )
        .as_bytes(),
    );
    let output = run(dir.path(), &server, batch_args("in.jsonl", &["--json"])).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let summary = json(&output);
    let failed = summary["failed"].as_array().unwrap();
    let reason = |line: u64| {
        failed
            .iter()
            .find(|f| f["line"] == line)
            .unwrap_or_else(|| panic!("line {line} failed: {summary}"))["message"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(reason(1).contains("not a regular file"), "{}", reason(1));
    assert!(reason(2).contains("too large"), "{}", reason(2));
    assert!(reason(3).contains("not a PNG"), "{}", reason(3));
    assert_eq!(requests(&server).await, 1, "only the plain job was sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn references_outside_the_input_directory_need_a_flag() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("outside.png"), &fixture_png());
    let absolute = dir.path().join("outside.png");
    let input = format!(
        "{{\"prompt\": \"up\", \"references\": [\"../outside.png\"]}}\n\
         {{\"prompt\": \"absolute\", \"references\": [{}]}}\n\
         {{\"prompt\": \"plain\"}}\n",
        serde_json::to_string(&absolute).unwrap()
    );
    write(&dir.path().join("jobs/in.jsonl"), input.as_bytes());
    let refused = run(
        dir.path(),
        &server,
        batch_args("jobs/in.jsonl", &["--json"]),
    )
    .await;
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    let summary = json(&refused);
    assert_eq!(skipped_lines(&summary), [1, 2], "{summary}");
    assert!(
        stderr(&refused).contains("--allow-outside-references"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(requests(&server).await, 1);

    let allowed = run(
        dir.path(),
        &server,
        batch_args("jobs/in.jsonl", &["--allow-outside-references"]),
    )
    .await;
    assert!(allowed.status.success(), "{}", stderr(&allowed));
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_under_a_stable_name_is_adopted_only_after_a_started_record_and_if_an_image() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("in.txt"), b"a quiet harbor\na busy port\n");
    let out = dir.path().join("out");
    // No journal record at all, and not an image: a stranger's file.
    write(&out.join("1-a-quiet-harbor.png"), b"");
    // A started record, but the file is not an image either.
    write(
        &out.join(JOURNAL),
        b"{\"at\":\"2026-11-23T10:00:00Z\",\"event\":\"started\",\"job\":\"2\",\"image\":0}\n",
    );
    write(&out.join("2-a-busy-port.png"), b"GIF89a? no");
    let output = run(dir.path(), &server, batch_args("in.txt", &["--json"])).await;
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = json(&output);
    assert_eq!(summary["images_recovered"], 0, "{summary}");
    assert_eq!(summary["images_written"], 2, "{summary}");
    assert_eq!(requests(&server).await, 2);
    assert_eq!(
        std::fs::read(out.join("1-a-quiet-harbor.png")).unwrap(),
        b""
    );
    assert_eq!(
        std::fs::read(out.join("2-a-busy-port.png")).unwrap(),
        b"GIF89a? no",
        "never replaced"
    );
    let pngs: Vec<_> = images_in(&out)
        .into_iter()
        .filter(|p| std::fs::read(p).unwrap() == fixture_png())
        .collect();
    assert_eq!(pngs.len(), 2, "both images written beside the strangers");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_journal_with_bad_bytes_in_the_middle_and_a_torn_end_still_resumes() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("in.txt"), b"one\ntwo\nthree\n");
    let first = run(dir.path(), &server, batch_args("in.txt", &[])).await;
    assert!(first.status.success(), "{}", stderr(&first));
    let path = dir.path().join("out").join(JOURNAL);
    let mut lines: Vec<Vec<u8>> = std::fs::read(&path)
        .unwrap()
        .split(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect();
    // Line 2 (the second job's `planned`) gets an invalid UTF-8 byte.
    assert!(String::from_utf8_lossy(&lines[1]).contains("\"planned\""));
    let quote = lines[1].iter().rposition(|b| *b == b'"').unwrap();
    lines[1].insert(quote, 0xff);
    let mut bytes = lines.join(&b'\n');
    // A last line torn inside a multibyte character.
    bytes.extend_from_slice(
        "{\"at\":\"2026-11-23T10:00:00Z\",\"event\":\"planned\",\"job\":\"9\",\"prompt\":\"caf"
            .as_bytes(),
    );
    bytes.push(0xc3);
    std::fs::write(&path, bytes).unwrap();

    let rerun = run(dir.path(), &server, batch_args("in.txt", &[])).await;
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(requests(&server).await, 3, "nothing paid again");
    let err = stderr(&rerun);
    assert!(err.contains("damaged in the middle"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("torn at the end"), "{err}");
    // What the rerun appended starts on a line of its own.
    let text = std::fs::read(&path).unwrap();
    let unreadable = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty() && serde_json::from_slice::<Value>(l).is_err())
        .count();
    assert_eq!(unreadable, 2, "only the two damaged lines");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bom_is_stripped_and_a_non_utf8_line_is_skipped_by_number_with_exit_1() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let mut input = "\u{feff}{\"prompt\": \"a cat\"}\n{\"prompt\": \"a dog\"}\n"
        .as_bytes()
        .to_vec();
    input.extend_from_slice(b"{\"prompt\": \"caf\xff\"}\n{\"prompt\": \"a cow\"}\n");
    write(&dir.path().join("in.txt"), &input);
    let output = run(dir.path(), &server, batch_args("in.txt", &["--json"])).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let summary = json(&output);
    assert_eq!(summary["jobs"], 3, "{summary}");
    assert_eq!(skipped_lines(&summary), [3]);
    assert!(
        stderr(&output).contains("in.txt:3: skipped"),
        "{}",
        stderr(&output)
    );
    let bodies: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies.iter().all(|b| !b.contains("\\\"prompt\\\"")),
        "a JSON line was sent as a prompt: {bodies:?}"
    );
    assert!(bodies.iter().any(|b| b.contains("a cat")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_skipped_line_makes_the_exit_code_1_even_when_every_job_succeeds() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("in.jsonl"),
        b"{\"prompt\": \"a cat\"}\n{\"prompt\": \"oops\"\n",
    );
    let output = run(dir.path(), &server, batch_args("in.jsonl", &[])).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("skipped"), "{}", stderr(&output));
    assert_eq!(images_in(&dir.path().join("out")).len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn out_at_an_existing_file_says_it_must_be_a_directory() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("in.txt"), b"one\n");
    write(&dir.path().join("out"), b"a file");
    let output = run(dir.path(), &server, batch_args("in.txt", &[])).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("--out") && err.contains("must be a directory"),
        "{err}"
    );
    assert_eq!(requests(&server).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn image_files_follow_the_umask() {
    let server = server(Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("in.txt"), b"one\n");
    let mut cmd = command(dir.path(), &server);
    cmd.arg0_umask(0o022, &batch_args("in.txt", &[]));
    let output = finish(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let image = &images_in(&dir.path().join("out"))[0];
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(image).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "{mode:o}");
}

/// Runs the binary under `sh -c 'umask U; exec imagegate ARGS'`.
trait Umask {
    fn arg0_umask(&mut self, umask: u32, args: &[String]) -> &mut Self;
}

impl Umask for std::process::Command {
    fn arg0_umask(&mut self, umask: u32, args: &[String]) -> &mut Self {
        // Rebuild as a shell command with the same environment and directory.
        let program = self.get_program().to_owned();
        let mut shell = std::process::Command::new("sh");
        shell
            .arg("-c")
            .arg(format!("umask {umask:03o}; exec \"$0\" \"$@\""))
            .arg(program)
            .args(args);
        for (name, value) in self.get_envs() {
            match value {
                Some(value) => shell.env(name, value),
                None => shell.env_remove(name),
            };
        }
        if let Some(dir) = self.get_current_dir() {
            shell.current_dir(dir);
        }
        *self = shell;
        self
    }
}

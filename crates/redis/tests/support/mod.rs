//! A real `redis-server` per test: a free loopback port, a temporary directory, no
//! persistence, stopped when dropped. Where `redis-server` is not installed the tests that need
//! it are skipped with a printed reason, unless `IMAGEGATE_REQUIRE_REDIS=1` (CI sets it), which
//! makes a missing server a failure.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The server binary: `IMAGEGATE_REDIS_SERVER`, else `redis-server` on the PATH.
fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("IMAGEGATE_REDIS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
}

/// A running server; killed and its directory removed on drop.
pub(crate) struct RedisServer {
    binary: PathBuf,
    dir: TempDir,
    pub(crate) port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server, or `None` (with the reason printed) when `redis-server` is missing
    /// and `IMAGEGATE_REQUIRE_REDIS` is not `1`.
    pub(crate) fn start() -> Option<RedisServer> {
        let Some(binary) = binary() else {
            let reason = "redis-server is not installed (Debian: apt-get install redis-server)";
            if std::env::var("IMAGEGATE_REQUIRE_REDIS").as_deref() == Ok("1") {
                panic!("IMAGEGATE_REQUIRE_REDIS=1 but {reason}");
            }
            eprintln!("SKIPPED: {reason}");
            return None;
        };
        let mut dir = tempfile::tempdir().unwrap();
        // A port the kernel just handed out and we let go of; a clash with another process
        // in between shows as a server that does not start, and we try another.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut server = RedisServer {
                binary: binary.clone(),
                dir,
                port,
                child: None,
            };
            if server.spawn() {
                return Some(server);
            }
            dir = server.take_dir();
        }
        panic!("redis-server did not start on any of five free ports");
    }

    fn take_dir(self) -> TempDir {
        let mut me = self;
        me.kill();
        std::mem::replace(&mut me.dir, tempfile::tempdir().unwrap())
    }

    /// Starts the process on `self.port`; true once it accepts connections.
    fn spawn(&mut self) -> bool {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = &mut self.child
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL: no goodbye to clients) and waits for it to go.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty (nothing was persisted).
    pub(crate) fn restart(&mut self) {
        self.kill();
        assert!(self.spawn(), "redis-server restarts on port {}", self.port);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

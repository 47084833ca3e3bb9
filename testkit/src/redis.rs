//! A `redis-server` of the test's own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::tools::{self, Tool};

/// Whether `redis-server` is installed; when it is not, the test kit's one rule applies
/// ([`tools::require`]: fails in CI with the install command, else a visible skip naming
/// `what`, the tests that would have run).
pub fn have_redis(what: &str) -> bool {
    tools::require(what, &[Tool::RedisServer])
}

/// A free loopback TCP port (bound, read and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a loopback port")
        .local_addr()
        .expect("local address")
        .port()
}

/// A redis-server of our own on a free loopback port in a temporary directory; killed (and its
/// directory removed) when dropped.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    append_only: bool,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one with an append-only file (`appendfsync always`) and no RDB snapshots, in
    /// `<tmp>/<prefix>-<pid>-<n>`, and waits (up to 10 s) until it answers `PING`.
    pub fn start(prefix: &str) -> RedisServer {
        RedisServer::start_with(prefix, true)
    }

    /// As [`RedisServer::start`]; without the append-only file when `append_only` is false.
    pub fn start_with(prefix: &str, append_only: bool) -> RedisServer {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the redis-server directory");
        let mut r = RedisServer {
            port: free_port(),
            dir,
            append_only,
            child: None,
        };
        r.spawn();
        r
    }

    /// Starts redis-server on this port and directory (again, after [`RedisServer::stop`]: it
    /// loads what it saved there), and waits (up to 10 s) until it answers `PING`.
    pub fn spawn(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--save", ""]);
        if self.append_only {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .args(["--logfile", "redis.log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (install Debian's redis-server package)");
        self.child = Some(child);
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if self.ping() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Whether it answers `PING` with `+PONG` (within 500 ms).
    pub fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 16];
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .is_ok_and(|n| buf[..n].starts_with(b"+PONG"))
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory (removed when dropped).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it with `SHUTDOWN` (or `SHUTDOWN SAVE` when `save`, writing its data to the
    /// directory first) and waits up to 10 s for it to exit; kills it after that. True when it
    /// exited by itself in time (or was not running).
    pub fn stop(&mut self, save: bool) -> bool {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let command: &[u8] = if save {
                b"SHUTDOWN SAVE\r\n"
            } else {
                b"SHUTDOWN\r\n"
            };
            let _ = s.write_all(command);
        }
        let Some(mut c) = self.child.take() else {
            return true;
        };
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if c.try_wait().expect("wait for redis-server").is_some() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        false
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An app's process (a binary of the crate under test) on a backplane: started with
/// `ADDR=127.0.0.1:0`, `BACKPLANE=<redis url>` and a temporary directory of its own as
/// `TMPDIR`; killed (and its directory removed) when dropped.
#[derive(Debug)]
pub struct AppNode {
    child: Child,
    addr: std::net::SocketAddr,
    data: PathBuf,
}

impl AppNode {
    /// Starts `exe` (from `env!("CARGO_BIN_EXE_<name>")`) on `redis`, and reads the address
    /// it listens on from its first line of output, `<banner>http://ADDR/` (such as
    /// `video app on http://127.0.0.1:1234/`). `name` tells nodes apart.
    pub fn start(exe: &str, banner: &str, redis: &RedisServer, name: &str) -> AppNode {
        let data = std::env::temp_dir().join(format!(
            "sse-app-node-{}-{}-{name}",
            std::process::id(),
            Path::new(exe)
                .file_name()
                .map_or_else(|| "app".into(), |n| n.to_string_lossy())
        ));
        let _ = std::fs::create_dir_all(&data);
        let mut child = Command::new(exe)
            .env("ADDR", "127.0.0.1:0")
            .env("BACKPLANE", redis.url())
            .env("TMPDIR", &data)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {exe}: {e}"));
        let mut out = BufReader::new(child.stdout.take().expect("the app's stdout"));
        let mut line = String::new();
        out.read_line(&mut line).expect("the app's first line");
        // Keep reading what the app prints, so that its stdout never breaks.
        thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        let addr = line
            .trim()
            .strip_prefix(&format!("{banner}http://"))
            .and_then(|a| a.strip_suffix('/'))
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("a socket address");
        AppNode { child, addr, data }
    }

    /// `http://ADDR<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for AppNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

//! Shared test harness: a sandbox folder, the real `thumbgen` binary running in it, a minimal
//! HTTP client and a generator of synthetic product photos with exact masks.
#![allow(dead_code)]

pub mod catalog;
pub mod corpus;
pub mod gradio;
pub mod nats;
pub mod s3;
pub mod synth;
pub mod system;
pub mod web;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_thumbgen");

/// A base folder in a temporary directory.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox { dir: tempfile::tempdir().expect("temp dir") }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn products(&self) -> PathBuf {
        self.path("produtos")
    }

    pub fn backgrounds(&self) -> PathBuf {
        self.path("backgrounds")
    }

    pub fn output(&self) -> PathBuf {
        self.path("thumbnails-prontas")
    }

    pub fn rejected(&self) -> PathBuf {
        self.path("rejeitados")
    }

    /// Names of the regular files in a folder, sorted.
    pub fn files(&self, rel: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.path(rel))
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Puts a file into a folder the way a careful uploader does: written aside, renamed in.
    pub fn drop_file(&self, rel_dir: &str, name: &str, bytes: &[u8]) {
        let dir = self.path(rel_dir);
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(format!(".{name}.part"));
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(&tmp, dir.join(name)).unwrap();
    }

    /// Runs `thumbgen` with `args` in the sandbox to completion.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args).current_dir(self.dir.path());
        clean_env(&mut cmd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("thumbgen runs")
    }

    /// Starts the daemon with a free port; it is killed when the returned value drops.
    pub fn start(&self, env: &[(&str, &str)]) -> Daemon {
        let daemon = self.spawn(env);
        daemon.wait_ready();
        daemon
    }

    /// Starts the daemon with a free port without waiting for it to be ready (see
    /// [`Daemon::is_ready`], [`Daemon::wait_ready`]).
    pub fn spawn(&self, env: &[(&str, &str)]) -> Daemon {
        self.spawn_with(&[], env)
    }

    /// [`Sandbox::spawn`] with more command-line arguments after `run`.
    pub fn spawn_with(&self, args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let (mut cmd, port, log) = self.daemon_command(Path::new(BIN), env);
        let child = cmd.args(args).spawn().expect("daemon starts");
        Daemon { child: Some(child), port, log }
    }

    /// `thumbgen run` in this sandbox on a free port, with its console going to a log file.
    pub fn daemon_command(&self, program: &Path, env: &[(&str, &str)]) -> (Command, u16, PathBuf) {
        let port = free_port();
        let log = self.dir.path().join(format!("daemon-{port}.log"));
        let mut cmd = Command::new(program);
        cmd.arg("run").current_dir(self.dir.path());
        clean_env(&mut cmd);
        cmd.env("PORT", port.to_string()).env("LOG_LEVEL", "debug").env("RESCAN_INTERVAL", "3600");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
        (cmd, port, log)
    }
}

/// Variables the daemon reads besides its settings: log filtering and systemd's notify socket.
pub const PROCESS_KEYS: &[&str] = &["RUST_LOG", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"];

/// Removes every setting the crate knows (and the process variables above) from the surrounding
/// environment, so a developer's exported `NATS_URL` or `GRADIO_API_URL` never changes the mode
/// a test runs in: every test starts from the defaults.
pub fn clean_env(cmd: &mut Command) {
    for key in thumbgen::ENV_KEYS.iter().chain(PROCESS_KEYS) {
        cmd.env_remove(key);
    }
}

/// A server binary from the test virtualenv (`scripts/setup-test-env`), or where `env_var` says.
pub fn venv_tool(env_var: &str, name: &str) -> PathBuf {
    let path = std::env::var_os(env_var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/test/bin").join(name));
    assert!(path.exists(), "{} is missing: run scripts/setup-test-env", path.display());
    path
}

/// A server process the tests started: killed (SIGKILL, as if its machine went away) when
/// stopped or dropped.
#[derive(Default)]
pub struct ServerProcess(Option<Child>);

impl ServerProcess {
    pub fn new(child: Child) -> ServerProcess {
        ServerProcess(Some(child))
    }

    /// Whether the process ended by itself (or was never started).
    pub fn exited(&mut self) -> bool {
        self.0.as_mut().is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    pub log: PathBuf,
}

impl Daemon {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.port, path).unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", self.log_text()))
    }

    pub fn wait_ready(&self) {
        let ok = wait_until(Duration::from_secs(120), || self.is_ready());
        assert!(ok, "daemon not ready in time:\n{}", self.log_text());
    }

    /// Whether `/health/ready` answers 200 right now.
    pub fn is_ready(&self) -> bool {
        matches!(http_get(self.port, "/health/ready"), Ok((200, _)))
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The value of a metric series (exact name with labels), 0 when absent.
    pub fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "daemon did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the process has ended by itself.
    pub fn exited(&mut self) -> bool {
        self.child.as_mut().is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Kills the daemon with SIGKILL, as a crash would.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `f` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// A plain HTTP/1.1 GET on loopback: status and body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let reply = web::request(port, "GET", path, &[], b"")?;
    Ok((reply.status, reply.text()))
}

/// Decodes an output file fully (fails on a partial file).
pub fn decode(path: &Path) -> image::RgbImage {
    image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8()
}

/// Bounding box (x0, y0, x1, y1 inclusive) of the pixels that differ from white by more than `tol`.
pub fn non_white_bbox(img: &image::RgbImage, tol: u8) -> Option<(u32, u32, u32, u32)> {
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    for (x, y, p) in img.enumerate_pixels() {
        if p.0.iter().any(|&c| c < 255 - tol) {
            bbox = Some(match bbox {
                None => (x, y, x, y),
                Some((a, b, c, d)) => (a.min(x), b.min(y), c.max(x), d.max(y)),
            });
        }
    }
    bbox
}

/// Parses `/metrics` with the reference Prometheus parser (prometheus_client, from PyPI).
pub fn parse_metrics(text: &str) -> serde_json::Value {
    let python = std::env::var("THUMBGEN_TEST_PYTHON").unwrap_or_else(|_| ".venv/test/bin/python".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/parse_metrics.py");
    let mut child = Command::new(&python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{python}: {e} (run scripts/setup-test-env)"));
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the Prometheus parser refused /metrics: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Metric names a PromQL text uses (`thumbgen_*`, `process_*`), each with the label names its
/// selector matches on.
pub fn queried_metrics(text: &str) -> std::collections::BTreeSet<(String, Vec<String>)> {
    let bytes = text.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found = std::collections::BTreeSet::new();
    let mut i = 0;
    while i < bytes.len() {
        if !text.is_char_boundary(i) {
            i += 1; // inside a character of prose (a panel's description)
            continue;
        }
        let starts_name = (i == 0 || !ident(bytes[i - 1]))
            && (text[i..].starts_with("thumbgen_") || text[i..].starts_with("process_"));
        if !starts_name {
            i += 1;
            continue;
        }
        let end = (i..bytes.len()).find(|&j| !ident(bytes[j])).unwrap_or(bytes.len());
        let mut labels = Vec::new();
        if bytes.get(end) == Some(&b'{') {
            let close = end + text[end..].find('}').expect("selector closed");
            for matcher in text[end + 1..close].split(',') {
                let key: String =
                    matcher.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                labels.push(key);
            }
        }
        found.insert((text[i..end].to_owned(), labels));
        i = end;
    }
    found
}

/// Series only a node whose catalog is in a bucket exports.
pub fn is_storage_series(name: &str) -> bool {
    name.starts_with("thumbgen_storage_") || name.starts_with("thumbgen_discovery_")
}

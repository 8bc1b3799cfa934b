//! Real Gradio servers for the tests: `tests/gradio/app.py` run by a venv of `scripts/setup-gradio-env`
//! (gradio 4.x, 5.x, 6.x), optionally behind `tests/gradio/fault_proxy.py`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The gradio major versions the suite runs against.
pub const VERSIONS: [&str; 3] = ["4", "5", "6"];

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn python(version: &str) -> PathBuf {
    let python = repo(&format!(".venv/gradio{version}/bin/python"));
    assert!(python.exists(), "{} is missing: run scripts/setup-gradio-env", python.display());
    python
}

/// Starts `cmd` and waits for it to print `READY <port>`.
fn spawn_ready(mut cmd: Command, what: &str, log: &std::path::Path) -> Child {
    let stderr = std::fs::File::create(log).unwrap();
    let mut child = cmd.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.starts_with("READY") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(300)).is_err() {
        let _ = child.kill();
        panic!("{what} did not start:\n{}", std::fs::read_to_string(log).unwrap_or_default());
    }
    child
}

/// A running Gradio app of one kind; counts the calls of its removal function in a file.
pub struct GradioApp {
    child: Option<Child>,
    pub port: u16,
    version: String,
    kind: String,
    options: Vec<String>,
    dir: tempfile::TempDir,
}

impl GradioApp {
    pub fn start(version: &str, kind: &str, options: &[&str]) -> GradioApp {
        GradioApp::start_on(version, kind, options, super::free_port())
    }

    /// Starts the app on a given port (to bring up a server a daemon already points at).
    pub fn start_on(version: &str, kind: &str, options: &[&str], port: u16) -> GradioApp {
        let mut app = GradioApp {
            child: None,
            port,
            version: version.into(),
            kind: kind.into(),
            options: options.iter().map(|o| o.to_string()).collect(),
            dir: tempfile::tempdir().unwrap(),
        };
        app.launch();
        app
    }

    fn launch(&mut self) {
        let mut cmd = Command::new(python(&self.version));
        cmd.arg(repo("tests/gradio/app.py"))
            .args(["--kind", &self.kind, "--port", &self.port.to_string()])
            .arg("--calls")
            .arg(self.calls_file())
            .args(&self.options)
            .env("GRADIO_ANALYTICS_ENABLED", "False")
            .env("HOME", self.dir.path())
            .env("GRADIO_TEMP_DIR", self.dir.path().join("gradio-tmp"))
            .env_remove("HF_TOKEN");
        let log = self.dir.path().join(format!("app-{}.log", self.port));
        self.child = Some(spawn_ready(cmd, &format!("gradio {} app {}", self.version, self.kind), &log));
    }

    fn calls_file(&self) -> PathBuf {
        self.dir.path().join("calls.txt")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many times the removal function was entered.
    pub fn calls(&self) -> usize {
        std::fs::read_to_string(self.calls_file()).map_or(0, |t| t.lines().count())
    }

    /// The lines of the calls file, one per call of the removal function
    /// (`N kind=K endpoint=E pid=P t=T[ mark=R,G,B]`).
    pub fn call_lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.calls_file())
            .map_or_else(|_| Vec::new(), |t| t.lines().map(str::to_owned).collect())
    }

    /// Jobs waiting in the app's queue (not counting the one running), from `queue/status`;
    /// `None` when the app does not answer.
    pub fn queue_size(&self) -> Option<u64> {
        ["/gradio_api/queue/status", "/queue/status"].iter().find_map(|path| match super::http_get(self.port, path) {
            Ok((200, body)) => serde_json::from_str::<serde_json::Value>(&body).ok()?["queue_size"].as_u64(),
            _ => None,
        })
    }

    /// Kills the server as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the same app again on the same port (the call count is kept).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for GradioApp {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The fault-injecting proxy in front of an app.
pub struct FaultProxy {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl FaultProxy {
    pub fn start(target: &str, plan: &str) -> FaultProxy {
        let dir = tempfile::tempdir().unwrap();
        let port = super::free_port();
        let mut cmd = Command::new(python("6"));
        cmd.arg(repo("tests/gradio/fault_proxy.py"))
            .args(["--listen", &port.to_string(), "--target", target, "--plan", plan])
            .arg("--log")
            .arg(dir.path().join("requests.log"));
        let child = spawn_ready(cmd, "fault proxy", &dir.path().join("proxy.log"));
        FaultProxy { child, port, dir }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests it has seen so far, one `METHOD PATH -> STATUS[ NOTE]` line each.
    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

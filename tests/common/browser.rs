//! (Included by `tests/console_browser.rs` only, so other tests do not link the WebDriver client.)
//!
//! A real headless Chromium (Debian's `chromium` and `chromium-driver`), driven over WebDriver
//! with fantoccini: a fresh profile each time, downloads into a folder of the test's, and
//! screenshots saved as test artefacts under `target/test-artifacts/console/`.

use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    pub downloads: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; `dark` asks the system for a dark
    /// colour scheme.
    pub async fn start(width: u32, height: u32, dark: bool) -> Browser {
        for program in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                Path::new(program).exists(),
                "{program} is missing: apt-get install chromium chromium-driver (.ci/run installs them)"
            );
        }
        let port = crate::common::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let up = crate::common::wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "chromedriver did not listen on {port}");
        let profile = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        if dark {
            args.push("--force-dark-mode".into());
            args.push("--blink-settings=preferredColorScheme=0".into());
        }
        let options = json!({
            "binary": CHROMIUM,
            "args": args,
            "prefs": {
                "download.default_directory": downloads.path(),
                "download.prompt_for_download": false,
            },
        });
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a WebDriver session");
        Browser { client, driver, _profile: profile, downloads }
    }

    /// Runs `expression` (JavaScript) until it is true, or fails after `timeout` with `what`.
    pub async fn wait_for(&self, expression: &str, timeout: Duration, what: &str) {
        let script = format!("return !!({expression});");
        let deadline = Instant::now() + timeout;
        loop {
            if self.client.execute(&script, vec![]).await.ok().and_then(|v| v.as_bool()) == Some(true) {
                return;
            }
            if Instant::now() > deadline {
                let page = self.eval("document.body.innerText").await;
                panic!("timed out waiting for {what} ({expression})\npage text:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// The value of a JavaScript expression.
    pub async fn eval(&self, expression: &str) -> serde_json::Value {
        self.client.execute(&format!("return {expression};"), vec![]).await.expect("script runs")
    }

    /// Saves a screenshot as `target/test-artifacts/console/<name>.png`; returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/console");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.client.screenshot().await.expect("a screenshot")).unwrap();
        path
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        // SIGTERM lets chromedriver end the browser it started.
        unsafe { libc::kill(self.driver.id() as i32, libc::SIGTERM) };
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if matches!(self.driver.try_wait(), Ok(None)) {
            self.stop_driver();
        }
    }
}

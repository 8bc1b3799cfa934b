//! Hostile environments for the daemon: FIFOs, tmpfs mounts (full or read-only), an unprivileged
//! daemon for files it may not read, and the JSON lines of `app.log`.

use super::{Daemon, Sandbox};
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The uid and gid an unprivileged daemon runs as (`nobody`).
pub const NOBODY: u32 = 65534;

fn c_path(path: &Path) -> std::ffi::CString {
    std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap()
}

/// Makes a named pipe.
pub fn mkfifo(path: &Path) {
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c_path(path).as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}: {}", path.display(), std::io::Error::last_os_error());
}

pub fn is_root() -> bool {
    // SAFETY: no arguments, no failure.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs mounted for the life of the value; unmounted (lazily, should a file still be open)
/// when it drops.
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs with `options` (e.g. `size=3m`, `ro`) on `path`, which must exist. `None`
    /// (with the reason on stderr) when mounting is not allowed here.
    pub fn mount(path: &Path, options: &str) -> Option<Tmpfs> {
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", options, "tmpfs"]).arg(path).output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { path: path.to_owned() }),
            Ok(out) => {
                eprintln!("cannot mount a tmpfs on {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
                None
            }
            Err(e) => {
                eprintln!("cannot run mount: {e}");
                None
            }
        }
    }

    /// Fills the filesystem with `filler` until no byte is left; returns the file's size.
    pub fn fill(&self, filler: &str) -> u64 {
        use std::io::Write;
        let mut file = std::fs::File::create(self.path.join(filler)).unwrap();
        let block = vec![0x5Au8; 64 * 1024];
        let mut written = 0u64;
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", self.path.display()),
            }
        }
        // The last partial block: byte by byte would be slow, so shrink the block.
        let mut small = vec![0x5Au8; 512];
        while !small.is_empty() {
            match file.write(&small) {
                Ok(n) if n > 0 => written += n as u64,
                _ => {
                    small.truncate(small.len() / 2);
                }
            }
        }
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Gives a whole tree to `uid`:`gid`.
pub fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if std::fs::symlink_metadata(path).unwrap().is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            chown_tree(&entry.unwrap().path(), uid, gid);
        }
    }
}

impl Sandbox {
    /// Starts the daemon as an unprivileged user, as it runs in production (systemd, Docker),
    /// so that file permissions apply to it: when the tests run as root, the sandbox is given to
    /// `nobody` and the daemon runs as `nobody`; otherwise it runs as the current user.
    pub fn start_unprivileged(&self, env: &[(&str, &str)]) -> Daemon {
        // A copy inside the sandbox: the checkout's own path may not be open to `nobody`.
        let program = self.path("bin/thumbgen");
        std::fs::create_dir_all(self.path("bin")).unwrap();
        std::fs::copy(super::BIN, &program).expect("copy of the binary");
        // With it the onnxruntime library it loads from beside itself, when the build made one.
        let library = Path::new(super::BIN).with_file_name("libonnxruntime.so.1.32.0");
        if library.is_file() {
            std::fs::copy(&library, self.path("bin/libonnxruntime.so.1.32.0")).expect("copy of the library");
        }
        let (mut cmd, port, log) = self.daemon_command(&program, env);
        if is_root() {
            chown_tree(self.dir.path(), NOBODY, NOBODY);
            cmd.uid(NOBODY).gid(NOBODY).env("HOME", "/nonexistent");
        }
        let child = cmd.spawn().expect("daemon starts");
        let daemon = Daemon { child: Some(child), port, log };
        daemon.wait_ready();
        daemon
    }

    /// The JSON records of `logs/app.log` (lines that are not JSON are a failure).
    pub fn app_log(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(self.path("logs/app.log")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("app.log line is not JSON ({e}): {l}")))
            .collect()
    }
}

impl Daemon {
    /// `/health` as JSON, with its HTTP status.
    pub fn health(&self) -> (u16, Value) {
        let (status, body) = self.get("/health");
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
    }

    /// True while the process has not exited.
    pub fn alive(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

//! Logging: a readable console and JSON lines in `LOG_PATH/app.log`, rotated by size.
//!
//! The file log never stops the daemon: when its folder cannot be written, at start or later (a
//! full disk), thumbgen says so on the console and carries on with console logging alone; a line
//! that could not be written whole is taken back, so `app.log` stays valid JSON lines.

use crate::config::{Config, LogFormat, LogLevel};
use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer, Registry};

/// `app.log` is rotated to `app.log.1` … at this size; this many old files are kept.
const ROTATE_BYTES: u64 = 10 * 1024 * 1024;
const KEEP_FILES: usize = 5;

/// Keeps the log writer alive and lets SIGHUP change the level.
pub(crate) struct Logging {
    _file_guard: Option<tracing_appender::non_blocking::WorkerGuard>,
    filter: reload::Handle<EnvFilter, Registry>,
}

fn filter_for(level: LogLevel) -> EnvFilter {
    // RUST_LOG, when set, wins: it is how developers ask for a module's debug output.
    EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(format!("warn,thumbgen={}", level.as_str())))
}

impl Logging {
    /// Installs the global subscriber. Returns the file problem, if any, to be logged once ready.
    pub(crate) fn init(config: &Config) -> (Logging, Option<String>) {
        let (filter, handle) = reload::Layer::new(filter_for(config.log_level));
        // Colours only on a terminal: journald, `docker logs` and files get plain text.
        let ansi = io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let console = match config.log_format {
            LogFormat::Text => {
                tracing_subscriber::fmt::layer().with_writer(io::stderr).with_target(false).with_ansi(ansi).boxed()
            }
            LogFormat::Json => {
                tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(io::stderr).boxed()
            }
        };
        // Nodes of a cluster share the folder: each keeps its own log (rotation is per file).
        let dir = match config.nats_servers() {
            Some(_) => config.resolve(&config.log_path).join(config.node()),
            None => config.resolve(&config.log_path),
        };
        let (file_layer, guard, problem) = match RotatingFile::open(&dir) {
            Ok(file) => {
                let (writer, guard) = tracing_appender::non_blocking(file);
                let layer = tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(writer).boxed();
                (Some(layer), Some(guard), None)
            }
            Err(e) => {
                (None, None, Some(format!("cannot write {}/app.log ({e}); logging to the console only", dir.display())))
            }
        };
        let _ = tracing_subscriber::registry().with(filter).with(console).with(file_layer).try_init();
        (Logging { _file_guard: guard, filter: handle }, problem)
    }

    /// Warnings and errors on the console only, no file: for one-shot commands that must leave
    /// no folder behind.
    pub(crate) fn init_console_warnings() {
        let _ = tracing_subscriber::fmt()
            .with_writer(io::stderr)
            .with_target(false)
            .with_max_level(tracing::Level::WARN)
            .try_init();
    }

    /// Applies a new `LOG_LEVEL` (on SIGHUP).
    pub(crate) fn set_level(&self, level: LogLevel) {
        let _ = self.filter.reload(filter_for(level));
    }
}

/// `app.log`, renamed to `app.log.1` (and older ones shifted) when it grows past [`ROTATE_BYTES`].
struct RotatingFile {
    path: PathBuf,
    inner: Arc<Mutex<(fs::File, u64)>>,
    /// Whether the last write failed: the console hears once when writing stops working and once
    /// when it works again.
    failing: bool,
}

impl RotatingFile {
    fn open(dir: &Path) -> io::Result<RotatingFile> {
        fs::create_dir_all(dir)?;
        let path = dir.join("app.log");
        let file = fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let len = file.metadata()?.len();
        Ok(RotatingFile { path, inner: Arc::new(Mutex::new((file, len))), failing: false })
    }

    fn rotate(&self) -> io::Result<fs::File> {
        for n in (1..KEEP_FILES).rev() {
            let _ = fs::rename(
                self.path.with_extension(format!("log.{n}")),
                self.path.with_extension(format!("log.{}", n + 1)),
            );
        }
        fs::rename(&self.path, self.path.with_extension("log.1"))?;
        fs::OpenOptions::new().create(true).append(true).open(&self.path)
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if guard.1 + buf.len() as u64 > ROTATE_BYTES {
            if let Ok(file) = self.rotate() {
                *guard = (file, 0);
            }
        }
        // One call is one log line: written whole, or not at all.
        let mut written = 0;
        let result = loop {
            match guard.0.write(&buf[written..]) {
                Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
            if written == buf.len() {
                break Ok(());
            }
        };
        match result {
            Ok(()) => {
                guard.1 += written as u64;
                if std::mem::take(&mut self.failing) {
                    eprintln!("thumbgen: {} can be written again; file logging resumed", self.path.display());
                }
                Ok(written)
            }
            Err(e) => {
                if written > 0 {
                    if let Ok(len) = guard.0.metadata().map(|m| m.len()) {
                        let _ = guard.0.set_len(len.saturating_sub(written as u64));
                    }
                }
                if !std::mem::replace(&mut self.failing, true) {
                    eprintln!(
                        "thumbgen: cannot write {} ({e}); logging to the console only until it can be written again",
                        self.path.display()
                    );
                }
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0.flush()
    }
}

/// The current UTC time as RFC 3339 (`2026-11-29T10:04:05Z`), for notes written to users.
pub(crate) fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        let now = utc_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.starts_with("20") && now.ends_with('Z'));
    }

    #[test]
    fn the_log_rotates_and_keeps_writing() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = RotatingFile::open(dir.path()).unwrap();
        let line = vec![b'x'; 1024 * 1024];
        for _ in 0..12 {
            file.write_all(&line).unwrap();
        }
        assert!(dir.path().join("app.log.1").exists());
        assert!(fs::metadata(dir.path().join("app.log")).unwrap().len() <= ROTATE_BYTES);
    }
}

//! systemd integration (`Type=notify`): READY=1 once the daemon is ready, STOPPING=1 when it
//! stops, and watchdog pings that only continue while the pipeline makes progress, so a stuck
//! pipeline gets restarted by systemd. Without `NOTIFY_SOCKET` (not under systemd) all of this
//! is a no-op.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Sends one notification (e.g. `READY=1`) to the service manager; false when there is none.
pub(crate) fn notify(state: &str) -> bool {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return false };
    let path = path.to_string_lossy().into_owned();
    let address = match path.strip_prefix('@') {
        // An abstract socket name.
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())
        }
        None => SocketAddr::from_pathname(&path),
    };
    let Ok(address) = address else { return false };
    UnixDatagram::unbound().and_then(|socket| socket.send_to_addr(state.as_bytes(), &address)).is_ok()
}

/// How often to ping the watchdog: half of `WATCHDOG_USEC`, when it is meant for this process.
pub(crate) fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok()) {
        if pid != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

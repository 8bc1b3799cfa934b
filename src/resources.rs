//! Resources: CPU, memory and this process's RSS, sampled in the background every few seconds
//! (CPU usage needs two samples), so a health request never waits for them.

use crate::shutdown::Shutdown;
use crate::sync::Mutex;
use std::sync::Arc;
use std::time::Duration;

const EVERY: Duration = Duration::from_secs(5);

/// The latest figures.
#[derive(Clone, Debug, Default)]
pub(crate) struct Figures {
    pub cpu_percent: f64,
    pub memory_percent: f64,
    pub rss_bytes: u64,
    pub rss_percent: f64,
    pub sampled: bool,
}

#[derive(Default)]
pub(crate) struct Resources(Mutex<Figures>);

impl Resources {
    pub(crate) fn latest(&self) -> Figures {
        self.0.lock().clone()
    }

    /// Samples until shutdown.
    pub(crate) async fn sample(self: Arc<Self>, shutdown: Shutdown) {
        use sysinfo::{MemoryRefreshKind, ProcessRefreshKind, ProcessesToUpdate, RefreshKind, System};
        let mut system = match System::new_with_specifics(RefreshKind::nothing()) {
            Ok(system) => system,
            Err(e) => {
                tracing::warn!("resource figures unavailable: {e}");
                return;
            }
        };
        let pid = sysinfo::get_current_pid().ok();
        loop {
            system.refresh_cpu_usage();
            system.refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
            if let Some(pid) = pid {
                system.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    true,
                    ProcessRefreshKind::nothing().with_memory(),
                );
            }
            let limit = system.cgroup_limits().map_or(system.total_memory(), |c| c.total_memory).max(1);
            let used =
                system.cgroup_limits().map_or(system.used_memory(), |c| c.total_memory.saturating_sub(c.free_memory));
            let rss = pid.and_then(|p| system.process(p)).map_or(0, |p| p.memory());
            *self.0.lock() = Figures {
                cpu_percent: system.global_cpu_usage() as f64,
                memory_percent: used as f64 * 100.0 / limit as f64,
                rss_bytes: rss,
                rss_percent: rss as f64 * 100.0 / limit as f64,
                sampled: true,
            };
            if !shutdown.sleep(EVERY).await {
                return;
            }
        }
    }
}

//! The local cut-out cache: `cutouts/<hash>.png` under the state folder, each written
//! atomically. Content-addressed and written once, so a partial or duplicate write is harmless.

use super::{cutout_from_png, cutout_png, CutoutCache, Reservation, Reservations};
use crate::cutout::Cutout;
use crate::write::{sync_dir, write_atomic};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub(crate) struct CutoutDir {
    dir: PathBuf,
    /// `CACHE_ENABLED=false`: nothing is kept, every new photo version is cut out again.
    enabled: bool,
    /// Cut-outs being made by this process's workers.
    making: Reservations,
}

impl CutoutDir {
    /// Opens the cache in `dir`; temporary files older than `stale_after` are leftovers.
    pub(crate) fn open(dir: &Path, enabled: bool, stale_after: Duration) -> io::Result<CutoutDir> {
        fs::create_dir_all(dir)?;
        crate::write::remove_stale_temps(dir, stale_after);
        Ok(CutoutDir { dir: dir.to_owned(), enabled, making: Reservations::default() })
    }

    fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}.png"))
    }
}

impl CutoutCache for CutoutDir {
    fn reserve(&self, hash: &str) -> io::Result<Option<Reservation>> {
        Ok(self.making.reserve(hash))
    }

    fn load(&self, hash: &str) -> Option<Cutout> {
        let path = self.path(hash);
        let bytes = fs::read(&path).ok()?;
        let cutout = cutout_from_png(&bytes);
        if cutout.is_none() {
            let _ = fs::remove_file(&path);
        }
        cutout
    }

    fn save(&self, hash: &str, cutout: &Cutout) -> io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        write_atomic(&self.dir, &format!("{hash}.png"), &cutout_png(cutout)?)?;
        sync_dir(&self.dir)
    }

    fn prune(&self, keep: &HashSet<String>, ttl: Duration) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let now = SystemTime::now();
        entries
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let hash = name.trim_end_matches(".png");
                !keep.contains(hash)
                    && e.metadata()
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > ttl)
            })
            .filter(|e| fs::remove_file(e.path()).is_ok())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_cutout_loads_back_and_old_unused_ones_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CutoutDir::open(dir.path(), true, Duration::ZERO).unwrap();
        let cut = Cutout { image: image::RgbaImage::from_pixel(3, 2, image::Rgba([1, 2, 3, 200])) };
        cache.save("h1", &cut).unwrap();
        cache.save("h2", &cut).unwrap();
        assert_eq!(cache.load("h1").unwrap().image, cut.image);
        let keep: HashSet<String> = ["h1".to_string()].into();
        assert_eq!(cache.prune(&keep, Duration::from_secs(3600)), 0, "young entries stay");
        assert_eq!(cache.prune(&keep, Duration::ZERO), 1);
        assert!(cache.load("h2").is_none() && cache.load("h1").is_some());
    }

    #[test]
    fn a_cutout_is_reserved_by_one_worker_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CutoutDir::open(dir.path(), true, Duration::ZERO).unwrap();
        let first = cache.reserve("h").unwrap().expect("free");
        assert!(cache.reserve("h").unwrap().is_none(), "held by the first");
        assert!(cache.reserve("other").unwrap().is_some());
        drop(first);
        assert!(cache.reserve("h").unwrap().is_some(), "released when dropped");
    }

    #[test]
    fn a_damaged_entry_counts_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CutoutDir::open(dir.path(), true, Duration::ZERO).unwrap();
        fs::write(dir.path().join("bad.png"), b"not a png").unwrap();
        assert!(cache.load("bad").is_none());
        assert!(!dir.path().join("bad.png").exists());
    }
}

//! The cut-out cache in the bucket: `.thumbgen/cutouts/<hash>.png` beside the catalog, so a node
//! with no local state (a new pod, an empty `BASE_PATH`) never sends a photo for removal again.
//! Content-addressed and written whole by one PUT, so a duplicate write is harmless; this
//! node's workers reserve a hash one at a time as on disk.

use super::{Bucket, StoreError};
use crate::cutout::Cutout;
use crate::store::{cutout_from_png, cutout_png, CutoutCache, Reservation, Reservations};
use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

const FOLDER: &str = ".thumbgen/cutouts";

pub(crate) struct BucketCutouts {
    bucket: Arc<Bucket>,
    runtime: tokio::runtime::Handle,
    enabled: bool,
    making: Reservations,
}

impl BucketCutouts {
    /// Must be called inside the tokio runtime, whose handle runs every request.
    pub(crate) fn new(bucket: Arc<Bucket>, enabled: bool) -> BucketCutouts {
        BucketCutouts { bucket, runtime: tokio::runtime::Handle::current(), enabled, making: Reservations::default() }
    }

    fn key(&self, hash: &str) -> String {
        self.bucket.key(FOLDER, &format!("{hash}.png"))
    }
}

impl CutoutCache for BucketCutouts {
    fn reserve(&self, hash: &str) -> io::Result<Option<Reservation>> {
        Ok(self.making.reserve(hash))
    }

    fn load(&self, hash: &str) -> Option<Cutout> {
        let key = self.key(hash);
        let (bytes, _) = self.runtime.block_on(self.bucket.get(&key, u64::MAX)).ok()?;
        let cutout = cutout_from_png(&bytes?);
        if cutout.is_none() {
            let _ = self.runtime.block_on(self.bucket.delete(&key, None));
        }
        cutout
    }

    fn save(&self, hash: &str, cutout: &Cutout) -> io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let png = cutout_png(cutout)?;
        self.runtime.block_on(self.bucket.put(&self.key(hash), png, None, false)).map_err(io::Error::from)
    }

    fn prune(&self, keep: &HashSet<String>, ttl: Duration) -> usize {
        let Ok(listed) = self.runtime.block_on(self.bucket.list(FOLDER, None)) else { return 0 };
        let now = chrono::Utc::now();
        let old = listed.into_iter().filter(|l| {
            let hash = l.name.trim_end_matches(".png");
            !keep.contains(hash) && (now - l.modified).to_std().is_ok_and(|age| age > ttl)
        });
        old.filter(|l| {
            let deleted = self.runtime.block_on(self.bucket.delete(&self.bucket.key(FOLDER, &l.name), None));
            matches!(deleted, Ok(()) | Err(StoreError::NotFound))
        })
        .count()
    }
}

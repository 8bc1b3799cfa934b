//! The storage check: every catalog's folders present and writable (with a bucket, only the
//! node's state folder is local), and the free disk of the catalog with the least of it.

use super::{Check, Health, Level, Watched, DISK_CRITICAL, DISK_WARNING};
use crate::disk::free_bytes;
use crate::folders::Folders;
use serde_json::json;

impl Health {
    pub(super) fn storage(&self) -> Check {
        let mut problems = Vec::new();
        let catalogs = self.catalogs.now();
        for catalog in catalogs.iter() {
            let f = &catalog.folders;
            let (inputs, written): (&[_], &[_]) = match &catalog.bucket {
                None => (
                    &[("products", &f.products), ("backgrounds", &f.backgrounds)],
                    &[("output", &f.output), ("rejected", &f.rejected), ("state", &f.state)],
                ),
                Some(_) => (&[], &[("state", &f.state)]),
            };
            for (what, dir) in inputs {
                if !dir.is_dir() {
                    problems.push(format!("{what} folder {} is missing", dir.display()));
                }
            }
            for (what, dir) in written {
                if let Err(e) = Folders::writable(dir) {
                    problems.push(format!("{what} folder {} is not writable: {e}", dir.display()));
                }
            }
        }
        // The catalog with the least free space is the one reported (tenants may be on several
        // disks).
        let local = |c: &Watched| if c.bucket.is_some() { c.folders.state.clone() } else { c.folders.output.clone() };
        let Some((free, watched)) =
            catalogs.iter().map(|c| (free_bytes(&local(c)), c)).min_by_key(|(free, _)| free.unwrap_or(u64::MAX))
        else {
            return Check::new(Level::Ok, "no catalog served", json!({}));
        };
        let (f, bucket) = (&watched.folders, &watched.bucket);
        let mut details = json!({ "output_free_bytes": free, "output_path": f.output.display().to_string() });
        if let Some(url) = bucket {
            details = json!({ "catalog": url, "state_free_bytes": free, "state_path": f.state.display().to_string() });
        }
        if !problems.is_empty() {
            return Check::new(Level::Critical, problems.join("; "), details);
        }
        match free {
            Some(free) if free < DISK_CRITICAL => {
                Check::new(Level::Critical, format!("only {} MiB free for thumbnails", free >> 20), details)
            }
            Some(free) if free < DISK_WARNING => {
                Check::new(Level::Warning, format!("low disk space: {} MiB free for thumbnails", free >> 20), details)
            }
            _ => Check::new(Level::Ok, "folders present and writable", details),
        }
    }
}

//! Listings: what a folder holds, newest first, kept until the folder changes.
//!
//! Listing 10 000 files and reading their stamps takes milliseconds, too much for every poll of
//! every open page. A listing is reused while the folder's own stamp (its modification time
//! changes with every file added, removed or renamed) stays the same, and for at most
//! [`MAX_AGE`], which bounds how long a file rewritten in place keeps its old time in the
//! catalog. The console finds files only through these listings: a name from a request is looked
//! up in them, never joined onto a path unseen.

use crate::disk::FileStamp;
use crate::folders::Folders;
use crate::job::InputKind;
use crate::sync::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest time a listing is reused while its folder's stamp does not change.
const MAX_AGE: Duration = Duration::from_secs(10);

/// An entry of a listing: a name and what is known of it.
pub(super) trait Listed: Send + Sync + 'static {
    fn name(&self) -> &str;
    fn stamp(&self) -> &FileStamp;
}

/// A plain entry: a file name and its stamp.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub name: String,
    pub stamp: FileStamp,
}

impl Listed for Entry {
    fn name(&self) -> &str {
        &self.name
    }

    fn stamp(&self) -> &FileStamp {
        &self.stamp
    }
}

/// One look at a folder: its entries newest first, and where each name is.
pub(super) struct Snapshot<T> {
    pub entries: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T: Listed> Snapshot<T> {
    /// The entry named exactly `name`.
    pub(super) fn find(&self, name: &str) -> Option<&T> {
        self.index.get(name).map(|&i| &self.entries[i])
    }
}

type Lister<T> = Box<dyn Fn(&Path) -> Vec<T> + Send + Sync>;

/// The last look: the folder's stamp then, when it was taken, and what it found.
struct Look<T> {
    folder: Option<FileStamp>,
    at: Instant,
    snapshot: Arc<Snapshot<T>>,
}

pub(super) struct Listing<T = Entry> {
    dir: PathBuf,
    list: Lister<T>,
    cached: Mutex<Option<Look<T>>>,
}

impl Listing<Entry> {
    /// The inputs of a watched folder, as the watcher sees them.
    pub(super) fn inputs(folders: &Folders, kind: InputKind) -> Listing {
        let folders = folders.clone();
        Listing::new(folders.input_dir(kind).to_owned(), move |_| {
            folders.inputs(kind).into_iter().map(|(name, stamp)| Entry { name, stamp }).collect()
        })
    }
}

impl<T: Listed> Listing<T> {
    pub(super) fn new(dir: PathBuf, list: impl Fn(&Path) -> Vec<T> + Send + Sync + 'static) -> Listing<T> {
        Listing { dir, list: Box::new(list), cached: Mutex::new(None) }
    }

    /// The folder now (reusing the last look while the folder is unchanged). Blocking.
    pub(super) fn snapshot(&self) -> Arc<Snapshot<T>> {
        let stamp = FileStamp::look(&self.dir);
        let mut cached = self.cached.lock();
        if let Some(last) = cached.as_ref() {
            if last.folder == stamp && last.at.elapsed() < MAX_AGE {
                return last.snapshot.clone();
            }
        }
        let snapshot = Arc::new(self.look());
        *cached = Some(Look { folder: stamp, at: Instant::now(), snapshot: snapshot.clone() });
        snapshot
    }

    /// A new look at the folder, for actions that must see it as it is.
    pub(super) fn fresh(&self) -> Arc<Snapshot<T>> {
        *self.cached.lock() = None;
        self.snapshot()
    }

    fn look(&self) -> Snapshot<T> {
        let mut entries = (self.list)(&self.dir);
        entries.sort_by(|a, b| b.stamp().mtime_ns.cmp(&a.stamp().mtime_ns).then_with(|| a.name().cmp(b.name())));
        let index = entries.iter().enumerate().map(|(i, e)| (e.name().to_owned(), i)).collect();
        Snapshot { entries, index }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{backdate, Base};

    #[test]
    fn a_listing_is_newest_first_and_follows_the_folder() {
        let base = Base::new();
        let listing = Listing::inputs(&base.folders, InputKind::Product);
        base.put("produtos", "old.png", b"x"); // a minute old
        std::fs::write(base.folders.products.join("new.png"), b"x").unwrap();
        let names = |s: &Snapshot<Entry>| s.entries.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&listing.snapshot()), ["new.png", "old.png"]);
        std::fs::write(base.folders.products.join("newer.png"), b"x").unwrap();
        let now = listing.snapshot();
        assert_eq!(now.entries.len(), 3, "a file added is seen at once");
        assert_eq!(names(&now).last().map(String::as_str), Some("old.png"));
        assert!(now.find("old.png").is_some() && now.find("../produtos/old.png").is_none());
        backdate(&base.folders.products.join("old.png"));
        std::thread::sleep(Duration::from_millis(5));
        backdate(&base.folders.products.join("newer.png"));
        assert_eq!(names(&listing.fresh()), ["new.png", "newer.png", "old.png"]);
    }
}

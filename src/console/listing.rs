//! Listings: what a folder holds, newest first, kept until the folder changes.
//!
//! Listing 10 000 files and reading their stamps takes milliseconds on disk (and ten requests in
//! a bucket), too much for every poll of every open page. A listing is reused while the folder's
//! own stamp (its modification time changes with every file added, removed or renamed) stays the
//! same, and for at most [`MAX_AGE`], which bounds how long a file rewritten in place keeps its
//! old time in the catalog; a bucket has no such stamp, so its listings are reused for
//! [`UNSTAMPED_MAX_AGE`] (and dropped at once after the console's own changes). The console finds
//! files only through these listings: a name from a request is looked up in them, never joined
//! onto a path unseen.

use crate::catalog::{Browse, Folder};
use crate::disk::FileStamp;
use crate::job::InputKind;
use crate::sync::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest time a listing is reused while its folder's stamp does not change.
const MAX_AGE: Duration = Duration::from_secs(10);
/// Longest time a listing of a folder without a stamp (in a bucket) is reused.
const UNSTAMPED_MAX_AGE: Duration = Duration::from_secs(3);

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

type Lister<T> = Box<dyn Fn() -> Vec<T> + Send + Sync>;

/// The last look: the folder's stamp then, when it was taken, and what it found.
struct Look<T> {
    folder: Option<FileStamp>,
    at: Instant,
    snapshot: Arc<Snapshot<T>>,
}

pub(super) struct Listing<T = Entry> {
    catalog: Arc<dyn Browse>,
    folder: Folder,
    list: Lister<T>,
    cached: Mutex<Option<Look<T>>>,
}

impl Listing<Entry> {
    /// The inputs of a watched folder. A folder that cannot be listed now (a store that fails)
    /// shows as empty until it can.
    pub(super) fn inputs(catalog: &Arc<dyn Browse>, kind: InputKind) -> Listing {
        let owned = catalog.clone();
        Listing::new(catalog, Folder::Input(kind), move || {
            let files = owned.files(Folder::Input(kind)).unwrap_or_default();
            files.into_iter().map(|(name, stamp)| Entry { name, stamp }).collect()
        })
    }
}

impl<T: Listed> Listing<T> {
    pub(super) fn new(
        catalog: &Arc<dyn Browse>,
        folder: Folder,
        list: impl Fn() -> Vec<T> + Send + Sync + 'static,
    ) -> Listing<T> {
        Listing { catalog: catalog.clone(), folder, list: Box::new(list), cached: Mutex::new(None) }
    }

    /// The folder now (reusing the last look while the folder is unchanged). Blocking.
    pub(super) fn snapshot(&self) -> Arc<Snapshot<T>> {
        let stamp = self.catalog.folder_stamp(self.folder);
        let mut cached = self.cached.lock();
        if let Some(last) = cached.as_ref() {
            let max_age = if stamp.is_some() { MAX_AGE } else { UNSTAMPED_MAX_AGE };
            if last.folder == stamp && last.at.elapsed() < max_age {
                return last.snapshot.clone();
            }
        }
        let snapshot = Arc::new(self.look());
        *cached = Some(Look { folder: stamp, at: Instant::now(), snapshot: snapshot.clone() });
        snapshot
    }

    /// A new look at the folder, for actions that must see it as it is.
    pub(super) fn fresh(&self) -> Arc<Snapshot<T>> {
        self.forget();
        self.snapshot()
    }

    /// Drops the last look: the console changed the folder.
    pub(super) fn forget(&self) {
        *self.cached.lock() = None;
    }

    fn look(&self) -> Snapshot<T> {
        let mut entries = (self.list)();
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
        let catalog: Arc<dyn Browse> = Arc::new(crate::catalog::LocalCatalog::new(base.folders.clone()));
        let listing = Listing::inputs(&catalog, InputKind::Product);
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

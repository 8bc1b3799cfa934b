//! Quota: how many new photos a tenant may have processed per local day (`max_photos_per_day`,
//! design §10). A photo counts once a day however often its job runs (by content); past the quota
//! it waits — never rejected — until the day turns. The count a daemon starts with is the day's
//! main thumbnails already in the catalog, so a restart does not grant a new day's worth.

use crate::clock;
use crate::sync::Mutex;
use std::collections::HashSet;

pub(crate) struct Quota {
    limit: u64,
    day: Mutex<Day>,
}

struct Day {
    /// The local midnight this count is for.
    start: i64,
    /// Photos counted before this process did (found in the catalog at start).
    before: u64,
    /// The photos admitted today, by content hash, and the names they came under.
    admitted: HashSet<String>,
    names: HashSet<String>,
}

impl Quota {
    /// A quota of `limit` photos a day, `done_today` of them processed already.
    pub(crate) fn new(limit: u64, done_today: u64) -> Quota {
        let start = clock::midnight(clock::now());
        Quota { limit, day: Mutex::new(Day::new(start, done_today)) }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether the photo of content `hash` (named `name`) may be processed today; counts it when
    /// it may.
    pub(crate) fn admit(&self, hash: &str, name: &str) -> bool {
        let mut day = self.today();
        if day.admitted.contains(hash) {
            return true;
        }
        if day.is_full(self.limit) {
            return false;
        }
        day.admitted.insert(hash.to_owned());
        day.names.insert(name.to_owned());
        true
    }

    /// Whether a new photo named `name` would wait, known without reading it: today's photos are
    /// used up and none came under that name.
    pub(crate) fn is_full_for(&self, name: &str) -> bool {
        let day = self.today();
        day.is_full(self.limit) && !day.names.contains(name)
    }

    /// Today's count, started again when the day has turned.
    fn today(&self) -> crate::sync::MutexGuard<'_, Day> {
        let today = clock::midnight(clock::now());
        let mut day = self.day.lock();
        if day.start != today {
            *day = Day::new(today, 0);
        }
        day
    }
}

impl Day {
    fn new(start: i64, before: u64) -> Day {
        Day { start, before, admitted: HashSet::new(), names: HashSet::new() }
    }

    fn is_full(&self, limit: u64) -> bool {
        self.before + self.admitted.len() as u64 >= limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_counts_once_a_day_and_past_the_limit_photos_wait() {
        let quota = Quota::new(3, 1);
        assert!(quota.admit("a", "a.jpg") && quota.admit("b", "b.jpg"));
        assert!(quota.admit("a", "a.jpg"), "a photo admitted today is admitted again (its retry)");
        assert!(!quota.admit("c", "c.jpg"), "one done before the start, two since: the day's three");
        assert!(quota.admit("b", "b.jpg"));
        assert!(quota.is_full_for("c.jpg") && !quota.is_full_for("a.jpg"));
    }
}

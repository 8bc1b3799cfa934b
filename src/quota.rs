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
    /// The photos admitted today, by content hash.
    admitted: HashSet<String>,
}

impl Quota {
    /// A quota of `limit` photos a day, `done_today` of them processed already.
    pub(crate) fn new(limit: u64, done_today: u64) -> Quota {
        let start = clock::midnight(clock::now());
        Quota { limit, day: Mutex::new(Day { start, before: done_today, admitted: HashSet::new() }) }
    }

    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// Whether the photo of content `hash` may be processed today; counts it when it may.
    pub(crate) fn admit(&self, hash: &str) -> bool {
        let today = clock::midnight(clock::now());
        let mut day = self.day.lock();
        if day.start != today {
            *day = Day { start: today, before: 0, admitted: HashSet::new() };
        }
        if day.admitted.contains(hash) {
            return true;
        }
        if day.before + day.admitted.len() as u64 >= self.limit {
            return false;
        }
        day.admitted.insert(hash.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_photo_counts_once_a_day_and_past_the_limit_photos_wait() {
        let quota = Quota::new(3, 1);
        assert!(quota.admit("a") && quota.admit("b"));
        assert!(quota.admit("a"), "a photo admitted today is admitted again (its retry)");
        assert!(!quota.admit("c"), "one done before the start, two since: the day's three");
        assert!(quota.admit("b"));
    }
}

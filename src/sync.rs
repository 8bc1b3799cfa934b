//! One policy for locks: a panic in one job never poisons shared state for every later one.
//!
//! The data behind these locks (queues, tables, caches) is updated in single steps that leave it
//! consistent, so after a panic elsewhere it is still good to use; a job that panicked is retried
//! like any failed one. Every mutex in the crate is this one.

use std::sync::{Arc, PoisonError};

#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(std::sync::Mutex<T>);

pub(crate) type MutexGuard<'a, T> = std::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Mutex<T> {
        Mutex(std::sync::Mutex::new(value))
    }

    /// Locks, taking the data over from a holder that panicked.
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A list read often and changed rarely (the tenants' catalogs, which a reload changes): readers
/// take the list as it is now and are never held up by a change.
pub(crate) struct Roster<T>(Mutex<Arc<Vec<T>>>);

impl<T: Clone> Roster<T> {
    pub(crate) fn new(items: Vec<T>) -> Roster<T> {
        Roster(Mutex::new(Arc::new(items)))
    }

    /// The list as it is now.
    pub(crate) fn now(&self) -> Arc<Vec<T>> {
        self.0.lock().clone()
    }

    /// Changes the list; readers see the old one or the new one, whole.
    pub(crate) fn change(&self, change: impl FnOnce(&mut Vec<T>)) {
        let mut current = self.0.lock();
        let mut items = current.as_ref().clone();
        change(&mut items);
        *current = Arc::new(items);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_holding_the_lock_leaves_the_data_usable() {
        let shared = std::sync::Arc::new(Mutex::new(vec![1]));
        let holder = shared.clone();
        let _ = std::thread::spawn(move || {
            let _guard = holder.lock();
            panic!("a job failed while holding the lock");
        })
        .join();
        shared.lock().push(2);
        assert_eq!(*shared.lock(), vec![1, 2]);
    }
}

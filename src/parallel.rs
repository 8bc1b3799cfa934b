//! Parallel: the independent pieces of one job (the outputs of one product) spread over the
//! cores with scoped threads, so the last output of a drop is ready about when the first is.
//!
//! No pool: a piece is milliseconds of encoding, a thread start tens of microseconds, and scoped
//! threads borrow the job's data (the placed product, the pipeline) without copies or `Arc`s.

/// `work` applied to every item, results in the items' order. Runs on at most as many threads as
/// there are cores (the calling thread is one of them); a single item runs on the caller.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(items.len());
    if threads <= 1 {
        return items.iter().map(&work).collect();
    }
    // Thread k takes items k, k + threads, k + 2·threads …
    let work = &work;
    let mut lanes: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads)
            .map(|lane| {
                scope.spawn(move || {
                    items.iter().enumerate().skip(lane).step_by(threads).map(|(i, t)| (i, work(t))).collect()
                })
            })
            .collect();
        let mine: Vec<(usize, R)> = items.iter().enumerate().step_by(threads).map(|(i, t)| (i, work(t))).collect();
        std::iter::once(mine)
            .chain(others.into_iter().map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))))
            .collect()
    });
    let mut out: Vec<(usize, R)> = lanes.drain(..).flatten().collect();
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Mutex;

    #[test]
    fn results_keep_the_items_order_whatever_thread_made_them() {
        let items: Vec<u32> = (0..23).collect();
        let threads = Mutex::new(HashSet::new());
        let out = map(&items, |&n| {
            threads.lock().unwrap().insert(std::thread::current().id());
            n * 10
        });
        assert_eq!(out, items.iter().map(|n| n * 10).collect::<Vec<_>>());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(threads.lock().unwrap().len(), cores.min(items.len()));
    }

    #[test]
    fn a_single_item_runs_on_the_calling_thread() {
        let caller = std::thread::current().id();
        assert_eq!(map(&[1], |_| std::thread::current().id()), vec![caller]);
        assert!(map(&[] as &[u8], |_| 0).is_empty());
    }
}

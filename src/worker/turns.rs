//! Turns: how many jobs run at once across every catalog of the process, and whose job runs next
//! when a worker frees up — weighted round-robin across tenants (stride scheduling).
//!
//! Each tenant has a *pass*: the work it has had, in units of `1 / weight`. A freed turn goes to
//! the waiting tenant with the lowest pass (the one that has had least for its weight; ties to the
//! lower index), whose pass then grows by `1 / weight`. A tenant that was idle starts at the pass
//! of the last turn given, so idleness banks no credit and a tenant coming back neither waits
//! behind the others' queues nor takes every worker for a while: its new photo waits for at most
//! about one running job per busier tenant. With one catalog the turns are simply the workers.

use crate::sync::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::oneshot;

pub(crate) struct Turns {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Each tenant's weight, pass and waiting workers (in arrival order).
    tenants: Vec<Share>,
    /// The pass of the last turn given.
    now: f64,
}

struct Share {
    weight: f64,
    pass: f64,
    waiting: VecDeque<oneshot::Sender<Turn>>,
}

/// A running job's turn: given to the next tenant in line when dropped.
pub(crate) struct Turn {
    /// `None` once handed back without being used (its waiter was gone).
    turns: Option<Arc<Turns>>,
}

impl Turns {
    /// `count` turns shared by tenants of these weights (one catalog: `&[1]`).
    pub(crate) fn new(count: usize, weights: &[u32]) -> Arc<Turns> {
        let tenants =
            weights.iter().map(|&w| Share { weight: f64::from(w.max(1)), pass: 0.0, waiting: VecDeque::new() }).collect();
        Arc::new(Turns { state: Mutex::new(State { free: count.max(1), tenants, now: 0.0 }) })
    }

    /// A tenant a reload added, with its index; it starts level with the others (its pass is the
    /// last turn's). Indexes are not reused: a removed tenant's stays behind, idle (no waiters).
    pub(crate) fn add(&self, weight: u32) -> usize {
        let mut state = self.state.lock();
        let now = state.now;
        state.tenants.push(Share { weight: f64::from(weight.max(1)), pass: now, waiting: VecDeque::new() });
        state.tenants.len() - 1
    }

    /// A reload changed `tenant`'s weight: its next turns count by the new one.
    pub(crate) fn set_weight(&self, tenant: usize, weight: u32) {
        self.state.lock().tenants[tenant].weight = f64::from(weight.max(1));
    }

    /// Waits for a turn for `tenant`'s next job.
    pub(crate) async fn take(self: &Arc<Self>, tenant: usize) -> Turn {
        let receiver = {
            let mut state = self.state.lock();
            // Waiters whose task ended (cancelled) hold no place.
            state.tenants.iter_mut().for_each(|s| s.waiting.retain(|w| !w.is_closed()));
            let now = state.now;
            let share = &mut state.tenants[tenant];
            if share.waiting.is_empty() {
                share.pass = share.pass.max(now);
            }
            if state.free > 0 && state.tenants.iter().all(|s| s.waiting.is_empty()) {
                state.free -= 1;
                state.give(tenant);
                return Turn { turns: Some(self.clone()) };
            }
            let (sender, receiver) = oneshot::channel();
            state.tenants[tenant].waiting.push_back(sender);
            receiver
        };
        // The turn itself comes through the channel: one sent to a waiter that is gone goes back
        // to the next in line (see `release`). A sender is dropped unsent only with the `Turns`.
        receiver.await.unwrap_or(Turn { turns: None })
    }

    fn release(self: &Arc<Self>) {
        let mut state = self.state.lock();
        loop {
            let next = (0..state.tenants.len())
                .filter(|&i| !state.tenants[i].waiting.is_empty())
                .min_by(|&a, &b| state.tenants[a].pass.total_cmp(&state.tenants[b].pass).then(a.cmp(&b)));
            let Some(tenant) = next else {
                state.free += 1;
                return;
            };
            let waiter = state.tenants[tenant].waiting.pop_front().expect("chosen for its waiters");
            match waiter.send(Turn { turns: Some(self.clone()) }) {
                Ok(()) => {
                    state.give(tenant);
                    return;
                }
                // A worker that stopped waiting leaves its place to the next one; the turn it was
                // sent is still this one to give.
                Err(mut unused) => unused.turns = None,
            }
        }
    }
}

impl State {
    /// Counts a turn given to `tenant`.
    fn give(&mut self, tenant: usize) {
        let share = &mut self.tenants[tenant];
        self.now = share.pass;
        share.pass += 1.0 / share.weight;
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(turns) = self.turns.take() {
            turns.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Who gets each of the next `n` turns when every tenant in `busy` keeps asking.
    async fn order(turns: &Arc<Turns>, busy: &[usize], n: usize) -> Vec<usize> {
        let held = turns.take(busy[0]).await;
        let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for &tenant in busy {
            for _ in 0..n {
                let (turns, sender) = (turns.clone(), sender.clone());
                tasks.push(tokio::spawn(async move {
                    let turn = turns.take(tenant).await;
                    sender.send((tenant, turn)).unwrap();
                }));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        drop(held);
        let mut got = Vec::new();
        for _ in 0..n {
            let (tenant, turn) = receiver.recv().await.unwrap();
            got.push(tenant);
            drop(turn);
        }
        tasks.into_iter().for_each(|t| t.abort());
        got
    }

    #[tokio::test]
    async fn turns_alternate_between_busy_tenants_by_weight() {
        let turns = Turns::new(1, &[1, 1]);
        let got = order(&turns, &[0, 1], 6).await;
        assert!(got.windows(2).all(|w| w[0] != w[1]), "one each in turn: {got:?}");
        let weighted = Turns::new(1, &[2, 1]);
        let got = order(&weighted, &[0, 1], 9).await;
        assert_eq!(got.iter().filter(|&&t| t == 0).count(), 6, "twice the weight, twice the turns: {got:?}");
    }

    #[tokio::test]
    async fn a_tenant_that_was_idle_is_served_next_not_after_the_others_queue() {
        let turns = Turns::new(1, &[1, 1]);
        // Tenant 0 has had a hundred turns alone.
        for _ in 0..100 {
            drop(turns.take(0).await);
        }
        let running = turns.take(0).await;
        let queued: Vec<_> = (0..5)
            .map(|_| {
                let turns = turns.clone();
                tokio::spawn(async move { drop(turns.take(0).await) })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (sender, receiver) = oneshot::channel();
        let newcomer = {
            let turns = turns.clone();
            tokio::spawn(async move { sender.send(turns.take(1).await).ok().unwrap() })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(running);
        let turn = tokio::time::timeout(Duration::from_secs(1), receiver).await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let waiting_then = queued.iter().filter(|t| !t.is_finished()).count();
        assert_eq!(waiting_then, 5, "the newcomer went before all of the busy tenant's queue");
        drop(turn);
        newcomer.await.unwrap();
        for task in queued {
            task.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_waiter_that_gave_up_holds_no_turn_and_no_place() {
        let turns = Turns::new(1, &[1, 1]);
        let held = turns.take(0).await;
        let gave_up = tokio::time::timeout(Duration::from_millis(10), turns.take(1)).await;
        assert!(gave_up.is_err(), "it waited, then its task stopped waiting");
        drop(held);
        let next = tokio::time::timeout(Duration::from_secs(1), turns.take(0)).await;
        assert!(next.is_ok(), "the freed turn is not lost to the waiter that left");
    }

    #[tokio::test]
    async fn a_tenant_added_later_starts_level_and_a_new_weight_counts_from_then() {
        let turns = Turns::new(1, &[1]);
        for _ in 0..50 {
            drop(turns.take(0).await);
        }
        let added = turns.add(1);
        assert_eq!(added, 1);
        let got = order(&turns, &[0, added], 6).await;
        assert!(got.windows(2).all(|w| w[0] != w[1]), "no catching up on the 50 turns before it: {got:?}");
        turns.set_weight(added, 2);
        let got = order(&turns, &[0, added], 9).await;
        assert_eq!(got.iter().filter(|&&t| t == added).count(), 6, "the new weight counts: {got:?}");
    }

    #[tokio::test]
    async fn with_one_catalog_every_worker_has_a_turn_at_once() {
        let turns = Turns::new(3, &[1]);
        let held: Vec<Turn> = futures_util::future::join_all((0..3).map(|_| turns.take(0))).await;
        let fourth = tokio::time::timeout(Duration::from_millis(20), turns.take(0)).await;
        assert!(fourth.is_err(), "a fourth job waits");
        drop(held);
        tokio::time::timeout(Duration::from_secs(1), turns.take(0)).await.unwrap();
    }
}

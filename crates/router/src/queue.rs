//! The priority queue in front of upstream calls: at most `limit` calls at once, and waiting
//! callers served interactive before background, first come first served within a priority.
//!
//! A waiter is an entry in an ordered map keyed by (priority, arrival number) holding the
//! sending half of a oneshot channel; releasing a slot hands it to the first waiter. A waiter
//! that gave up (its future was dropped) is skipped: the slot comes back from the failed send
//! and goes to the next one. A slot handed over but never received is dropped with the channel,
//! which releases it again, so no slot is ever lost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use imagegate_core::Priority;
use tokio::sync::oneshot;

#[derive(Debug)]
struct State {
    free: usize,
    arrivals: u64,
    waiters: BTreeMap<(Priority, u64), oneshot::Sender<Slot>>,
}

/// The gate. `limit: None` lets everything through without queueing.
#[derive(Debug)]
pub(crate) struct Gate {
    limited: bool,
    state: Mutex<State>,
}

/// Permission to make one upstream call; given back on drop.
#[derive(Debug)]
pub(crate) struct Slot {
    gate: Option<Arc<Gate>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            Gate::release(&gate);
        }
    }
}

impl Gate {
    pub(crate) fn new(limit: Option<usize>) -> Arc<Self> {
        Arc::new(Gate {
            limited: limit.is_some(),
            state: Mutex::new(State {
                free: limit.unwrap_or(0),
                arrivals: 0,
                waiters: BTreeMap::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot in priority order.
    pub(crate) async fn acquire(self: &Arc<Self>, priority: Priority) -> Slot {
        if !self.limited {
            return Slot { gate: None };
        }
        loop {
            let receiver = {
                let mut state = self.lock();
                if state.free > 0 && state.waiters.is_empty() {
                    state.free -= 1;
                    return Slot {
                        gate: Some(Arc::clone(self)),
                    };
                }
                let (sender, receiver) = oneshot::channel();
                state.arrivals += 1;
                let arrival = state.arrivals;
                state.waiters.insert((priority, arrival), sender);
                receiver
            };
            if let Ok(slot) = receiver.await {
                return slot;
            }
            // The sender was dropped without a slot (cannot happen while the gate lives):
            // queue again rather than fail.
        }
    }

    fn release(gate: &Arc<Gate>) {
        let mut state = gate.lock();
        while let Some((_, sender)) = state.waiters.pop_first() {
            let slot = Slot {
                gate: Some(Arc::clone(gate)),
            };
            match sender.send(slot) {
                Ok(()) => return,
                Err(mut unclaimed) => {
                    // The waiter gave up: disarm the returned slot (it must not release
                    // re-entrantly while we hold the lock) and try the next waiter.
                    unclaimed.gate = None;
                }
            }
        }
        state.free += 1;
    }

    /// Waiting callers (for tests and status).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock().waiters.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn interactive_goes_before_background_and_fifo_within() {
        let gate = Gate::new(Some(1));
        let first = gate.acquire(Priority::Background).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, priority) in [
            ("bg1", Priority::Background),
            ("bg2", Priority::Background),
            ("ia1", Priority::Interactive),
            ("ia2", Priority::Interactive),
        ] {
            let task_gate = Arc::clone(&gate);
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                let _slot = task_gate.acquire(priority).await;
                order.lock().unwrap().push(name);
            }));
            // Let each task queue before the next arrives.
            while gate.waiting() < tasks.len() {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["ia1", "ia2", "bg1", "bg2"]);
    }

    #[tokio::test]
    async fn an_abandoned_waiter_does_not_lose_the_slot() {
        let gate = Gate::new(Some(1));
        let held = gate.acquire(Priority::Interactive).await;
        let abandoned = {
            let gate = Arc::clone(&gate);
            tokio::spawn(async move { gate.acquire(Priority::Interactive).await })
        };
        while gate.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        abandoned.abort();
        let _ = abandoned.await;
        drop(held);
        // The slot must be free again: this would hang otherwise.
        let _again = gate.acquire(Priority::Background).await;
        assert_eq!(gate.waiting(), 0);
    }
}

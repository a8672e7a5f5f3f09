//! The requests the gateway holds right now, by priority, for the status page's queue: how
//! many wait in each priority and since when the oldest does. The semaphore bounds them
//! (`server.max_queue`); this only remembers who they are.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use imagegate_core::Priority;
use jiff::Timestamp;
use serde_json::{Value, json};

/// The last number given out, and each held request's priority and arrival by its number.
type Requests = (u64, BTreeMap<u64, (Priority, Timestamp)>);

/// Each held request's priority and arrival, by a number of its own.
#[derive(Debug, Default)]
pub(crate) struct Held {
    inner: Mutex<Requests>,
}

/// Forgets its request when dropped, however the request ends.
#[derive(Debug)]
pub(crate) struct HeldGuard {
    held: Arc<Held>,
    id: u64,
}

impl Drop for HeldGuard {
    fn drop(&mut self) {
        let mut inner = self
            .held
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        inner.1.remove(&self.id);
    }
}

impl Held {
    /// Remembers a request arriving `now` with `priority` until the guard is dropped.
    pub(crate) fn hold(self: &Arc<Self>, priority: Priority, now: Timestamp) -> HeldGuard {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.0 += 1;
        let id = inner.0;
        inner.1.insert(id, (priority, now));
        HeldGuard {
            held: Arc::clone(self),
            id,
        }
    }

    /// Per priority (interactive first): `{"priority", "held", "oldest_since", "oldest_wait_ms"}`.
    pub(crate) fn by_priority(&self, now: Timestamp) -> Vec<Value> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut groups: BTreeMap<Priority, (usize, Timestamp)> = BTreeMap::new();
        for (priority, since) in inner.1.values() {
            let entry = groups.entry(*priority).or_insert((0, *since));
            entry.0 += 1;
            entry.1 = entry.1.min(*since);
        }
        groups
            .into_iter()
            .map(|(priority, (held, oldest))| {
                let waited = now.duration_since(oldest).as_millis().max(0);
                json!({"priority": priority, "held": held, "oldest_since": oldest,
                       "oldest_wait_ms": u64::try_from(waited).unwrap_or(0)})
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn groups_by_priority_with_the_oldest_and_forgets_dropped_requests() {
        let held = Arc::new(Held::default());
        let t0: Timestamp = "2026-01-15T12:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-15T12:00:05Z".parse().unwrap();
        let now: Timestamp = "2026-01-15T12:00:10Z".parse().unwrap();
        let a = held.hold(Priority::Background, t1);
        let b = held.hold(Priority::Interactive, t1);
        let c = held.hold(Priority::Background, t0);
        assert_eq!(
            held.by_priority(now),
            vec![
                json!({"priority": "interactive", "held": 1, "oldest_since": t1, "oldest_wait_ms": 5000}),
                json!({"priority": "background", "held": 2, "oldest_since": t0, "oldest_wait_ms": 10000}),
            ]
        );
        drop((a, b, c));
        assert!(held.by_priority(now).is_empty());
    }
}

//! The order in which waiting requests take capacity: the waiting room.
//!
//! Requests that wait for a quota window all wake when it frees; without an order, the one
//! whose timer was set first takes the capacity (first come, first served), and under overload
//! the others expire behind it. Before scanning its route, a request takes a ticket, lets
//! every other request woken at the same instant take theirs (one yield), and scans only when
//! no ticket ranks before its own; it gives the ticket back when the scan is over (it sent,
//! waits again, or failed), which lets the next one scan.
//!
//! The rank: interactive before background; within a priority, the earliest deadline first
//! (a request without one ranks by its start, last among those with deadlines at that start);
//! a background request that has waited [`Policy::background_aging`](crate::Policy) ranks as
//! an interactive one due at that instant, so a stream of interactive work can delay it but
//! never starve it. With [`Policy::earliest_deadline_first`](crate::Policy) off, requests of
//! one priority rank by their start instead (first come, first served), for comparison.

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, PoisonError};

use imagegate_core::Priority;
use imagegate_core::clock::add;
use jiff::Timestamp;
use tokio::sync::Notify;

use crate::policy::Policy;

/// A request's place in the order: (class, due, request id).
pub(crate) type Rank = (u8, Timestamp, u64);

/// The rank of a request started at `start`, due at `deadline`, at `now`.
pub(crate) fn rank(
    policy: &Policy,
    priority: Priority,
    start: Timestamp,
    deadline: Option<Timestamp>,
    id: u64,
    now: Timestamp,
) -> Rank {
    let due = if policy.earliest_deadline_first {
        deadline.unwrap_or(Timestamp::MAX)
    } else {
        start
    };
    match priority {
        Priority::Background => {
            let aged = add(start, policy.background_aging);
            if aged > now {
                (1, due, id)
            } else if policy.earliest_deadline_first {
                // Among interactive requests by its own deadline: it goes before every one
                // due later, so it is served by its deadline at the latest, however much
                // interactive work keeps coming; without a deadline, due when it aged.
                (0, deadline.unwrap_or(aged), id)
            } else {
                (0, start, id)
            }
        }
        _ => (0, due, id),
    }
}

/// The requests about to scan their routes.
#[derive(Debug, Default)]
pub(crate) struct Room {
    tickets: Mutex<BTreeSet<Rank>>,
    changed: Notify,
}

/// A request's turn to scan; gives the ticket back on drop.
pub(crate) struct Turn<'a> {
    room: &'a Room,
    rank: Rank,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.room.lock().remove(&self.rank);
        self.room.changed.notify_waiters();
    }
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, BTreeSet<Rank>> {
        self.tickets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until no request ranks before `rank`.
    pub(crate) async fn turn(&self, rank: Rank) -> Turn<'_> {
        self.lock().insert(rank);
        let turn = Turn { room: self, rank };
        // Requests woken at the same instant take their tickets before anyone scans.
        tokio::task::yield_now().await;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.lock().first().is_none_or(|first| *first >= rank) {
                return turn;
            }
            changed.await;
        }
    }

    /// Tickets held (for tests).
    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn interactive_first_then_deadline_and_aging_promotes_background() {
        let policy = Policy::default().with_background_aging(Duration::from_secs(300));
        let ia = rank(
            &policy,
            Priority::Interactive,
            at(0),
            Some(at(600)),
            1,
            at(10),
        );
        let bg = rank(
            &policy,
            Priority::Background,
            at(0),
            Some(at(60)),
            2,
            at(10),
        );
        assert!(ia < bg, "interactive first, whatever the deadlines");
        let early = rank(
            &policy,
            Priority::Interactive,
            at(5),
            Some(at(100)),
            3,
            at(10),
        );
        assert!(early < ia, "earliest deadline first");
        let aged = rank(
            &policy,
            Priority::Background,
            at(0),
            Some(at(500)),
            4,
            at(300),
        );
        assert_eq!(aged, (0, at(500), 4));
        assert!(
            aged < ia,
            "aged background goes before interactive due later"
        );
        let no_deadline = rank(&policy, Priority::Background, at(0), None, 7, at(300));
        assert_eq!(
            no_deadline,
            (0, at(300), 7),
            "without a deadline, due when it aged"
        );
        let fifo = Policy::default().with_earliest_deadline_first(false);
        let a = rank(
            &fifo,
            Priority::Interactive,
            at(0),
            Some(at(600)),
            5,
            at(10),
        );
        let b = rank(
            &fifo,
            Priority::Interactive,
            at(5),
            Some(at(100)),
            6,
            at(10),
        );
        assert!(a < b, "first come first served when EDF is off");
    }

    #[tokio::test(start_paused = true)]
    async fn requests_woken_together_scan_in_rank_order() {
        let room = Arc::new(Room::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Spawned in the worst order: latest deadline first.
        for (id, due) in [(1, 300), (2, 200), (3, 100)] {
            let (room, order) = (room.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _turn = room.turn((0, at(due), id)).await;
                order
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(id);
                tokio::task::yield_now().await;
            }));
        }
        for t in tasks {
            assert!(t.await.is_ok());
        }
        assert_eq!(
            *order.lock().unwrap_or_else(PoisonError::into_inner),
            [3, 2, 1]
        );
        assert_eq!(room.waiting(), 0);
    }
}

//! What a target's calls take: a running percentile of the latest successful calls, learned
//! per target, so the router can tell whether a call started now can finish before the
//! request's deadline (a call that cannot is not started: its image would be paid for and
//! thrown away).
//!
//! A window of the latest calls rather than all of them, so a target that slows down (or
//! speeds up) is followed within a few dozen calls; no estimate before a handful of calls,
//! so a fresh router sheds nothing on a guess.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Successful calls remembered per target.
pub(crate) const WINDOW: usize = 64;

/// Calls needed before the estimate is used.
pub(crate) const MIN_SAMPLES: usize = 8;

/// The latest successful call latencies of one target.
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    samples: Mutex<VecDeque<Duration>>,
}

impl Latencies {
    /// Records one successful call.
    pub(crate) fn record(&self, elapsed: Duration) {
        let mut samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() == WINDOW {
            samples.pop_front();
        }
        samples.push_back(elapsed);
    }

    /// The `quantile` (0..=1, nearest rank) of the remembered calls, once there are enough.
    pub(crate) fn expected(&self, quantile: f64) -> Option<Duration> {
        let samples = self.samples.lock().unwrap_or_else(PoisonError::into_inner);
        if samples.len() < MIN_SAMPLES {
            return None;
        }
        let mut sorted: Vec<Duration> = samples.iter().copied().collect();
        drop(samples);
        sorted.sort_unstable();
        let rank = (quantile.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
        sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_estimate_until_enough_calls_then_the_nearest_rank() {
        let l = Latencies::default();
        for s in 1..MIN_SAMPLES as u64 {
            l.record(Duration::from_secs(s));
        }
        assert_eq!(l.expected(0.5), None);
        l.record(Duration::from_secs(8));
        assert_eq!(l.expected(0.5), Some(Duration::from_secs(4)));
        assert_eq!(l.expected(0.9), Some(Duration::from_secs(8)));
        assert_eq!(l.expected(0.0), Some(Duration::from_secs(1)));
    }

    #[test]
    fn only_the_latest_window_counts() {
        let l = Latencies::default();
        for _ in 0..WINDOW {
            l.record(Duration::from_secs(60));
        }
        for _ in 0..WINDOW {
            l.record(Duration::from_secs(5));
        }
        assert_eq!(l.expected(1.0), Some(Duration::from_secs(5)));
    }
}

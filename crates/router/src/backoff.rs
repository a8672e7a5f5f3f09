//! Full-jitter backoff: retry `n` waits a uniformly random time in `0..=min(cap, base * 2^n)`,
//! from an injectable [`Jitter`] source (seeded by default, so runs are reproducible).

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Picks a random duration in `0..=ceiling`. Injectable so tests can pin it.
pub trait Jitter: fmt::Debug + Send + Sync {
    /// A duration in `0..=ceiling`.
    fn pick(&self, ceiling: Duration) -> Duration;
}

/// Uniform jitter in whole milliseconds from a seeded generator: the same seed gives the same
/// waits.
#[derive(Debug)]
pub struct SeededJitter {
    rng: Mutex<fastrand::Rng>,
}

impl SeededJitter {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SeededJitter {
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
        }
    }
}

impl Jitter for SeededJitter {
    fn pick(&self, ceiling: Duration) -> Duration {
        // Whole milliseconds: finer waits mean nothing to an upstream and would not survive
        // the millisecond resolution of timers and retry hints.
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        Duration::from_millis(rng.u64(0..=millis))
    }
}

/// No randomness: always the ceiling (plain exponential backoff). For tests that assert
/// exact waits.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoJitter;

impl Jitter for NoJitter {
    fn pick(&self, ceiling: Duration) -> Duration {
        ceiling
    }
}

/// The ceiling of retry `attempt` (from 0): `min(cap, base * 2^attempt)`.
pub(crate) fn ceiling(base: Duration, cap: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(cap).min(cap)
}

/// The wait before retry `attempt`: full jitter under [`ceiling`].
pub(crate) fn delay(jitter: &dyn Jitter, base: Duration, cap: Duration, attempt: u32) -> Duration {
    jitter.pick(ceiling(base, cap, attempt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let base = Duration::from_millis(500);
        let cap = Duration::from_secs(30);
        let got: Vec<u64> = (0..8)
            .map(|n| ceiling(base, cap, n).as_millis() as u64)
            .collect();
        assert_eq!(
            got,
            [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]
        );
        assert_eq!(ceiling(base, cap, 200), cap);
    }

    #[test]
    fn seeded_jitter_is_reproducible_and_bounded() {
        let ceiling = Duration::from_secs(4);
        let a: Vec<_> = {
            let j = SeededJitter::new(7);
            (0..50).map(|_| j.pick(ceiling)).collect()
        };
        let b: Vec<_> = {
            let j = SeededJitter::new(7);
            (0..50).map(|_| j.pick(ceiling)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|d| *d <= ceiling));
        assert!(a.iter().any(|d| *d < ceiling / 2), "not uniform: {a:?}");
        let c: Vec<_> = {
            let j = SeededJitter::new(8);
            (0..50).map(|_| j.pick(ceiling)).collect()
        };
        assert_ne!(a, c);
    }
}

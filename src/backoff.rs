//! Backoff: how long to wait before trying again, growing with each attempt and jittered so that
//! many failures at once do not retry in lockstep.

use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Backoff {
    /// Wait after the first failure.
    pub first: Duration,
    /// Each further failure multiplies the wait by this.
    pub factor: u32,
    /// Longest wait.
    pub max: Duration,
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1-based), ±20 %.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let steps = attempt.saturating_sub(1).min(24);
        let grown = (0..steps).fold(self.first, |d, _| d.saturating_mul(self.factor).min(self.max));
        jitter(grown.min(self.max))
    }
}

/// `d` scaled by a factor between 0.8 and 1.2.
fn jitter(d: Duration) -> Duration {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let mix = (nanos as u64 ^ COUNTER.fetch_add(0x9E37_79B9, Ordering::Relaxed)).wrapping_mul(0x2545_F491_4F6C_DD1D);
    d.mul_f64(0.8 + (mix >> 40) as f64 / (1u64 << 24) as f64 * 0.4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_by_the_factor_up_to_the_cap_within_the_jitter() {
        let b = Backoff { first: Duration::from_secs(2), factor: 4, max: Duration::from_secs(30) };
        let within = |d: Duration, secs: f64| (secs * 0.8..=secs * 1.2).contains(&d.as_secs_f64());
        assert!(within(b.delay(1), 2.0));
        assert!(within(b.delay(2), 8.0));
        assert!(within(b.delay(3), 30.0));
        assert!(within(b.delay(50), 30.0));
    }
}

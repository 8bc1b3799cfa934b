//! Circuit breaker for the remote engine: after repeated failures (or a quota message that names
//! a time), calls stop for a while instead of hammering a Space that cannot answer.

use std::time::{Duration, Instant};

/// Consecutive failures that open the circuit.
const THRESHOLD: u32 = 5;
const FIRST_COOL_DOWN: Duration = Duration::from_secs(30);
const MAX_COOL_DOWN: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    cool_down: Option<Duration>,
    reason: String,
}

/// What the breaker allows right now.
#[derive(Debug, PartialEq)]
pub enum Gate {
    Closed,
    /// Calls are suspended until then, for this reason.
    Open(Instant, String),
}

impl Breaker {
    pub fn gate(&self) -> Gate {
        match self.open_until {
            Some(until) if Instant::now() < until => Gate::Open(until, self.reason.clone()),
            _ => Gate::Closed,
        }
    }

    pub fn success(&mut self) {
        *self = Breaker::default();
    }

    /// Counts a failure; opens the circuit (with a growing cool-down) at the threshold.
    pub fn failure(&mut self, reason: &str) {
        self.failures += 1;
        if self.failures >= THRESHOLD {
            let cool = self.cool_down.map_or(FIRST_COOL_DOWN, |c| (c * 2).min(MAX_COOL_DOWN));
            self.cool_down = Some(cool);
            self.open_until = Some(Instant::now() + cool);
            self.reason = format!("{} failures in a row, last: {reason}", self.failures);
        }
    }

    /// Suspends calls until a time the remote named (quota reset, Retry-After).
    pub fn suspend(&mut self, wait: Duration, reason: &str) {
        let until = Instant::now() + wait;
        if self.open_until.is_none_or(|u| u < until) {
            self.open_until = Some(until);
            self.reason = reason.to_owned();
        }
    }

    pub fn state(&self) -> &'static str {
        match self.gate() {
            Gate::Closed if self.failures > 0 => "failing",
            Gate::Closed => "closed",
            Gate::Open(..) => "open",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_repeated_failures_and_closes_on_success() {
        let mut b = Breaker::default();
        for _ in 0..THRESHOLD - 1 {
            b.failure("503");
        }
        assert_eq!(b.gate(), Gate::Closed);
        b.failure("503");
        assert!(matches!(b.gate(), Gate::Open(..)));
        b.success();
        assert_eq!(b.state(), "closed");
        b.suspend(Duration::from_secs(60), "quota");
        assert!(matches!(b.gate(), Gate::Open(_, r) if r == "quota"));
    }
}

//! Failure rate limits for sign-in and token exchanges.
//!
//! Each key (an account's login, a client address, an app key) may fail a number of times
//! in a sliding window; past that it is refused until the oldest failure leaves the window,
//! even with the right password. Limits live in each server's memory: with N servers an
//! attacker gets at most N times the budget, which still turns a guessing attack from
//! feasible into hopeless.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys remembered at most; the oldest are dropped first when full, so memory is bounded.
const MAX_KEYS: usize = 100_000;

pub struct Limiter {
    max_failures: usize,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Limiter {
    pub fn new(max_failures: usize, window: Duration) -> Self {
        Self {
            max_failures,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(retry_after)` when `key` has used up its failures.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("limiter lock");
        let Some(q) = map.get_mut(key) else {
            return Ok(());
        };
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            q.pop_front();
        }
        if q.len() < self.max_failures {
            return Ok(());
        }
        let oldest = *q.front().expect("full queue");
        Err(self.window.saturating_sub(now.duration_since(oldest)) + Duration::from_secs(1))
    }

    /// Records a failure of `key`.
    pub fn fail(&self, key: &str) {
        let now = Instant::now();
        let mut map = self.failures.lock().expect("limiter lock");
        if map.len() >= MAX_KEYS && !map.contains_key(key) {
            let window = self.window;
            map.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < window));
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        let q = map.entry(key.to_owned()).or_default();
        q.push_back(now);
        while q.len() > self.max_failures {
            q.pop_front();
        }
    }

    /// Forgets the failures of `key` (after a successful sign-in).
    pub fn clear(&self, key: &str) {
        self.failures.lock().expect("limiter lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_after_the_budget_and_recovers() {
        let l = Limiter::new(3, Duration::from_millis(200));
        for _ in 0..3 {
            assert!(l.check("a").is_ok());
            l.fail("a");
        }
        assert!(l.check("a").is_err());
        assert!(l.check("b").is_ok(), "keys are independent");
        std::thread::sleep(Duration::from_millis(250));
        assert!(l.check("a").is_ok(), "failures leave the window");
        l.fail("a");
        l.clear("a");
        assert!(l.check("a").is_ok());
    }
}

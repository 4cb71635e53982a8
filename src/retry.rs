//! The one retry policy: bounded attempts, full-jitter exponential backoff with a cap, and the
//! server's `Retry-After` honoured when it gave one.

use std::time::Duration;

use rand::Rng;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The backoff ceiling of the first retry.
    pub base: Duration,
    /// No single wait is longer than this (a `Retry-After` may be).
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first retry): uniformly random in
    /// `[0, min(cap, base * 2^(retry-1))]`, or at least `retry_after` when the server set one.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let exp = retry.saturating_sub(1).min(30);
        let ceiling = self.base.saturating_mul(1u32 << exp).min(self.cap);
        let jitter = if ceiling.is_zero() {
            Duration::ZERO
        } else {
            rand::rng().random_range(Duration::ZERO..=ceiling)
        };
        match retry_after {
            // The server's word is a floor; a little jitter keeps many clients from returning at once.
            Some(after) => after + jitter / 4,
            None => jitter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_under_the_exponential_ceiling_and_the_cap() {
        let p = RetryPolicy {
            max_attempts: 10,
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
        };
        for _ in 0..200 {
            assert!(p.delay(1, None) <= Duration::from_secs(1));
            assert!(p.delay(3, None) <= Duration::from_secs(4));
            assert!(p.delay(9, None) <= Duration::from_secs(8));
        }
    }

    #[test]
    fn retry_after_is_a_floor() {
        let p = RetryPolicy::default();
        for _ in 0..200 {
            assert!(p.delay(1, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
        }
    }
}

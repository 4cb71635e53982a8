//! Per-token sliding-window rate limits, measured on the tokio clock so paused-time tests and
//! the client's own budget agree with the simulator.

use std::collections::{HashMap, VecDeque};

use tokio::time::Instant;

use super::config::RouteClass;

/// Admission times of accepted requests per (token, route class).
#[derive(Default)]
pub(crate) struct Limiter {
    windows: HashMap<(String, RouteClass), VecDeque<Instant>>,
}

impl Limiter {
    /// Admits the request and counts it, or refuses it without counting it.
    pub fn admit(&mut self, token: &str, class: RouteClass, now: Instant) -> bool {
        let Some((limit, window)) = class.limit() else {
            return true;
        };
        let entries = self.windows.entry((token.to_owned(), class)).or_default();
        while let Some(&first) = entries.front() {
            if now.saturating_duration_since(first) >= window {
                entries.pop_front();
            } else {
                break;
            }
        }
        if entries.len() >= limit {
            return false;
        }
        entries.push_back(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn sixty_first_standard_request_in_thirty_seconds_is_refused() {
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        for i in 0..60 {
            assert!(limiter.admit("t", RouteClass::Standard, t0 + Duration::from_millis(i)));
        }
        assert!(!limiter.admit("t", RouteClass::Standard, t0 + Duration::from_secs(1)));
        // Other tokens and other classes have their own windows.
        assert!(limiter.admit("u", RouteClass::Standard, t0));
        assert!(limiter.admit("t", RouteClass::Logs, t0));
        // The first admission leaves the window 30 s after it was made.
        assert!(limiter.admit("t", RouteClass::Standard, t0 + Duration::from_secs(30)));
        assert!(!limiter.admit("t", RouteClass::Standard, t0 + Duration::from_secs(30)));
    }

    #[test]
    fn refused_requests_do_not_count() {
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(limiter.admit("t", RouteClass::AnalyzeLogs, t0));
        }
        for s in 1..60 {
            assert!(!limiter.admit("t", RouteClass::AnalyzeLogs, t0 + Duration::from_secs(s)));
        }
        assert!(limiter.admit("t", RouteClass::AnalyzeLogs, t0 + Duration::from_secs(60)));
    }

    #[test]
    fn unlimited_class_is_never_refused() {
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        assert!((0..1000).all(|_| limiter.admit("t", RouteClass::Unlimited, t0)));
    }
}

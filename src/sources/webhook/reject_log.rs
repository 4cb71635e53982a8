//! Rejected deliveries are logged one line each, but at most one line per second: a flood of
//! forged requests must not flood the logs (the metrics count every one).

use std::sync::Mutex;
use std::time::Duration;

// Tokio's clock, so tests can move it.
use tokio::time::Instant;

/// Least time between two logged rejections.
pub const REJECT_LOG_EVERY: Duration = Duration::from_secs(1);

/// When the last rejection was logged and how many were not since.
#[derive(Debug, Default)]
pub struct RejectLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl RejectLog {
    /// Some(number of rejections not logged since the last line) when this one is to be logged.
    pub fn admit(&self) -> Option<u64> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match state.0 {
            Some(last) if now.duration_since(last) < REJECT_LOG_EVERY => {
                state.1 += 1;
                None
            }
            _ => {
                let suppressed = std::mem::take(&mut state.1);
                state.0 = Some(now);
                Some(suppressed)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_rejection_is_logged_and_a_burst_after_it_is_counted() {
        let log = RejectLog::default();
        assert_eq!(log.admit(), Some(0));
        assert_eq!(log.admit(), None);
        assert_eq!(log.admit(), None);
        assert_eq!(log.state.lock().unwrap().1, 2);
    }
}

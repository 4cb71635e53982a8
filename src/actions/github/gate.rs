//! GitHub's rate limits on our side: nothing is sent while GitHub asked us to wait (`retry-after`,
//! or an exhausted `x-ratelimit-remaining` until `x-ratelimit-reset`), and content-creating
//! requests stay under GitHub's secondary limit of 80 a minute.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// GitHub's documented ceiling on content-creating requests per minute.
pub const CONTENT_PER_MINUTE: usize = 80;
/// The window of that ceiling.
pub const CONTENT_WINDOW: Duration = Duration::from_secs(60);

/// Shared by every request of one client.
#[derive(Debug)]
pub struct RateGate {
    state: Mutex<GateState>,
    content_max: usize,
    window: Duration,
}

#[derive(Debug, Default)]
struct GateState {
    /// Nothing is sent before this instant.
    blocked_until: Option<Instant>,
    /// Send times of the content-creating requests of the last window.
    content: VecDeque<Instant>,
}

impl RateGate {
    pub fn new(content_max: usize, window: Duration) -> RateGate {
        RateGate {
            state: Mutex::new(GateState::default()),
            content_max: content_max.max(1),
            window,
        }
    }

    /// Takes a slot for a request sent at `now`, or says how long until one is free.
    pub fn admit(&self, content: bool, now: Instant) -> Result<(), Duration> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = state.blocked_until {
            if until > now {
                return Err(until - now);
            }
            state.blocked_until = None;
        }
        if !content {
            return Ok(());
        }
        while state
            .content
            .front()
            .is_some_and(|sent| now.duration_since(*sent) >= self.window)
        {
            state.content.pop_front();
        }
        if state.content.len() >= self.content_max {
            let oldest = state.content.front().copied().unwrap_or(now);
            return Err((oldest + self.window).saturating_duration_since(now));
        }
        state.content.push_back(now);
        Ok(())
    }

    /// Sends nothing before `until` (extends, never shortens, a block in place).
    pub fn block_until(&self, until: Instant) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.blocked_until.is_none_or(|current| current < until) {
            state.blocked_until = Some(until);
        }
    }

    /// When the current block ends, if one is in place.
    pub fn blocked_until(&self) -> Option<Instant> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .blocked_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn content_requests_are_capped_per_window() {
        let gate = RateGate::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(gate.admit(true, start), Ok(()));
        }
        assert_eq!(gate.admit(true, start), Err(Duration::from_secs(60)));
        assert_eq!(gate.admit(false, start), Ok(()), "reads are not content");
        let later = start + Duration::from_secs(60);
        assert_eq!(gate.admit(true, later), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_block_holds_every_request_until_it_ends() {
        let gate = RateGate::new(80, Duration::from_secs(60));
        let now = Instant::now();
        gate.block_until(now + Duration::from_secs(5));
        gate.block_until(now + Duration::from_secs(2));
        assert_eq!(gate.admit(false, now), Err(Duration::from_secs(5)));
        let after = now + Duration::from_secs(5);
        assert_eq!(gate.admit(false, after), Ok(()));
        assert_eq!(gate.blocked_until(), None);
    }
}

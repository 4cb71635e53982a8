//! The client-side rate budget: one sliding-window limiter per Codegen limit class, shared by
//! everything in the process, so the daemon itself never causes a 429.
//!
//! Time is `tokio::time::Instant`, so tests can run a burst under paused time.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Extra room added to every window: the server counts arrival times, we count send times, and a
/// request sent at the very end of our window may arrive inside the next one of the server's.
const WINDOW_MARGIN: Duration = Duration::from_millis(500);

/// The limit classes of the Codegen API (codegen-api.md §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitClass {
    /// Most endpoints: 60 per 30 s. Endpoints that state no number are counted here too.
    Standard,
    /// Create agent run: 10 per minute.
    Create,
    /// Agent run logs: 60 per 60 s.
    Logs,
    /// Sandbox analyze-logs: 5 per minute.
    AnalyzeLogs,
    /// Setup-commands generate: 5 per minute.
    SetupCommands,
    /// PR edits: 30 per minute.
    PrEdit,
    /// CLI rules: 30 per minute.
    CliRules,
}

impl LimitClass {
    /// Every class, in a fixed order (used for metrics and arrays).
    pub const ALL: [LimitClass; 7] = [
        LimitClass::Standard,
        LimitClass::Create,
        LimitClass::Logs,
        LimitClass::AnalyzeLogs,
        LimitClass::SetupCommands,
        LimitClass::PrEdit,
        LimitClass::CliRules,
    ];

    /// A stable lowercase name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitClass::Standard => "standard",
            LimitClass::Create => "create",
            LimitClass::Logs => "logs",
            LimitClass::AnalyzeLogs => "analyze_logs",
            LimitClass::SetupCommands => "setup_commands",
            LimitClass::PrEdit => "pr_edit",
            LimitClass::CliRules => "cli_rules",
        }
    }

    fn index(self) -> usize {
        match self {
            LimitClass::Standard => 0,
            LimitClass::Create => 1,
            LimitClass::Logs => 2,
            LimitClass::AnalyzeLogs => 3,
            LimitClass::SetupCommands => 4,
            LimitClass::PrEdit => 5,
            LimitClass::CliRules => 6,
        }
    }

    /// The published limit of this class: (requests, per window).
    pub fn published(self) -> Limit {
        let (max, secs) = match self {
            LimitClass::Standard => (60, 30),
            LimitClass::Create => (10, 60),
            LimitClass::Logs => (60, 60),
            LimitClass::AnalyzeLogs | LimitClass::SetupCommands => (5, 60),
            LimitClass::PrEdit | LimitClass::CliRules => (30, 60),
        };
        Limit {
            max,
            window: Duration::from_secs(secs),
        }
    }
}

/// At most `max` requests in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: usize,
    pub window: Duration,
}

/// One sliding window: the send times of the last `max` requests.
#[derive(Debug)]
struct Window {
    limit: Option<Limit>,
    sent: VecDeque<Instant>,
    /// Set after a 429: nothing is sent in this class before it.
    blocked_until: Option<Instant>,
}

/// The answer of one try at the budget.
enum Slot {
    Taken,
    WaitUntil(Instant),
}

/// The process-wide budget. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct RateBudget {
    windows: [Mutex<Window>; 7],
    waits: AtomicU64,
    waited_ms: AtomicU64,
}

impl RateBudget {
    /// The budget with Codegen's published limits.
    pub fn published() -> RateBudget {
        RateBudget::with_limits(|class| Some(class.published()))
    }

    /// No limits at all (benchmarks against a simulator with its limits lifted).
    pub fn unlimited() -> RateBudget {
        RateBudget::with_limits(|_| None)
    }

    /// Custom limits per class; `None` means unlimited.
    pub fn with_limits(limit_of: impl Fn(LimitClass) -> Option<Limit>) -> RateBudget {
        let window = |class: LimitClass| {
            Mutex::new(Window {
                limit: limit_of(class),
                sent: VecDeque::new(),
                blocked_until: None,
            })
        };
        RateBudget {
            windows: LimitClass::ALL.map(window),
            waits: AtomicU64::new(0),
            waited_ms: AtomicU64::new(0),
        }
    }

    /// Waits until one more request of `class` fits in the budget, and counts it as sent.
    pub async fn acquire(&self, class: LimitClass) {
        let started = Instant::now();
        let mut waited = false;
        loop {
            let wake_at = match self.try_acquire(class, Instant::now()) {
                Slot::Taken => break,
                Slot::WaitUntil(at) => at,
            };
            waited = true;
            tokio::time::sleep_until(wake_at).await;
        }
        if waited {
            self.waits.fetch_add(1, Ordering::Relaxed);
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.waited_ms.fetch_add(ms, Ordering::Relaxed);
        }
    }

    /// Takes a slot now, or says when to try again.
    fn try_acquire(&self, class: LimitClass, now: Instant) -> Slot {
        let mut window = lock(&self.windows[class.index()]);
        if let Some(until) = window.blocked_until {
            if until > now {
                return Slot::WaitUntil(until);
            }
            window.blocked_until = None;
        }
        let Some(limit) = window.limit else {
            return Slot::Taken;
        };
        let span = limit.window + WINDOW_MARGIN;
        while window
            .sent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= span)
        {
            window.sent.pop_front();
        }
        match window.sent.front() {
            Some(&oldest) if window.sent.len() >= limit.max => Slot::WaitUntil(oldest + span),
            _ => {
                window.sent.push_back(now);
                Slot::Taken
            }
        }
    }

    /// After a 429 anyway (another client shares the token, say): hold the whole class back.
    pub fn block_for(&self, class: LimitClass, wait: Duration) {
        let until = Instant::now() + wait;
        let mut window = lock(&self.windows[class.index()]);
        if window.blocked_until.is_none_or(|t| t < until) {
            window.blocked_until = Some(until);
        }
    }

    /// How many requests had to wait, and for how long in total (for metrics).
    pub fn wait_stats(&self) -> (u64, Duration) {
        (
            self.waits.load(Ordering::Relaxed),
            Duration::from_millis(self.waited_ms.load(Ordering::Relaxed)),
        )
    }
}

fn lock(m: &Mutex<Window>) -> std::sync::MutexGuard<'_, Window> {
    // A panic while holding this lock cannot leave the window inconsistent: keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn standard_class_allows_sixty_then_waits_a_window() {
        let budget = RateBudget::published();
        let start = Instant::now();
        for _ in 0..60 {
            budget.acquire(LimitClass::Standard).await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        budget.acquire(LimitClass::Standard).await;
        assert!(start.elapsed() >= Duration::from_secs(30));
        assert_eq!(budget.wait_stats().0, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn classes_are_independent() {
        let budget = RateBudget::published();
        for _ in 0..5 {
            budget.acquire(LimitClass::AnalyzeLogs).await;
        }
        let start = Instant::now();
        budget.acquire(LimitClass::Standard).await;
        assert_eq!(start.elapsed(), Duration::ZERO);
        budget.acquire(LimitClass::AnalyzeLogs).await;
        assert!(start.elapsed() >= Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn a_block_holds_the_class_back() {
        let budget = RateBudget::unlimited();
        budget.block_for(LimitClass::Create, Duration::from_secs(9));
        let start = Instant::now();
        budget.acquire(LimitClass::Create).await;
        assert!(start.elapsed() >= Duration::from_secs(9));
    }
}

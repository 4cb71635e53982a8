//! Step reports: what became of each step (done, retrying, failed, skipped, waiting), sent on an
//! optional broadcast feed for whoever watches the executor work (the demo's live feed).
//!
//! A report is made only while someone listens, waits in the job until the save that makes its
//! outcome durable, and is sent right after that save; if the save fails or finds the job closed,
//! it is dropped with it. So a report never announces an outcome the store does not hold, and
//! watching changes nothing the executor does or records.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::worker::{JobRun, Shared};

/// What became of one step, once it is in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct StepReport {
    pub job_id: u64,
    pub rule: String,
    /// The event that fired the rule.
    pub event_id: String,
    /// 0-based index of the step in its job.
    pub index: usize,
    /// How many steps the job has.
    pub total: usize,
    /// The step's `id`, when the rule gave it one.
    pub step_id: Option<String>,
    pub action: String,
    /// Attempts counted so far (0 when the step never got to one).
    pub attempts: u32,
    pub outcome: StepOutcome,
    /// How long the attempt that decided the outcome took; `None` when no action was called.
    pub duration: Option<Duration>,
    /// When the outcome was decided, on the executor's clock.
    pub at: DateTime<Utc>,
}

/// A step's outcome as reported.
#[derive(Debug, Clone, PartialEq)]
pub enum StepOutcome {
    /// The action succeeded (or the awaited run is terminal).
    Done,
    /// Its `when` was false.
    Skipped,
    /// The attempt failed; another one is due at `retry_at`, `retry_in` from the failure.
    Retrying {
        error: String,
        max_attempts: u32,
        retry_at: DateTime<Utc>,
        retry_in: Duration,
    },
    /// The step gave up: the job went to the dead letters (`dead`), or goes on because of
    /// `continue_on_error`.
    Failed { error: String, dead: bool },
    /// Parked until run `org/run` is terminal, `until` at the latest.
    Waiting {
        org: i64,
        run: i64,
        until: DateTime<Utc>,
    },
}

impl Shared {
    /// Notes the outcome of step `index` for the feed; it is sent once saved. Free when nobody
    /// listens.
    pub(super) fn report(&self, job: &mut JobRun, index: usize, outcome: StepOutcome) {
        let duration = job.last_attempt.take();
        let Some(feed) = &self.step_feed else {
            return;
        };
        if feed.receiver_count() == 0 {
            return;
        }
        let step = job.spec.steps.get(index);
        job.reports.push(StepReport {
            job_id: job.record.id,
            rule: job.record.rule.clone(),
            event_id: job.record.event_id.clone(),
            index,
            total: job.spec.steps.len(),
            step_id: step.and_then(|s| s.id.clone()),
            action: step.map(|s| s.action.clone()).unwrap_or_default(),
            attempts: job.progress.step(index).map_or(0, |s| s.attempts),
            outcome,
            duration,
            at: self.clock.now(),
        });
    }

    /// Sends the reports the last save made durable (a send with no listener left is fine).
    pub(super) fn publish(&self, job: &mut JobRun) {
        let reports = std::mem::take(&mut job.reports);
        if let Some(feed) = &self.step_feed {
            for report in reports {
                let _ = feed.send(report);
            }
        }
    }
}

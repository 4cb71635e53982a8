//! Operator actions on stored jobs (the `jobs` commands): summaries, sending a dead letter back
//! to the queue, and dropping a job.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::job::{parse_spec, Progress, StepStatus};
use crate::store::{JobRecord, JobState, JobUpdate, Store, StoreError};

/// What an operator sees of a job in a listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobSummary {
    pub id: u64,
    pub rule: String,
    pub key: String,
    pub event_id: String,
    pub state: JobState,
    pub created_at: DateTime<Utc>,
    /// 1-based index of the current step (steps + 1 when finished).
    pub step: usize,
    pub steps: usize,
    /// The current step's action.
    pub action: Option<String>,
    pub attempts: u32,
    /// Why it is dead, or the current step's last error.
    pub error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// `org/run` a parked job waits for.
    pub waiting_for: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Summarizes a job, whatever state its data is in.
pub fn summarize(job: &JobRecord) -> JobSummary {
    let progress = Progress::of(&job.data).unwrap_or_default();
    let spec = parse_spec(&job.data).ok();
    let steps = spec.as_ref().map_or(0, |s| s.steps.len());
    let current = progress.step(progress.step);
    JobSummary {
        id: job.id,
        rule: job.rule.clone(),
        key: job.key.clone(),
        event_id: job.event_id.clone(),
        state: job.state,
        created_at: job.created_at,
        step: progress.step + 1,
        steps,
        action: spec
            .as_ref()
            .and_then(|s| s.steps.get(progress.step))
            .map(|s| s.action.clone()),
        attempts: current.map_or(0, |s| s.attempts),
        error: progress
            .error
            .clone()
            .or_else(|| current.and_then(|s| s.error.clone())),
        next_attempt_at: progress.next_attempt_at,
        waiting_for: progress.waiting_for.map(|w| format!("{}/{}", w.org, w.run)),
        finished_at: progress.finished_at,
    }
}

/// Why an operator action was refused.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no job {0}")]
    NotFound(u64),
    #[error("job {id} is {state:?}, not a dead letter; only dead letters can be retried")]
    NotDead { id: u64, state: JobState },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Open jobs, or with `dead` the dead letters, by id.
pub fn list(store: &Store, dead: bool) -> Result<Vec<JobRecord>, StoreError> {
    if !dead {
        return store.open_jobs();
    }
    store
        .jobs()
        .filter(|job| !matches!(job, Ok(job) if job.state != JobState::Dead))
        .collect()
}

/// Sends a dead letter back to the queue: the step it died on starts over with fresh attempts
/// and the same parameters and idempotency key, so effects it may already have had are still
/// checked for. An action that cannot check (analyze-logs) is sent again: the operator decided.
pub fn retry(store: &Store, id: u64) -> Result<JobRecord, AdminError> {
    let update = store.update_job(id, |job| {
        if job.state != JobState::Dead {
            return None;
        }
        let mut progress = Progress::of(&job.data).unwrap_or_default();
        let action = parse_spec(&job.data)
            .ok()
            .and_then(|spec| spec.steps.get(progress.step).map(|s| s.action.clone()));
        progress.error = None;
        progress.finished_at = None;
        progress.next_attempt_at = None;
        progress.waiting_for = None;
        progress.retried += 1;
        let index = progress.step;
        if let Some(step) = progress.steps.get_mut(index) {
            step.status = if step.params.is_some() {
                StepStatus::Retrying
            } else {
                StepStatus::Pending
            };
            step.attempts = 0;
            step.finished_at = None;
            step.wait_until = None;
            if action.as_deref() == Some("codegen.analyze_logs") {
                step.uncertain = false;
            }
        }
        let mut next = job.clone();
        super::job::store_progress(&mut next.data, &progress);
        next.state = JobState::Pending;
        Some(next)
    })?;
    match update {
        JobUpdate::Updated(job) => Ok(job),
        JobUpdate::Missing => Err(AdminError::NotFound(id)),
        JobUpdate::Unchanged(job) => Err(AdminError::NotDead {
            id,
            state: job.state,
        }),
    }
}

/// Deletes a job, whatever its state.
pub fn drop_job(store: &Store, id: u64) -> Result<JobRecord, AdminError> {
    let job = store.job(id)?.ok_or(AdminError::NotFound(id))?;
    let removed = store.transaction(|tx| tx.remove_job(id))?;
    if !removed {
        return Err(AdminError::NotFound(id));
    }
    Ok(job)
}

/// Jobs per state, for status pages (a full scan of the jobs tree).
pub fn counts(store: &Store) -> Result<JobCounts, StoreError> {
    let mut counts = JobCounts::default();
    for job in store.jobs() {
        match job?.state {
            JobState::Pending => counts.pending += 1,
            JobState::Running => counts.running += 1,
            JobState::Waiting => counts.waiting += 1,
            JobState::Done => counts.done += 1,
            JobState::Dead => counts.dead += 1,
        }
    }
    Ok(counts)
}

/// How many jobs are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    pub pending: u64,
    pub running: u64,
    pub waiting: u64,
    pub done: u64,
    pub dead: u64,
}

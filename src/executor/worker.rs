//! Driving one job: its steps in order, each attempt recorded and flushed before its effect
//! starts, its outcome recorded (and flushed, at the latest together with the next step's start)
//! after; retries, dead letters, `when`, `continue_on_error` and the durable wait for a run.
//!
//! A step found `Running` when a job is loaded was cut off mid-attempt (a crash or an abort):
//! the attempt counts, and an effectful action is told it may already have acted.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use minijinja::Environment;
use serde_json::Value;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::job::{
    parse_spec, store_progress, template_context, JobSpec, Progress, StepSpec, StepStatus,
};
use super::report::{StepOutcome, StepReport};
use crate::actions::{self, ActionError, ActionSpec, Actions, StepCall};
use crate::clock::Clock;
use crate::retry::RetryPolicy;
use crate::store::{JobRecord, JobState, JobUpdate, Store, StoreError};
use crate::template;

/// The action that parks a job instead of calling anything.
pub(super) const WAIT_FOR_RUN: &str = "codegen.wait_for_run";

/// Where a worker left a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The job is no longer open: done, dead-lettered or gone.
    Closed,
    /// A retry is due then.
    RetryAt(DateTime<Utc>),
    /// Parked until the run changes, or `recheck_at` at the latest.
    Parked {
        org: i64,
        run: i64,
        recheck_at: DateTime<Utc>,
    },
    /// Stopped between two steps for shutdown; due at once on the next start.
    Stopped,
}

/// What every worker shares.
pub struct Shared {
    pub store: Store,
    pub actions: Actions,
    pub clock: Arc<dyn Clock>,
    pub env: Environment<'static>,
    pub policy: RetryPolicy,
    /// This store's executor id, part of every idempotency key.
    pub instance: String,
    pub cancel: CancellationToken,
    /// Where step outcomes are reported once saved, when someone watches.
    pub step_feed: Option<broadcast::Sender<StepReport>>,
}

/// A job being driven, with its parsed data.
pub(super) struct JobRun {
    pub(super) record: JobRecord,
    pub(super) spec: JobSpec,
    pub(super) progress: Progress,
    /// How long the last attempt took, until its outcome is reported.
    pub(super) last_attempt: Option<Duration>,
    /// Outcomes to report once the next save made them durable.
    pub(super) reports: Vec<StepReport>,
}

/// After one move: go on with the next, or hand the job back.
pub(super) enum Flow {
    Continue,
    Stop(Outcome),
}

impl Shared {
    /// The idempotency key of step `index` of job `id`: the same on every attempt and restart.
    pub fn step_key(&self, id: u64, index: usize) -> String {
        format!("{}-{id}-{index}", self.instance)
    }

    /// Runs job `id` until it finishes, waits, or the executor stops.
    pub async fn drive(&self, id: u64) -> Result<Outcome, StoreError> {
        let Some(record) = self.store.job(id)? else {
            return Ok(Outcome::Closed);
        };
        if !record.state.is_open() {
            return Ok(Outcome::Closed);
        }
        let progress = Progress::of(&record.data);
        let spec = parse_spec(&record.data);
        let (spec, progress) = match (spec, progress) {
            (Ok(spec), Ok(progress)) => (spec, progress),
            (Err(message), _) => return self.bury_unreadable(record, message).await,
            (_, Err(e)) => {
                let message = format!("unreadable job progress: {e}");
                return self.bury_unreadable(record, message).await;
            }
        };
        let mut job = JobRun {
            record,
            spec,
            progress,
            last_attempt: None,
            reports: Vec::new(),
        };
        loop {
            if let Flow::Stop(outcome) = self.advance(&mut job).await? {
                return Ok(outcome);
            }
        }
    }

    /// One move of the job: finish it, or settle, prepare and attempt its current step.
    async fn advance(&self, job: &mut JobRun) -> Result<Flow, StoreError> {
        let index = job.progress.step;
        let Some(step) = job.spec.steps.get(index).cloned() else {
            return self.finish(job).await;
        };
        let Some(action) = actions::action(&step.action) else {
            let err = ActionError::permanent(format!("unknown action {:?}", step.action));
            return self.fail(job, index, &step, err).await;
        };
        let status = job.progress.step_mut(index).status;
        match status {
            StepStatus::Done | StepStatus::Skipped | StepStatus::Failed => {
                job.progress.step += 1;
                return Ok(Flow::Continue);
            }
            StepStatus::Pending => {
                if self.cancel.is_cancelled() {
                    return self.pause(job).await;
                }
                if let Some(flow) = self.prepare(job, index, &step, action).await? {
                    return Ok(flow);
                }
            }
            StepStatus::Running => {
                // Cut off mid-attempt: whatever it sent may have acted.
                let record = job.progress.step_mut(index);
                record.uncertain |= action.effectful;
                tracing::info!(
                    job = job.record.id,
                    step = index,
                    action = action.name,
                    "Resuming a step whose last attempt was cut off"
                );
            }
            StepStatus::Retrying | StepStatus::Waiting => {}
        }
        if self.cancel.is_cancelled() {
            return self.pause(job).await;
        }
        if action.name == WAIT_FOR_RUN {
            return self.wait_step(job, index, &step).await;
        }
        self.attempt(job, index, &step, action).await
    }

    /// Evaluates `when` and renders the parameters of a step that has not started. Returns the
    /// flow when the step is settled here (skipped or failed).
    async fn prepare(
        &self,
        job: &mut JobRun,
        index: usize,
        step: &StepSpec,
        action: &'static ActionSpec,
    ) -> Result<Option<Flow>, StoreError> {
        let ctx = template_context(&job.spec, &job.progress);
        if let Some(condition) = step.when.as_deref().filter(|c| !c.trim().is_empty()) {
            match template::eval_bool(&self.env, condition, &ctx) {
                Ok(true) => {}
                Ok(false) => {
                    let record = job.progress.step_mut(index);
                    record.status = StepStatus::Skipped;
                    record.finished_at = Some(self.clock.now());
                    job.progress.step += 1;
                    self.report(job, index, StepOutcome::Skipped);
                    return Ok(Some(Flow::Continue));
                }
                Err(e) => {
                    let err = ActionError::permanent(format!("`when`: {e}"));
                    return self.fail(job, index, step, err).await.map(Some);
                }
            }
        }
        let raw = Value::Object(step.with.clone());
        let rendered = match template::render_value(&self.env, &raw, &ctx) {
            Ok(Value::Object(map)) => map,
            Ok(_) => serde_json::Map::new(),
            Err(e) => {
                let err = ActionError::permanent(format!("rendering `with`: {e}"));
                return self.fail(job, index, step, err).await.map(Some);
            }
        };
        match actions::prepare(action, &rendered) {
            Ok(params) => {
                job.progress.step_mut(index).params = Some(params);
                Ok(None)
            }
            Err(e) => {
                let err = ActionError::permanent(e.to_string());
                self.fail(job, index, step, err).await.map(Some)
            }
        }
    }

    /// One attempt: recorded and flushed, performed, and its outcome applied.
    async fn attempt(
        &self,
        job: &mut JobRun,
        index: usize,
        step: &StepSpec,
        action: &'static ActionSpec,
    ) -> Result<Flow, StoreError> {
        let now = self.clock.now();
        let record = job.progress.step_mut(index);
        record.attempts += 1;
        record.status = StepStatus::Running;
        record.started_at.get_or_insert(now);
        let params = record.params.clone().unwrap_or_default();
        let uncertain = record.uncertain;
        job.progress.next_attempt_at = None;
        job.progress.waiting_for = None;
        job.record.state = JobState::Running;
        if !self.save(job, true).await? {
            return Ok(Flow::Stop(Outcome::Closed));
        }
        let key = self.step_key(job.record.id, index);
        let call = StepCall {
            action,
            params: &params,
            context: &job.spec.context,
            key: &key,
            uncertain,
            job_id: job.record.id,
            rule: &job.record.rule,
        };
        let started = tokio::time::Instant::now();
        let result = self.actions.execute(&call).await;
        job.last_attempt = Some(started.elapsed());
        match result {
            Ok(output) => {
                self.complete(job, index, output);
                count_step(action.name, "ok");
                Ok(Flow::Continue)
            }
            Err(err) => self.attempt_failed(job, index, step, err).await,
        }
    }

    pub(super) fn complete(&self, job: &mut JobRun, index: usize, output: Value) {
        let first_effect = !job
            .progress
            .steps
            .iter()
            .any(|s| s.status == StepStatus::Done);
        if first_effect {
            // From the observation that fired the rule to its first effect.
            let latency = (self.clock.now() - job.record.created_at)
                .to_std()
                .unwrap_or_default();
            metrics::histogram!(crate::metrics::TRANSITION_TO_ACTION_SECONDS)
                .record(latency.as_secs_f64());
        }
        let record = job.progress.step_mut(index);
        record.status = StepStatus::Done;
        record.output = Some(output);
        record.error = None;
        record.finished_at = Some(self.clock.now());
        job.progress.step += 1;
        self.report(job, index, StepOutcome::Done);
    }

    async fn attempt_failed(
        &self,
        job: &mut JobRun,
        index: usize,
        step: &StepSpec,
        err: ActionError,
    ) -> Result<Flow, StoreError> {
        let policy = step.policy(self.policy);
        let record = job.progress.step_mut(index);
        if err.not_sent {
            record.attempts = record.attempts.saturating_sub(1);
        }
        record.uncertain |= err.maybe_applied;
        record.error = Some(err.message.clone());
        if err.is_permanent() || record.attempts >= policy.max_attempts {
            return self.fail(job, index, step, err).await;
        }
        let attempts = record.attempts;
        record.status = StepStatus::Retrying;
        let delay = policy.delay(attempts.max(1), err.retry_after);
        let at =
            self.clock.now() + chrono::Duration::from_std(delay).unwrap_or(chrono::TimeDelta::MAX);
        job.progress.next_attempt_at = Some(at);
        job.record.state = JobState::Waiting;
        let outcome = StepOutcome::Retrying {
            error: err.message.clone(),
            max_attempts: policy.max_attempts,
            retry_at: at,
            retry_in: delay,
        };
        self.report(job, index, outcome);
        if !self.save(job, true).await? {
            return Ok(Flow::Stop(Outcome::Closed));
        }
        tracing::warn!(
            job = job.record.id, rule = %job.record.rule, step = index, action = %step.action,
            attempt = attempts, retry_in_ms = delay.as_millis() as u64, error = %err,
            "Step failed; retrying"
        );
        count_step(&step.action, "retry");
        Ok(Flow::Stop(Outcome::RetryAt(at)))
    }

    /// The step gives up: the job goes on (`continue_on_error`) or to the dead letters.
    pub(super) async fn fail(
        &self,
        job: &mut JobRun,
        index: usize,
        step: &StepSpec,
        err: ActionError,
    ) -> Result<Flow, StoreError> {
        let now = self.clock.now();
        let record = job.progress.step_mut(index);
        record.status = StepStatus::Failed;
        record.error = Some(err.message.clone());
        record.finished_at = Some(now);
        count_step(&step.action, "failed");
        let outcome = StepOutcome::Failed {
            error: err.message.clone(),
            dead: !step.continue_on_error,
        };
        self.report(job, index, outcome);
        if step.continue_on_error {
            tracing::warn!(job = job.record.id, rule = %job.record.rule, step = index, action = %step.action, error = %err, "Step failed; continuing (continue_on_error)");
            job.progress.step += 1;
            return Ok(Flow::Continue);
        }
        let message = format!("step {} ({}): {}", index + 1, step.action, err.message);
        tracing::error!(job = job.record.id, rule = %job.record.rule, error = %message, "Job moved to the dead letters");
        job.progress.error = Some(message);
        self.close(job, JobState::Dead, now).await
    }

    async fn finish(&self, job: &mut JobRun) -> Result<Flow, StoreError> {
        let now = self.clock.now();
        tracing::debug!(job = job.record.id, rule = %job.record.rule, "Job done");
        self.close(job, JobState::Done, now).await
    }

    async fn close(
        &self,
        job: &mut JobRun,
        state: JobState,
        now: DateTime<Utc>,
    ) -> Result<Flow, StoreError> {
        job.record.state = state;
        job.progress.finished_at = Some(now);
        job.progress.next_attempt_at = None;
        job.progress.waiting_for = None;
        self.save(job, true).await?;
        let outcome = if state == JobState::Done {
            "done"
        } else {
            "dead"
        };
        metrics::counter!("sentinel_jobs_finished_total", "outcome" => outcome).increment(1);
        Ok(Flow::Stop(Outcome::Closed))
    }

    /// Leaves the job between two steps for shutdown.
    async fn pause(&self, job: &mut JobRun) -> Result<Flow, StoreError> {
        job.record.state = JobState::Pending;
        self.save(job, true).await?;
        Ok(Flow::Stop(Outcome::Stopped))
    }

    /// Writes the job as it stands; false when it was closed or dropped meanwhile. With
    /// `flush`, it is durable on return.
    pub(super) async fn save(&self, job: &mut JobRun, flush: bool) -> Result<bool, StoreError> {
        store_progress(&mut job.record.data, &job.progress);
        let record = &job.record;
        let update = self.store.update_job(record.id, |current| {
            current.state.is_open().then(|| record.clone())
        })?;
        match update {
            JobUpdate::Updated(_) => {}
            JobUpdate::Missing | JobUpdate::Unchanged(_) => {
                tracing::info!(
                    job = record.id,
                    "Job was closed or dropped meanwhile; leaving it"
                );
                // Those outcomes were not recorded: nothing to report.
                job.reports.clear();
                return Ok(false);
            }
        }
        if flush {
            self.store.flush().await?;
            self.publish(job);
        }
        Ok(true)
    }

    /// A job whose data cannot be read goes to the dead letters with the reason.
    async fn bury_unreadable(
        &self,
        mut record: JobRecord,
        message: String,
    ) -> Result<Outcome, StoreError> {
        tracing::error!(job = record.id, rule = %record.rule, error = %message, "Job moved to the dead letters");
        let mut progress = Progress::of(&record.data).unwrap_or_default();
        progress.error = Some(message);
        progress.finished_at = Some(self.clock.now());
        store_progress(&mut record.data, &progress);
        record.state = JobState::Dead;
        let dead = record.clone();
        self.store.update_job(record.id, |current| {
            current.state.is_open().then(|| dead.clone())
        })?;
        self.store.flush().await?;
        Ok(Outcome::Closed)
    }
}

/// Counts a step's attempt outcome (`ok`, `retry`, `failed`).
pub(super) fn count_step(action: &str, outcome: &'static str) {
    metrics::counter!(crate::metrics::ACTIONS, "action" => action.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// How long after a store failure a job is tried again.
pub const STORE_ERROR_BACKOFF: Duration = Duration::from_secs(30);

//! `codegen.wait_for_run`: whether the awaited run is terminal yet.
//!
//! The store is the first source: the poller records every status it sees and publishes an
//! event after each flush, which wakes the parked job at once. A run the store does not hold
//! (an organization nobody polls) is read from the API, at a slow cadence. Looking does not
//! count as an attempt; the step fails at its deadline.

use std::time::Duration;

use serde_json::Value;

use super::job::{StepSpec, StepStatus, WaitTarget, DEFAULT_WAIT_TIMEOUT};
use super::report::StepOutcome;
use super::worker::{count_step, Flow, JobRun, Outcome, Shared, WAIT_FOR_RUN};
use crate::actions::codegen::{target_org, target_run};
use crate::actions::ActionError;
use crate::api::{CodegenClient, OrgId, RunId, RunStatus};
use crate::store::{JobState, Store, StoreError};

/// How often a parked job re-reads the store even without an event (events can be missed
/// when the feed overflows; a re-check costs one local read).
pub const RECHECK_TRACKED: Duration = Duration::from_secs(5 * 60);
/// How often a run the poller does not track is read from the API.
pub const RECHECK_UNTRACKED: Duration = Duration::from_secs(60);

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub enum RunCheck {
    /// The run is terminal: this is the run, as the API returned it.
    Terminal(Value),
    /// Not yet; `tracked` when the poller records the run (events will wake the job).
    NotYet { tracked: bool },
}

impl RunCheck {
    /// When to look again without an event.
    pub fn recheck(&self) -> Duration {
        match self {
            RunCheck::NotYet { tracked: false } => RECHECK_UNTRACKED,
            RunCheck::NotYet { tracked: true } | RunCheck::Terminal(_) => RECHECK_TRACKED,
        }
    }
}

/// Looks at the run in the store, else asks the API.
pub async fn check_run(
    store: &Store,
    client: &CodegenClient,
    org: OrgId,
    run: RunId,
) -> Result<RunCheck, ActionError> {
    let stored = store
        .get_run(org.0, run.0)
        .map_err(|e| ActionError::transient(format!("reading the run from the store: {e}")))?;
    if let Some(record) = stored {
        let terminal = record
            .status
            .as_deref()
            .is_some_and(|s| RunStatus::parse(s).is_terminal());
        return Ok(if terminal {
            RunCheck::Terminal(record.raw)
        } else {
            RunCheck::NotYet { tracked: true }
        });
    }
    let current = client
        .get_run(org, run)
        .await
        .map_err(ActionError::from_api)?;
    if current.status.as_ref().is_some_and(RunStatus::is_terminal) {
        let raw = serde_json::to_value(&current)
            .map_err(|e| ActionError::permanent(format!("encoding the run: {e}")))?;
        return Ok(RunCheck::Terminal(raw));
    }
    Ok(RunCheck::NotYet { tracked: false })
}

impl Shared {
    /// `codegen.wait_for_run`: done when the run is terminal, parked until then, failed at the
    /// deadline. Looking does not count as an attempt.
    pub(super) async fn wait_step(
        &self,
        job: &mut JobRun,
        index: usize,
        step: &StepSpec,
    ) -> Result<Flow, StoreError> {
        let params = job
            .progress
            .step_mut(index)
            .params
            .clone()
            .unwrap_or_default();
        let target = target_org(&params, &job.spec.context)
            .and_then(|org| Ok((org, target_run(&params, &job.spec.context)?)));
        let (org, run) = match target {
            Ok(target) => target,
            Err(err) => return self.fail(job, index, step, err).await,
        };
        let timeout = params
            .get("timeout")
            .and_then(Value::as_str)
            .and_then(|t| humantime::parse_duration(t).ok())
            .unwrap_or(DEFAULT_WAIT_TIMEOUT);
        let now = self.clock.now();
        let deadline = *job.progress.step_mut(index).wait_until.get_or_insert(
            now + chrono::Duration::from_std(timeout).unwrap_or(chrono::TimeDelta::MAX),
        );
        let check = match check_run(&self.store, &self.actions.codegen, org, run).await {
            Ok(check) => check,
            Err(err) if err.is_permanent() => return self.fail(job, index, step, err).await,
            Err(err) => {
                tracing::warn!(job = job.record.id, run = run.0, error = %err, "Cannot read the awaited run; looking again later");
                RunCheck::NotYet { tracked: false }
            }
        };
        match check {
            RunCheck::Terminal(run_json) => {
                self.complete(job, index, run_json);
                count_step(WAIT_FOR_RUN, "ok");
                Ok(Flow::Continue)
            }
            RunCheck::NotYet { .. } if now >= deadline => {
                let err = ActionError::permanent(format!(
                    "run {} was not terminal within {}",
                    run.0,
                    humantime::format_duration(timeout)
                ));
                self.fail(job, index, step, err).await
            }
            check @ RunCheck::NotYet { .. } => {
                let target = WaitTarget {
                    org: org.0,
                    run: run.0,
                    deadline,
                };
                let unchanged = job.record.state == JobState::Waiting
                    && job.progress.waiting_for == Some(target)
                    && job.progress.step_mut(index).status == StepStatus::Waiting;
                if !unchanged {
                    job.progress.step_mut(index).status = StepStatus::Waiting;
                    job.progress.waiting_for = Some(target);
                    job.progress.next_attempt_at = None;
                    job.record.state = JobState::Waiting;
                    let outcome = StepOutcome::Waiting {
                        org: org.0,
                        run: run.0,
                        until: deadline,
                    };
                    self.report(job, index, outcome);
                    if !self.save(job, true).await? {
                        return Ok(Flow::Stop(Outcome::Closed));
                    }
                }
                let recheck = now
                    + chrono::Duration::from_std(check.recheck()).unwrap_or(chrono::TimeDelta::MAX);
                Ok(Flow::Stop(Outcome::Parked {
                    org: org.0,
                    run: run.0,
                    recheck_at: recheck.min(deadline),
                }))
            }
        }
    }
}

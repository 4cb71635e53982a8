//! The shape of `JobRecord.data`: what the rules engine writes (version, rule, context, steps,
//! contracts.md) and the `progress` the executor keeps beside it, step by step.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::retry::RetryPolicy;

/// The job data layout this build reads and writes.
pub const JOB_DATA_VERSION: u64 = 1;

/// The engine's part of the job data (read-only here).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JobSpec {
    pub version: u64,
    #[serde(default)]
    pub rules_hash: String,
    #[serde(default)]
    pub rule: Value,
    /// What templates see (`event`, `run`, `pr`, `payload`, `vars`, `rule`, `now`, `summary`).
    #[serde(default)]
    pub context: Value,
    pub steps: Vec<StepSpec>,
}

/// One step as copied from the rule when the job was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepSpec {
    #[serde(default)]
    pub id: Option<String>,
    pub action: String,
    /// Raw values; strings may be templates.
    #[serde(default)]
    pub with: Map<String, Value>,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub continue_on_error: bool,
    #[serde(default)]
    pub retry: Option<StepRetry>,
}

/// A step's own retry policy; absent fields keep the executor's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRetry {
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// First backoff ceiling, a humantime duration.
    #[serde(default)]
    pub backoff: Option<String>,
    /// Largest backoff, a humantime duration.
    #[serde(default)]
    pub cap: Option<String>,
}

impl StepSpec {
    /// The executor's default policy with this step's overrides.
    pub fn policy(&self, default: RetryPolicy) -> RetryPolicy {
        let Some(retry) = &self.retry else {
            return default;
        };
        let duration = |text: &Option<String>| {
            text.as_deref()
                .and_then(|t| humantime::parse_duration(t.trim()).ok())
        };
        RetryPolicy {
            max_attempts: retry.max_attempts.unwrap_or(default.max_attempts).max(1),
            base: duration(&retry.backoff).unwrap_or(default.base),
            cap: duration(&retry.cap).unwrap_or(default.cap),
        }
    }
}

/// Where a step stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started: `when` not evaluated, parameters not rendered.
    Pending,
    /// An attempt was recorded as started and its outcome was not (yet) recorded: if the job is
    /// found like this after a restart, the attempt was cut off and may have acted.
    Running,
    /// The last attempt failed; the next one is due at the job's `next_attempt_at`.
    Retrying,
    /// Parked until a run is terminal (`codegen.wait_for_run`).
    Waiting,
    /// Finished with an output.
    Done,
    /// `when` was false.
    Skipped,
    /// Gave up; the job went on only because of `continue_on_error`.
    Failed,
}

impl StepStatus {
    /// The step will not run again.
    pub fn is_final(self) -> bool {
        match self {
            StepStatus::Done | StepStatus::Skipped | StepStatus::Failed => true,
            StepStatus::Pending
            | StepStatus::Running
            | StepStatus::Retrying
            | StepStatus::Waiting => false,
        }
    }
}

/// The durable record of one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepProgress {
    pub status: StepStatus,
    /// The rendered, coerced parameters: fixed once the step starts, so every attempt sends
    /// the same thing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// The last failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A previous attempt may have acted: check the target before acting again.
    #[serde(default)]
    pub uncertain: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// `codegen.wait_for_run`: the run must be terminal by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_until: Option<DateTime<Utc>>,
}

impl Default for StepProgress {
    fn default() -> Self {
        StepProgress {
            status: StepStatus::Pending,
            params: None,
            attempts: 0,
            output: None,
            error: None,
            uncertain: false,
            started_at: None,
            finished_at: None,
            wait_until: None,
        }
    }
}

/// The run a parked job waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitTarget {
    pub org: i64,
    pub run: i64,
    pub deadline: DateTime<Utc>,
}

/// The executor's part of the job data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Index of the step in progress (= the number of steps when the job is finished).
    #[serde(default)]
    pub step: usize,
    /// One entry per step reached so far.
    #[serde(default)]
    pub steps: Vec<StepProgress>,
    /// A retry is due then (state `Waiting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Parked on a run (state `Waiting`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<WaitTarget>,
    /// Why the job is a dead letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// How many times an operator sent the job back from the dead letters.
    #[serde(default)]
    pub retried: u32,
}

impl Progress {
    /// The stored progress of a job's data (empty for a new job).
    pub fn of(data: &Value) -> Result<Progress, serde_json::Error> {
        match data.get("progress") {
            None | Some(Value::Null) => Ok(Progress::default()),
            Some(value) => Progress::deserialize(value),
        }
    }

    /// The record of step `index`, created when first reached.
    pub fn step_mut(&mut self, index: usize) -> &mut StepProgress {
        if self.steps.len() <= index {
            self.steps.resize_with(index + 1, StepProgress::default);
        }
        &mut self.steps[index]
    }

    pub fn step(&self, index: usize) -> Option<&StepProgress> {
        self.steps.get(index)
    }
}

/// Reads the engine's part of a job's data; a version from a newer build is refused.
pub fn parse_spec(data: &Value) -> Result<JobSpec, String> {
    let spec = JobSpec::deserialize(data).map_err(|e| format!("unreadable job data: {e}"))?;
    if spec.version > JOB_DATA_VERSION {
        return Err(format!(
            "job data version {} is newer than this build understands ({JOB_DATA_VERSION})",
            spec.version
        ));
    }
    Ok(spec)
}

/// Writes `progress` into a job's data.
pub fn store_progress(data: &mut Value, progress: &Progress) {
    let encoded = serde_json::to_value(progress).unwrap_or(Value::Null);
    match data {
        Value::Object(map) => {
            map.insert("progress".to_owned(), encoded);
        }
        other => {
            let mut map = Map::new();
            map.insert("progress".to_owned(), encoded);
            *other = Value::Object(map);
        }
    }
}

/// `steps.<id>` for templates: the outputs of finished steps that have an id.
pub fn outputs(spec: &JobSpec, progress: &Progress) -> Map<String, Value> {
    let mut out = Map::new();
    for (step, record) in spec.steps.iter().zip(&progress.steps) {
        if let (Some(id), StepStatus::Done) = (&step.id, record.status) {
            out.insert(id.clone(), record.output.clone().unwrap_or(Value::Null));
        }
    }
    out
}

/// The template context of a step: the job's context plus `steps`.
pub fn template_context(spec: &JobSpec, progress: &Progress) -> Value {
    let mut ctx = match &spec.context {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    ctx.insert("steps".to_owned(), Value::Object(outputs(spec, progress)));
    Value::Object(ctx)
}

/// `wait_for_run`'s default patience.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_contract_shape_is_read_and_progress_round_trips() {
        let mut data = json!({
            "version": 1, "rules_hash": "h", "rule": {"name": "r", "description": null},
            "context": {"run": {"id": 5}},
            "steps": [
                {"id": "logs", "action": "codegen.fetch_logs", "with": {"limit": 50},
                 "when": null, "continue_on_error": false,
                 "retry": {"max_attempts": 2, "backoff": "2s", "cap": "1m"}},
                {"id": null, "action": "log", "with": {"message": "x"}}
            ],
        });
        let spec = parse_spec(&data).unwrap();
        assert_eq!(spec.steps.len(), 2);
        let policy = spec.steps[0].policy(RetryPolicy::default());
        assert_eq!(policy.max_attempts, 2);
        assert_eq!(policy.base, Duration::from_secs(2));
        assert_eq!(policy.cap, Duration::from_secs(60));
        assert_eq!(spec.steps[1].policy(RetryPolicy::never()).max_attempts, 1);

        let mut progress = Progress::of(&data).unwrap();
        assert_eq!(progress, Progress::default());
        let first = progress.step_mut(0);
        first.status = StepStatus::Done;
        first.output = Some(json!({"total": 3}));
        store_progress(&mut data, &progress);
        let again = Progress::of(&data).unwrap();
        assert_eq!(again, progress);
        assert_eq!(
            template_context(&spec, &again)["steps"]["logs"]["total"],
            json!(3)
        );
        assert_eq!(
            parse_spec(&data).unwrap(),
            spec,
            "progress does not disturb the spec"
        );
    }

    #[test]
    fn newer_or_broken_data_is_refused() {
        assert!(parse_spec(&json!({"version": 2, "steps": []}))
            .unwrap_err()
            .contains("newer"));
        assert!(parse_spec(&json!({"version": 1})).is_err());
    }
}

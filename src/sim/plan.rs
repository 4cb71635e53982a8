//! Run plans: the scripted status sequence a simulated run follows on the virtual clock, and the
//! status classes the lifecycle code needs.

use std::time::Duration;

use serde_json::Value;

/// How long a default run works before its evaluation phase.
const WORK_TIME: Duration = Duration::from_secs(60);
/// How long a default run evaluates before completing.
const EVALUATION_TIME: Duration = Duration::from_secs(15);
/// How long a failing run works before it fails.
const FAIL_AFTER: Duration = Duration::from_secs(45);
/// How long `starts_pending` keeps a run queued.
const PENDING_TIME: Duration = Duration::from_secs(5);

/// One step of a plan: hold `status` for `hold`, then move on (the last step is held forever).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Step {
    pub status: Option<String>,
    pub hold: Duration,
}

/// A scripted run: its status steps and what it carries.
#[derive(Clone, Debug, PartialEq)]
pub struct RunPlan {
    pub(crate) steps: Vec<Step>,
    pub(crate) source_type: Option<String>,
    pub(crate) metadata: Option<Value>,
    pub(crate) user_id: Option<i64>,
    pub(crate) repo_id: Option<i64>,
    pub(crate) prompt: String,
    pub(crate) open_pr: bool,
    pub(crate) on_prs: Vec<i64>,
    pub(crate) result: Option<String>,
}

impl RunPlan {
    /// ACTIVE for a minute, EVALUATION, then COMPLETE with result, summary and one PR.
    pub fn completes() -> RunPlan {
        RunPlan::from_steps(vec![
            step(Some("ACTIVE"), WORK_TIME),
            step(Some("EVALUATION"), EVALUATION_TIME),
            step(Some("COMPLETE"), Duration::ZERO),
        ])
    }

    /// ACTIVE, then `status` (FAILED, ERROR, TIMEOUT, MAX_ITERATIONS_REACHED, OUT_OF_TOKENS,
    /// CANCELLED, PAUSED or any other string), held from then on.
    pub fn ends(status: &str) -> RunPlan {
        RunPlan::from_steps(vec![
            step(Some("ACTIVE"), FAIL_AFTER),
            step(Some(status), Duration::ZERO),
        ])
    }

    /// An explicit sequence: each status is held for its duration; the last one is kept.
    pub fn steps(steps: Vec<(Option<&str>, Duration)>) -> RunPlan {
        RunPlan::from_steps(steps.into_iter().map(|(s, d)| step(s, d)).collect())
    }

    fn from_steps(steps: Vec<Step>) -> RunPlan {
        RunPlan {
            steps,
            source_type: Some("API".to_owned()),
            metadata: None,
            user_id: None,
            repo_id: None,
            prompt: "Fix the flaky integration test".to_owned(),
            open_pr: true,
            on_prs: Vec::new(),
            result: None,
        }
    }

    /// Queue for a few seconds as PENDING before the first step.
    pub fn starts_pending(mut self) -> RunPlan {
        self.steps.insert(0, step(Some("PENDING"), PENDING_TIME));
        self
    }

    /// The run's `source_type` (default `API`).
    pub fn source_type(mut self, source_type: &str) -> RunPlan {
        self.source_type = Some(source_type.to_owned());
        self
    }

    /// Arbitrary JSON kept on the run and returned as `metadata`.
    pub fn metadata(mut self, metadata: Value) -> RunPlan {
        self.metadata = Some(metadata);
        self
    }

    /// The user who started the run (default: the organisation's first member).
    pub fn user(mut self, user_id: i64) -> RunPlan {
        self.user_id = Some(user_id);
        self
    }

    /// The repository the run works on (default: the organisation's first repository).
    pub fn repo(mut self, repo_id: i64) -> RunPlan {
        self.repo_id = Some(repo_id);
        self
    }

    /// The prompt the run was started with.
    pub fn prompt(mut self, prompt: &str) -> RunPlan {
        self.prompt = prompt.to_owned();
        self
    }

    /// The `result` text set when the run reaches COMPLETE.
    pub fn result(mut self, result: &str) -> RunPlan {
        self.result = Some(result.to_owned());
        self
    }

    /// Complete without opening a pull request.
    pub fn without_pr(mut self) -> RunPlan {
        self.open_pr = false;
        self
    }

    /// Start attached to an existing pull request (a check-suite fix or review run on it).
    pub fn on_pr(mut self, pr_id: i64) -> RunPlan {
        self.on_prs.push(pr_id);
        self.open_pr = false;
        self
    }

    /// The status the run is created with.
    pub(crate) fn first_status(&self) -> Option<String> {
        self.steps.first().and_then(|s| s.status.clone())
    }
}

fn step(status: Option<&str>, hold: Duration) -> Step {
    Step {
        status: status.map(str::to_owned),
        hold,
    }
}

/// Statuses after which a run does no more work unless resumed.
pub(crate) fn is_terminal(status: &str) -> bool {
    matches!(
        status,
        "COMPLETE"
            | "ERROR"
            | "FAILED"
            | "CANCELLED"
            | "STOPPED"
            | "TIMEOUT"
            | "MAX_ITERATIONS_REACHED"
            | "OUT_OF_TOKENS"
    )
}

/// Terminal statuses that mean the run failed and left an ERROR log entry.
pub(crate) fn is_failure(status: &str) -> bool {
    matches!(
        status,
        "ERROR" | "FAILED" | "TIMEOUT" | "MAX_ITERATIONS_REACHED" | "OUT_OF_TOKENS"
    )
}

/// Statuses in which the agent is doing work and writing logs.
pub(crate) fn is_working(status: Option<&str>) -> bool {
    matches!(status, Some("ACTIVE" | "EVALUATION" | "RUNNING"))
}

/// Runs that ban/remove-from-pr stop: any known, non-terminal status (PAUSED and PENDING too).
pub(crate) fn is_stoppable(status: Option<&str>) -> bool {
    status.is_some_and(|s| !is_terminal(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_pending_prepends_a_pending_step() {
        let plan = RunPlan::completes().starts_pending();
        assert_eq!(plan.first_status().as_deref(), Some("PENDING"));
        assert_eq!(plan.steps.len(), 4);
    }

    #[test]
    fn status_classes() {
        assert!(is_terminal("COMPLETE") && is_terminal("STOPPED"));
        assert!(!is_terminal("PAUSED") && !is_terminal("RUNNING"));
        assert!(is_failure("TIMEOUT") && !is_failure("CANCELLED"));
        assert!(is_working(Some("EVALUATION")) && !is_working(Some("PENDING")));
        assert!(is_stoppable(Some("PAUSED")) && !is_stoppable(None));
    }
}

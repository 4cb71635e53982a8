//! Actions rules can run (DESIGN §6): the catalogue used to check rules when they load, the
//! parameter rules shared with the executor, and the effects themselves, one file per family.
//!
//! An action gets its coerced parameters, the job's context and an idempotency key, and answers
//! with its output or an [`ActionError`] the executor classifies. Actions whose effect must not
//! repeat (`ActionSpec::effectful`) look at the target first when told a previous attempt may
//! have acted (`StepCall::uncertain`): see each family's module.

pub mod codegen;
pub mod error;
pub mod github;
pub mod log;
pub mod notify;
pub mod params;
pub mod spec;

use serde_json::{Map, Value};

pub use error::{ActionError, ErrorClass};
pub use github::{GithubClient, GithubError};
pub use notify::{Notifier, Notifiers};
pub use params::{check_literal, prepare, ParamError};
pub use spec::{action, ActionSpec, ParamKind, ParamSpec, ACTIONS};

use crate::api::CodegenClient;

/// One attempt of one step.
#[derive(Debug, Clone, Copy)]
pub struct StepCall<'a> {
    pub action: &'static ActionSpec,
    /// Rendered and coerced `with` parameters.
    pub params: &'a Map<String, Value>,
    /// The job's context (`event`, `run`, `pr`, `rule`, ...).
    pub context: &'a Value,
    /// Stable across every attempt of this step, unique per step of a job.
    pub key: &'a str,
    /// A previous attempt may have acted: check the target before acting again.
    pub uncertain: bool,
    pub job_id: u64,
    pub rule: &'a str,
}

impl StepCall<'_> {
    pub fn str(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    pub fn int(&self, name: &str) -> Option<i64> {
        self.params.get(name).and_then(Value::as_i64)
    }

    pub fn bool(&self, name: &str) -> Option<bool> {
        self.params.get(name).and_then(Value::as_bool)
    }

    /// A StringList parameter (empty when not given).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.params
            .get(name)
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A required string parameter (`prepare` already checked presence).
    pub fn required_str(&self, name: &str) -> Result<&str, ActionError> {
        self.str(name)
            .ok_or_else(|| ActionError::permanent(format!("`{name}` is required")))
    }
}

/// Everything the actions reach: Codegen, GitHub (when configured) and the notifiers.
#[derive(Debug, Clone)]
pub struct Actions {
    pub codegen: CodegenClient,
    pub github: Option<GithubClient>,
    pub notifiers: Notifiers,
}

impl Actions {
    /// Runs one attempt of a step. `codegen.wait_for_run` is the executor's own (it parks the
    /// job) and is refused here.
    pub async fn execute(&self, call: &StepCall<'_>) -> Result<Value, ActionError> {
        let name = call.action.name;
        match name.split_once('.') {
            Some(("codegen", _)) => codegen::execute(&self.codegen, call).await,
            Some(("github", _)) => match &self.github {
                Some(github) => github::execute(github, call).await,
                None => Err(ActionError::permanent(
                    "GitHub is not configured (github: in sentinel.yaml)",
                )),
            },
            _ if name == "notify" => self.notifiers.execute(call).await,
            _ if name == "log" => Ok(log::execute(call)),
            _ => Err(ActionError::permanent(format!("unknown action {name}"))),
        }
    }
}

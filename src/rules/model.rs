//! Rule files as written: serde structs that refuse unknown fields, and the JSON Schema editors
//! get from them (`rules schema`). Nothing here is checked beyond types; `compile` does that.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::yaml::DurationStr;

/// A rule file: `rules:` and optionally `tests:`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    /// The rules of this file; names are unique across every file loaded together.
    #[serde(default)]
    pub rules: Vec<RawRule>,
    /// Sample events and what must fire, run by `rules test`.
    #[serde(default)]
    pub tests: Vec<RawTest>,
}

/// One rule.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    /// Unique name: letters, digits, `-`, `_` and `.`.
    pub name: String,
    /// What the rule is for (shown in `explain`, available as `rule.description`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// An event type (`run.finished`), a glob (`run.*`) or a list of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<OneOrMany>,
    /// Cron with seconds (`sec min hour day month weekday [year]`), instead of `trigger`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// IANA time zone of `schedule` (default UTC), e.g. `Europe/Paris`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A Jinja expression; the rule fires only when it is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// A template; firings are deduplicated, throttled and silenced per key (default: the event id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// After firing for a key, do not fire again for it for this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub cooldown: Option<DurationStr>,
    /// At most `limit` firings per key in each window of `per`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<RawThrottle>,
    /// `enforce` (default), `shadow` (journal only) or `off`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// What to do, in order.
    #[serde(default)]
    pub steps: Vec<RawStep>,
}

/// A single string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// The entries, one or many.
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(one) => vec![one.as_str()],
            OneOrMany::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

/// `throttle: {limit, per}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawThrottle {
    /// Most firings per key in one window.
    pub limit: u32,
    /// The window, e.g. `1d`.
    #[schemars(with = "String")]
    pub per: DurationStr,
}

/// What a rule does when it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Fire: write a job that runs the steps.
    #[default]
    Enforce,
    /// Record in the journal what would have fired, and do nothing.
    Shadow,
    /// Do nothing (recorded as `off`).
    Off,
}

impl Mode {
    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Shadow => "shadow",
            Mode::Off => "off",
        }
    }
}

/// One step of a rule.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Name of the step's output for later steps: `steps.<id>.<field>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// An action of the catalogue, e.g. `codegen.fetch_logs`, `notify`.
    pub action: String,
    /// The action's parameters; strings may be templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<Map<String, Value>>,
    /// A Jinja expression; the step is skipped when it is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// Go on with the next step when this one fails for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_error: Option<bool>,
    /// Retries of this step (default: the executor's settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RawRetry>,
}

/// `retry: {max_attempts, backoff, cap}`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, the first included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// First delay; doubles per attempt, with jitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub backoff: Option<DurationStr>,
    /// Largest delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub cap: Option<DurationStr>,
}

/// A test beside the rules: a sample event (or several, in order) and what must fire on the last.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    /// What the test shows.
    pub name: String,
    /// The sample event.
    #[serde(default)]
    pub event: Option<RawTestEvent>,
    /// Several events, evaluated in order (throttle and cooldown carry over); `expect` is about
    /// the last one.
    #[serde(default)]
    pub events: Option<Vec<RawTestEvent>>,
    /// A JSON or YAML file holding the event, relative to the rule file.
    #[serde(default)]
    pub fixture: Option<PathBuf>,
    /// `vars` for this test (default: the config's, when one is given).
    #[serde(default)]
    pub vars: Option<Map<String, Value>>,
    /// Outputs of steps by id, used to render later steps' parameters.
    #[serde(default)]
    pub outputs: Option<Map<String, Value>>,
    /// The rules that must fire (every other rule of the file must not), with their key and
    /// rendered step parameters when given.
    pub expect: Vec<RawExpect>,
}

/// A sample event of a test.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTestEvent {
    /// Event type, e.g. `run.finished`, `github.pull_request`, `schedule`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Stable id (default: one made from the test).
    #[serde(default)]
    pub id: Option<String>,
    /// `poll` (default), `webhook`, `schedule` or `startup`.
    #[serde(default)]
    pub source: Option<String>,
    /// When it happened (RFC 3339; default 2025-01-06T09:00:00Z, plus a minute per event).
    #[serde(default)]
    pub at: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    /// GitHub events: the delivery's `action`.
    #[serde(default)]
    pub action: Option<String>,
    /// The run as the API returns it.
    #[serde(default)]
    pub run: Option<Value>,
    /// `{id, url, title, head_branch, repo, number}`.
    #[serde(default)]
    pub pr: Option<Value>,
    /// GitHub events: the webhook payload.
    #[serde(default)]
    pub payload: Option<Value>,
    /// GitHub events: a JSON file holding the payload, relative to the rule file.
    #[serde(default)]
    pub payload_file: Option<PathBuf>,
    /// Schedule events: the summary.
    #[serde(default)]
    pub summary: Option<Value>,
    /// Schedule events: the rule whose tick it is (default: every scheduled rule of the file).
    #[serde(default)]
    pub rule: Option<String>,
}

/// A rule that must fire in a test.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// The rule.
    pub rule: String,
    /// Its rendered key.
    #[serde(default)]
    pub key: Option<String>,
    /// Its steps in order: the action and the rendered parameters that must be there.
    #[serde(default)]
    pub steps: Option<Vec<RawExpectStep>>,
}

/// One expected step.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpectStep {
    #[serde(default)]
    pub action: Option<String>,
    /// Parameters that must render to these values (others are not compared).
    #[serde(default)]
    pub with: Option<Map<String, Value>>,
    /// Whether the step's `when` skips it.
    #[serde(default)]
    pub skipped: Option<bool>,
}

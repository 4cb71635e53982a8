//! Wire types of the Codegen REST API, decoded leniently.
//!
//! The official spec (tests/fixtures/codegen-openapi3.json) is the contract, but the live API has
//! quirks: statuses outside any enum, `null` almost everywhere, timestamps with or without an
//! offset, new fields and enum values over time. These types accept all of that: unknown fields are
//! kept (runs) or ignored (everything else), unknown enum values become `Unknown(String)`.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// An organization id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrgId(pub i64);

/// An agent run id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub i64);

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A timestamp as the API sent it, with its parsed value when it could be read.
///
/// Seen on the wire: `2025-06-21T11:20:04Z`, `2025-06-21T11:20:04.338+00:00` and the naive
/// `2025-06-21 11:20:04.338398`; a value without an offset is taken as UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timestamp {
    raw: String,
    parsed: Option<DateTime<Utc>>,
}

impl Timestamp {
    /// Reads a timestamp; never fails, keeping the raw text when it cannot be parsed.
    pub fn parse(raw: &str) -> Timestamp {
        Timestamp {
            raw: raw.to_owned(),
            parsed: parse_lenient(raw),
        }
    }

    /// The text exactly as received.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The instant, when the text could be read.
    pub fn to_utc(&self) -> Option<DateTime<Utc>> {
        self.parsed
    }
}

fn parse_lenient(raw: &str) -> Option<DateTime<Utc>> {
    let text = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let spaced = text.replacen(' ', "T", 1);
    if let Ok(t) = DateTime::parse_from_rfc3339(&spaced) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(&spaced, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Ok(Timestamp::parse(&raw))
    }
}

/// Declares a string enum that keeps values it does not know, matched case-insensitively.
macro_rules! open_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $wire:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this build does not know, kept as sent.
            Unknown(String),
        }

        impl $name {
            /// Reads a wire value; unknown values are kept, never rejected.
            pub fn parse(value: &str) -> Self {
                $(if value.eq_ignore_ascii_case($wire) { return Self::$variant; })*
                Self::Unknown(value.to_owned())
            }

            /// The wire value (uppercase for known values, as sent for unknown ones).
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Unknown(v) => v,
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok(Self::parse(s))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Ok(Self::parse(&raw))
            }
        }
    };
}

open_enum! {
    /// The status of an agent run. The spec types it as a free string; these are the values the
    /// backend is known to send.
    RunStatus {
        /// Queued, not started.
        Pending => "PENDING",
        /// The agent is working.
        Active => "ACTIVE",
        /// Shown by some clients as a synonym of ACTIVE.
        Running => "RUNNING",
        /// The post-work evaluation phase.
        Evaluation => "EVALUATION",
        /// Waiting for input; can be resumed.
        Paused => "PAUSED",
        /// Finished successfully.
        Complete => "COMPLETE",
        /// Finished with an error.
        Error => "ERROR",
        /// Finished unsuccessfully.
        Failed => "FAILED",
        /// Stopped by a user or by ban/remove-from-pr.
        Cancelled => "CANCELLED",
        /// Stopped.
        Stopped => "STOPPED",
        /// Hit its time limit.
        Timeout => "TIMEOUT",
        /// Hit its iteration limit.
        MaxIterationsReached => "MAX_ITERATIONS_REACHED",
        /// Ran out of tokens.
        OutOfTokens => "OUT_OF_TOKENS",
    }
}

impl RunStatus {
    /// A run in a terminal status is finished until someone resumes it.
    pub fn is_terminal(&self) -> bool {
        match self {
            RunStatus::Complete
            | RunStatus::Error
            | RunStatus::Failed
            | RunStatus::Cancelled
            | RunStatus::Stopped
            | RunStatus::Timeout
            | RunStatus::MaxIterationsReached
            | RunStatus::OutOfTokens => true,
            RunStatus::Pending
            | RunStatus::Active
            | RunStatus::Running
            | RunStatus::Evaluation
            | RunStatus::Paused
            | RunStatus::Unknown(_) => false,
        }
    }

    /// The agent is (or is about to be) working.
    pub fn is_active(&self) -> bool {
        match self {
            RunStatus::Pending | RunStatus::Active | RunStatus::Running | RunStatus::Evaluation => {
                true
            }
            RunStatus::Paused
            | RunStatus::Complete
            | RunStatus::Error
            | RunStatus::Failed
            | RunStatus::Cancelled
            | RunStatus::Stopped
            | RunStatus::Timeout
            | RunStatus::MaxIterationsReached
            | RunStatus::OutOfTokens
            | RunStatus::Unknown(_) => false,
        }
    }
}

open_enum! {
    /// What started a run (`ApiAgentRunSourceType`).
    SourceType {
        /// A local CLI session.
        Local => "LOCAL",
        /// A Slack mention.
        Slack => "SLACK",
        /// A mention on a GitHub issue or PR.
        Github => "GITHUB",
        /// A check-failure auto-fix wake-up.
        GithubCheckSuite => "GITHUB_CHECK_SUITE",
        /// An automatic PR review.
        GithubPrReview => "GITHUB_PR_REVIEW",
        /// A Linear ticket.
        Linear => "LINEAR",
        /// The REST API.
        Api => "API",
        /// The web chat.
        Chat => "CHAT",
        /// A Jira ticket.
        Jira => "JIRA",
        /// A ClickUp task.
        Clickup => "CLICKUP",
        /// A Monday item.
        Monday => "MONDAY",
        /// The setup-commands generator.
        SetupCommands => "SETUP_COMMANDS",
    }
}

/// A pull request opened by a run (`GithubPullRequestResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PullRequest {
    pub id: i64,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub head_branch_name: Option<String>,
}

/// An agent run (`AgentRunResponse`). Fields the spec does not know yet are kept in `extra`, so a
/// run can be shown to rules exactly as the API returned it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentRun {
    pub id: RunId,
    pub organization_id: OrgId,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub web_url: Option<String>,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub source_type: Option<SourceType>,
    #[serde(default)]
    pub github_pull_requests: Option<Vec<PullRequest>>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl AgentRun {
    /// The run's pull requests, empty when the API sent `null`.
    pub fn pull_requests(&self) -> &[PullRequest] {
        self.github_pull_requests.as_deref().unwrap_or_default()
    }
}

/// The page envelope of every list endpoint (`Page_*_`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: i64,
    #[serde(default)]
    pub page: i64,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub pages: i64,
}

/// A user (`UserResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(deserialize_with = "string_or_number")]
    pub github_user_id: String,
    pub github_username: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub avatar_url: Option<String>,
    #[serde(default)]
    pub full_name: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub is_admin: Option<bool>,
}

/// A repository (`RepoResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Repo {
    pub id: i64,
    pub name: String,
    pub full_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(deserialize_with = "string_or_number")]
    pub github_id: String,
    pub organization_id: OrgId,
    #[serde(default)]
    pub visibility: Option<String>,
    #[serde(default)]
    pub archived: Option<bool>,
    #[serde(default)]
    pub setup_status: Option<String>,
    #[serde(default)]
    pub language: Option<String>,
}

/// An organization (`OrganizationResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Organization {
    pub id: OrgId,
    pub name: String,
    #[serde(default)]
    pub settings: Option<OrganizationSettings>,
}

/// Organization feature switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationSettings {
    #[serde(default)]
    pub enable_pr_creation: Option<bool>,
    #[serde(default)]
    pub enable_rules_detection: Option<bool>,
}

/// The agent a created run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentType {
    Codegen,
    ClaudeCode,
}

/// Body of create run (`CreateAgentRunInput`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateRunInput {
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<AgentType>,
}

/// Body of resume (`ResumeAgentRunInput`): the run id travels in the body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResumeRunInput {
    pub agent_run_id: RunId,
    pub prompt: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
}

/// Body of ban, unban and remove-from-pr (`StopAgentRunInput`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StopRunInput {
    pub agent_run_id: RunId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before_card_order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_card_order_id: Option<String>,
}

impl StopRunInput {
    /// The common case: just the run.
    pub fn run(id: RunId) -> StopRunInput {
        StopRunInput {
            agent_run_id: id,
            before_card_order_id: None,
            after_card_order_id: None,
        }
    }
}

/// A run with a page of its logs (`AgentRunWithLogsResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunLogs {
    pub id: RunId,
    pub organization_id: OrgId,
    pub logs: Vec<LogEntry>,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub web_url: Option<String>,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(default)]
    pub total_logs: Option<i64>,
    #[serde(default)]
    pub page: Option<i64>,
    #[serde(default)]
    pub size: Option<i64>,
    #[serde(default)]
    pub pages: Option<i64>,
}

/// One log entry (`AgentRunLogResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub agent_run_id: RunId,
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    #[serde(default)]
    pub tool_name: Option<String>,
    /// ACTION, PLAN_EVALUATION, ERROR, FINAL_ANSWER, USER_MESSAGE, ... (a free string).
    #[serde(default)]
    pub message_type: Option<String>,
    #[serde(default)]
    pub thought: Option<String>,
    /// A string or an object.
    #[serde(default)]
    pub observation: Option<Value>,
    #[serde(default)]
    pub tool_input: Option<Value>,
    #[serde(default)]
    pub tool_output: Option<Value>,
}

/// Check-suite auto-fixer settings of a repo (`CheckSuiteSettingsResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckSuiteSettings {
    #[serde(default)]
    pub check_retry_count: i64,
    #[serde(default)]
    pub ignored_checks: Vec<String>,
    #[serde(default)]
    pub check_retry_counts: Map<String, Value>,
    #[serde(default)]
    pub custom_prompts: Map<String, Value>,
    #[serde(default)]
    pub high_priority_apps: Vec<String>,
    #[serde(default)]
    pub available_check_suite_names: Vec<String>,
}

/// A change to check-suite settings (`CheckSuiteSettingsRequest`); absent fields are unchanged.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CheckSuiteSettingsUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_retry_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored_checks: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check_retry_counts: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_prompts: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_priority_apps: Option<Vec<String>>,
}

/// The target state of a PR edit (`EditPRInput.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrState {
    Open,
    Closed,
    Draft,
    ReadyForReview,
}

/// Body of a PR edit (`EditPRInput`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditPrInput {
    pub state: PrState,
}

/// Answer of a PR edit (`EditPRResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EditPrResponse {
    pub success: bool,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub number: Option<i64>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// The integrations of an organization (`OrganizationIntegrationsResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Integrations {
    pub organization_id: OrgId,
    #[serde(default)]
    pub organization_name: Option<String>,
    #[serde(default)]
    pub integrations: Vec<IntegrationStatus>,
    #[serde(default)]
    pub total_active_integrations: i64,
}

/// One integration (`IntegrationStatus`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntegrationStatus {
    pub integration_type: String,
    pub active: bool,
    #[serde(default)]
    pub token_id: Option<i64>,
    #[serde(default)]
    pub installation_id: Option<i64>,
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// Body of setup-commands generate (`GenerateSetupCommandsInput`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupCommandsInput {
    pub repo_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    pub trigger_source: String,
}

/// Answer of setup-commands generate (`SetupCommandsResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetupCommandsResponse {
    pub agent_run_id: RunId,
    pub status: String,
    pub url: String,
}

/// Answer of analyze-logs (`AnalyzeLogsResponse`): the analysis runs as a new agent run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyzeLogsResponse {
    pub agent_run_id: RunId,
    pub status: String,
    pub message: String,
}

/// An MCP/OAuth provider (`OAuthProviderResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct McpProvider {
    pub id: i64,
    pub name: String,
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    #[serde(default)]
    pub default_scopes: Option<Vec<String>>,
    pub is_mcp: bool,
    #[serde(default)]
    pub meta: Option<Value>,
}

/// Organization and user rules for the CLI (`CLIRulesResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CliRules {
    #[serde(default)]
    pub organization_rules: Option<String>,
    #[serde(default)]
    pub user_custom_prompt: Option<String>,
}

/// A one-time Slack connect token (`GenerateTokenResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlackConnectToken {
    pub token: String,
    pub message: String,
    pub expires_in_minutes: i64,
}

/// Accepts `"123"` or `123`: GitHub ids are strings in the spec, numbers in some answers.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(i64),
    }
    Ok(match Either::deserialize(d)? {
        Either::Text(t) => t,
        Either::Number(n) => n.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_in_every_seen_shape() {
        let expect = "2025-06-21T11:20:04Z".parse::<DateTime<Utc>>().unwrap();
        for raw in [
            "2025-06-21T11:20:04Z",
            "2025-06-21T11:20:04+00:00",
            "2025-06-21 11:20:04",
            "2025-06-21T13:20:04+02:00",
        ] {
            assert_eq!(Timestamp::parse(raw).to_utc(), Some(expect), "{raw}");
        }
        let naive = Timestamp::parse("2025-06-21 11:20:04.338398");
        assert_eq!(
            naive.to_utc().unwrap().timestamp_micros() % 1_000_000,
            338_398
        );
        let junk = Timestamp::parse("yesterday");
        assert_eq!(junk.to_utc(), None);
        assert_eq!(junk.raw(), "yesterday");
    }

    #[test]
    fn statuses_are_case_insensitive_and_open() {
        assert_eq!(RunStatus::parse("complete"), RunStatus::Complete);
        assert_eq!(
            RunStatus::parse("WARMING_UP"),
            RunStatus::Unknown("WARMING_UP".into())
        );
        assert!(RunStatus::parse("OUT_OF_TOKENS").is_terminal());
        assert!(!RunStatus::parse("PAUSED").is_terminal());
        assert!(!RunStatus::Unknown("X".into()).is_active());
    }

    #[test]
    fn run_decodes_nulls_unknowns_and_keeps_extra_fields() {
        let run: AgentRun = serde_json::from_value(serde_json::json!({
            "id": 5, "organization_id": 7, "status": null, "created_at": "2025-06-21 11:20:04.1",
            "web_url": null, "result": null, "summary": null, "source_type": "NEW_SOURCE",
            "github_pull_requests": null, "metadata": null, "future_field": {"a": 1}
        }))
        .unwrap();
        assert_eq!(run.status, None);
        assert_eq!(
            run.source_type,
            Some(SourceType::Unknown("NEW_SOURCE".into()))
        );
        assert!(run.pull_requests().is_empty());
        assert_eq!(run.extra["future_field"]["a"], 1);
        let back = serde_json::to_value(&run).unwrap();
        assert_eq!(back["future_field"]["a"], 1);
        assert_eq!(back["created_at"], "2025-06-21 11:20:04.1");
    }

    #[test]
    fn github_ids_accept_strings_and_numbers() {
        let user: User = serde_json::from_value(serde_json::json!({
            "id": 1, "github_user_id": 99, "github_username": "octo"
        }))
        .unwrap();
        assert_eq!(user.github_user_id, "99");
    }
}

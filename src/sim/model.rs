//! The simulator's in-memory world: organisations, users, tokens, repositories, sandboxes,
//! runs, pull requests and their logs, plus the knobs and logs that live under the same lock.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::config::{CreateOutcome, Fault, RecordedRequest, RouteClass, SimConfig};
use super::limits::Limiter;
use super::plan::{RunPlan, Step};

/// First id handed to runs created inside the simulator.
const FIRST_RUN_ID: i64 = 1000;
/// First id handed to pull requests.
const FIRST_PR_ID: i64 = 5000;

pub(crate) struct Org {
    pub name: String,
    pub rules: Option<String>,
    pub enable_pr_creation: bool,
}

pub(crate) struct User {
    pub github_username: String,
    pub email: Option<String>,
    pub full_name: Option<String>,
}

pub(crate) struct Repo {
    pub org_id: i64,
    pub full_name: String,
    pub archived: bool,
    pub language: Option<String>,
    pub next_pr_number: i64,
    pub check_suite: Value,
}

pub(crate) struct Pr {
    pub org_id: i64,
    pub repo_id: i64,
    pub number: i64,
    pub title: String,
    pub url: String,
    pub head_branch: String,
    pub state: String,
    pub banned: bool,
    pub created_at: DateTime<Utc>,
}

pub(crate) struct LogEntry {
    pub created_at: DateTime<Utc>,
    pub message_type: &'static str,
    pub tool_name: Option<String>,
    pub thought: Option<String>,
    pub observation: Option<Value>,
    pub tool_input: Option<Value>,
    pub tool_output: Option<Value>,
}

/// Where a run is along its plan.
pub(crate) struct Progress {
    pub steps: Vec<Step>,
    pub index: usize,
    pub step_started: DateTime<Utc>,
    pub next_log_at: DateTime<Utc>,
    pub open_pr: bool,
    pub result: Option<String>,
}

pub(crate) struct Run {
    pub org_id: i64,
    pub user_id: Option<i64>,
    pub status: Option<String>,
    pub created_at: DateTime<Utc>,
    pub source_type: Option<String>,
    pub prompt: String,
    pub result: Option<String>,
    pub summary: Option<String>,
    pub pr_ids: Vec<i64>,
    pub metadata: Option<Value>,
    pub repo_id: Option<i64>,
    pub model: Option<String>,
    pub agent_type: Option<String>,
    pub images: usize,
    pub logs: Vec<LogEntry>,
    pub plan: Option<Progress>,
    /// A ban on a run without a pull request ("parent-agent-run-based" ban).
    pub banned: bool,
    pub log_seq: u64,
    /// Every status the run has had and when it took it (virtual time), for tests.
    pub history: Vec<(Option<String>, DateTime<Utc>)>,
}

impl Run {
    /// Changes the status, keeping the history.
    pub fn set_status(&mut self, status: Option<String>, at: DateTime<Utc>) {
        if status != self.status {
            self.history.push((status.clone(), at));
        }
        self.status = status;
    }
}

/// An injected fault and how many more requests it applies to.
pub(crate) struct ArmedFault {
    pub fault: Fault,
    pub remaining: usize,
    pub route: Option<RouteClass>,
}

pub(crate) struct State {
    pub config: SimConfig,
    pub clock: DateTime<Utc>,
    pub orgs: BTreeMap<i64, Org>,
    pub users: BTreeMap<i64, User>,
    /// (org, user) -> role.
    pub members: BTreeMap<(i64, i64), String>,
    pub tokens: HashMap<String, i64>,
    pub repos: BTreeMap<i64, Repo>,
    /// (org, sandbox) -> has logs.
    pub sandboxes: BTreeMap<(i64, i64), bool>,
    pub runs: BTreeMap<i64, Run>,
    pub prs: BTreeMap<i64, Pr>,
    /// (user, org) -> connected OAuth providers.
    pub oauth: BTreeMap<(i64, i64), BTreeSet<String>>,
    pub next_run_id: i64,
    pub next_pr_id: i64,
    pub create_outcome: CreateOutcome,
    pub create_plan: RunPlan,
    pub queued_plans: VecDeque<RunPlan>,
    pub faults: Vec<ArmedFault>,
    pub limiter: Limiter,
    pub requests: Vec<RecordedRequest>,
    pub slack_tokens: u64,
}

impl State {
    pub fn new(config: SimConfig) -> State {
        State {
            clock: config.start_time,
            config,
            orgs: BTreeMap::new(),
            users: BTreeMap::new(),
            members: BTreeMap::new(),
            tokens: HashMap::new(),
            repos: BTreeMap::new(),
            sandboxes: BTreeMap::new(),
            runs: BTreeMap::new(),
            prs: BTreeMap::new(),
            oauth: BTreeMap::new(),
            next_run_id: FIRST_RUN_ID,
            next_pr_id: FIRST_PR_ID,
            create_outcome: CreateOutcome::Ok,
            create_plan: RunPlan::completes(),
            queued_plans: VecDeque::new(),
            faults: Vec::new(),
            limiter: Limiter::default(),
            requests: Vec::new(),
            slack_tokens: 0,
        }
    }

    /// The user a bearer token acts as.
    pub fn user_for_token(&self, token: &str) -> Option<i64> {
        self.tokens.get(token).copied()
    }

    pub fn is_member(&self, org_id: i64, user_id: i64) -> bool {
        self.members.contains_key(&(org_id, user_id))
    }

    pub fn org_members(&self, org_id: i64) -> impl Iterator<Item = i64> + '_ {
        self.members
            .range((org_id, i64::MIN)..=(org_id, i64::MAX))
            .map(|((_, user), _)| *user)
    }

    pub fn orgs_of(&self, user_id: i64) -> Vec<i64> {
        let mut orgs: Vec<i64> = self
            .members
            .keys()
            .filter(|(_, u)| *u == user_id)
            .map(|(o, _)| *o)
            .collect();
        orgs.sort_unstable();
        orgs
    }

    pub fn org_repos(&self, org_id: i64) -> impl Iterator<Item = (i64, &Repo)> + '_ {
        self.repos
            .iter()
            .filter(move |(_, r)| r.org_id == org_id)
            .map(|(id, r)| (*id, r))
    }

    /// The run `run_id` if it belongs to `org_id`.
    pub fn run_in(&self, org_id: i64, run_id: i64) -> Option<&Run> {
        self.runs.get(&run_id).filter(|r| r.org_id == org_id)
    }

    pub fn run_in_mut(&mut self, org_id: i64, run_id: i64) -> Option<&mut Run> {
        self.runs.get_mut(&run_id).filter(|r| r.org_id == org_id)
    }

    /// Creates a run from a plan at the current virtual time and returns its id.
    pub fn insert_run(&mut self, org_id: i64, plan: RunPlan) -> i64 {
        let id = self.next_run_id;
        self.next_run_id += 1;
        let now = self.clock;
        let user_id = plan.user_id.or_else(|| self.org_members(org_id).next());
        let repo_id = plan
            .repo_id
            .or_else(|| self.org_repos(org_id).next().map(|(id, _)| id));
        let progress = Progress {
            steps: plan.steps.clone(),
            index: 0,
            step_started: now,
            next_log_at: now + super::lifecycle::FIRST_LOG_AFTER,
            open_pr: plan.open_pr,
            result: plan.result.clone(),
        };
        let run = Run {
            org_id,
            user_id,
            status: plan.first_status(),
            created_at: now,
            source_type: plan.source_type.clone(),
            prompt: plan.prompt.clone(),
            result: None,
            summary: None,
            pr_ids: plan.on_prs.clone(),
            metadata: plan.metadata.clone(),
            repo_id,
            model: None,
            agent_type: None,
            images: 0,
            logs: Vec::new(),
            plan: Some(progress),
            banned: false,
            log_seq: 0,
            history: vec![(plan.first_status(), now)],
        };
        self.runs.insert(id, run);
        id
    }

    /// The plan for the next run created through the API.
    pub fn next_create_plan(&mut self) -> RunPlan {
        self.queued_plans
            .pop_front()
            .unwrap_or_else(|| self.create_plan.clone())
    }

    /// Takes one use of the first armed fault that applies to `class`.
    pub fn take_fault(&mut self, class: Option<RouteClass>) -> Option<Fault> {
        let pos = self
            .faults
            .iter()
            .position(|f| f.remaining > 0 && (f.route.is_none() || f.route == class))?;
        let armed = &mut self.faults[pos];
        armed.remaining -= 1;
        let fault = armed.fault.clone();
        if armed.remaining == 0 {
            self.faults.remove(pos);
        }
        Some(fault)
    }
}

/// Default check-suite settings of a new repository.
pub(crate) fn default_check_suite() -> Value {
    serde_json::json!({
        "check_retry_count": 3,
        "ignored_checks": [],
        "check_retry_counts": {},
        "custom_prompts": {},
        "high_priority_apps": [],
    })
}

/// Longest step the virtual clock handles; longer holds mean "forever" in practice and capping
/// them keeps date arithmetic far from overflow.
const MAX_HOLD: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Converts a std duration to chrono, capped at [`MAX_HOLD`].
pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d.min(MAX_HOLD)).unwrap_or(chrono::Duration::zero())
}

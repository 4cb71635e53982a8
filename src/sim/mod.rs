//! The Codegen simulator: an axum server implementing all 25 operations of the Codegen developer
//! API over an in-memory model, with a virtual clock that moves runs along scripted plans, per-token
//! rate limits, FastAPI-shaped validation, serialization quirks, fault injection and a request log.
//!
//! It builds its JSON from its own model (see `render`), never from the client's wire types, so
//! contract tests can check both sides against the official spec independently.

mod config;
mod conn;
mod error;
mod lifecycle;
mod limits;
mod model;
mod plan;
mod render;
mod routes;
mod seed;
mod server;
mod validate;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use config::{
    CreateOutcome, ErrorStyle, Fault, RecordedRequest, RouteClass, SimConfig, TimestampStyle,
};
pub use plan::RunPlan;
pub use server::{serve_standalone, SimServer};

use model::{ArmedFault, Org, Repo, State, User};

/// A handle on one simulated Codegen backend; clones share the same world.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("Simulator")
            .field("clock", &state.clock)
            .field("orgs", &state.orgs.len())
            .field("runs", &state.runs.len())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// An empty world with `config`; add orgs, users and tokens, or call [`Simulator::seed_demo`].
    pub fn new(config: SimConfig) -> Simulator {
        Simulator {
            inner: Arc::new(Mutex::new(State::new(config))),
        }
    }

    /// The router, for serving or for driving without a socket.
    pub fn router(&self) -> axum::Router {
        routes::router(self)
    }

    /// A poisoned lock only means a test panicked mid-update; the state is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    // --- model -----------------------------------------------------------------------------

    /// Adds (or renames) an organisation.
    pub fn add_org(&self, id: i64, name: &str) {
        self.lock().orgs.insert(
            id,
            Org {
                name: name.to_owned(),
                rules: Some(format!("Follow the {name} contribution guide.")),
                enable_pr_creation: true,
            },
        );
    }

    /// Adds the user (once) and makes them a member of the org; the first member is ADMIN.
    pub fn add_user(&self, org_id: i64, user_id: i64, github_username: &str) {
        let mut state = self.lock();
        state.users.entry(user_id).or_insert_with(|| User {
            github_username: github_username.to_owned(),
            email: Some(format!("{github_username}@example.com")),
            full_name: None,
        });
        let role = if state.org_members(org_id).next().is_none() {
            "ADMIN"
        } else {
            "MEMBER"
        };
        state
            .members
            .entry((org_id, user_id))
            .or_insert_with(|| role.to_owned());
    }

    /// A token acting as `user_id`, with access to every org that user belongs to.
    pub fn add_token(&self, token: &str, user_id: i64) {
        self.lock().tokens.insert(token.to_owned(), user_id);
    }

    /// Adds a repository (`owner/name`) to an org; API-created runs need one.
    pub fn add_repo(&self, org_id: i64, repo_id: i64, full_name: &str) {
        self.lock().repos.insert(
            repo_id,
            Repo {
                org_id,
                full_name: full_name.to_owned(),
                archived: false,
                language: Some("Rust".to_owned()),
                next_pr_number: 0,
                check_suite: model::default_check_suite(),
            },
        );
    }

    /// Marks a repository archived (setup-commands answers 400 for it).
    pub fn archive_repo(&self, repo_id: i64) {
        if let Some(repo) = self.lock().repos.get_mut(&repo_id) {
            repo.archived = true;
        }
    }

    /// Adds a sandbox; analyze-logs answers 400 for one without logs.
    pub fn add_sandbox(&self, org_id: i64, sandbox_id: i64, has_logs: bool) {
        self.lock().sandboxes.insert((org_id, sandbox_id), has_logs);
    }

    /// Connects an OAuth provider for a user in an org (reported by `/v1/oauth/tokens/status`).
    pub fn connect_oauth(&self, user_id: i64, org_id: i64, provider: &str) {
        self.lock()
            .oauth
            .entry((user_id, org_id))
            .or_default()
            .insert(provider.to_owned());
    }

    /// A run created as if elsewhere (web UI, Slack, GitHub...), following `plan`.
    pub fn create_run(&self, org_id: i64, plan: RunPlan) -> i64 {
        self.lock().insert_run(org_id, plan)
    }

    /// Overrides a run's status; the run leaves its plan and keeps this status.
    pub fn set_status(&self, org_id: i64, run_id: i64, status: Option<&str>) {
        let mut state = self.lock();
        let now = state.clock;
        if let Some(run) = state.run_in_mut(org_id, run_id) {
            lifecycle::override_status(run, status, now);
        }
    }

    /// Every status a run has had, with the virtual time it took it (empty for unknown runs).
    pub fn status_history(
        &self,
        org_id: i64,
        run_id: i64,
    ) -> Vec<(Option<String>, chrono::DateTime<chrono::Utc>)> {
        self.lock()
            .run_in(org_id, run_id)
            .map(|run| run.history.clone())
            .unwrap_or_default()
    }

    /// Opens a new pull request for the run and returns its id (0 when the run is unknown).
    pub fn add_pr(&self, org_id: i64, run_id: i64) -> i64 {
        let mut state = self.lock();
        let now = state.clock;
        if state.run_in(org_id, run_id).is_none() {
            return 0;
        }
        lifecycle::open_pull_request(&mut state, run_id, now)
    }

    /// Attaches an existing pull request to another run (e.g. a check-suite fix run).
    pub fn attach_pr(&self, org_id: i64, run_id: i64, pr_id: i64) {
        if let Some(run) = self.lock().run_in_mut(org_id, run_id) {
            if !run.pr_ids.contains(&pr_id) {
                run.pr_ids.push(pr_id);
            }
        }
    }

    /// The run as `GET .../agent/run/{id}` would return it now.
    pub fn run_json(&self, org_id: i64, run_id: i64) -> Option<serde_json::Value> {
        let state = self.lock();
        let run = state.run_in(org_id, run_id)?;
        Some(render::run(&state, run_id, run, render::Style::of(&state)))
    }

    /// Ids of the org's runs, oldest first.
    pub fn run_ids(&self, org_id: i64) -> Vec<i64> {
        let state = self.lock();
        state
            .runs
            .iter()
            .filter(|(_, r)| r.org_id == org_id)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether the run, or a pull request it is on, is banned.
    pub fn is_banned(&self, org_id: i64, run_id: i64) -> bool {
        let state = self.lock();
        state
            .run_in(org_id, run_id)
            .is_some_and(|run| lifecycle::is_banned(&state, run))
    }

    /// The virtual clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().clock
    }

    /// Moves the virtual clock; runs progress along their plans and working runs grow logs.
    pub fn advance(&self, d: Duration) {
        lifecycle::advance(&mut self.lock(), d);
    }

    // --- observation and faults ------------------------------------------------------------

    /// Every request so far, in completion order, rejected ones included.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Forgets the request log.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Applies `fault` to the next `times` requests of `route` (any route when `None`).
    pub fn inject(&self, fault: Fault, times: usize, route: Option<RouteClass>) {
        if times > 0 {
            self.lock().faults.push(ArmedFault {
                fault,
                remaining: times,
                route,
            });
        }
    }

    /// Enforces (or stops enforcing) the per-token sliding windows.
    pub fn set_rate_limits(&self, enabled: bool) {
        self.lock().config.rate_limits = enabled;
    }

    /// Sends `Retry-After: N` on 429 when `Some(N)`.
    pub fn set_retry_after(&self, secs: Option<u64>) {
        self.lock().config.retry_after = secs;
    }

    /// Sends the legacy `{"detail":"Rate limit exceeded","status_code":429}` body on 429.
    pub fn set_legacy_429_body(&self, on: bool) {
        self.lock().config.legacy_429_body = on;
    }

    /// RFC 3339 `Z` or naive `YYYY-MM-DD HH:MM:SS.ffffff` timestamps.
    pub fn set_timestamp_style(&self, style: TimestampStyle) {
        self.lock().config.timestamp_style = style;
    }

    /// Adds undeclared fields to every typed response object.
    pub fn set_extra_fields(&self, on: bool) {
        self.lock().config.extra_fields = on;
    }

    /// `{message,status_code}` or `{detail}` error bodies (422 keeps its own shape).
    pub fn set_error_style(&self, style: ErrorStyle) {
        self.lock().config.error_style = style;
    }

    /// Status for a missing or unknown token (default 401).
    pub fn set_unauthorized_status(&self, status: u16) {
        self.lock().config.unauthorized_status = status;
    }

    /// What create answers: the run, 402, 404 (no repos) or 429.
    pub fn set_create_outcome(&self, outcome: CreateOutcome) {
        self.lock().create_outcome = outcome;
    }

    /// The plan every run created through the API follows (default [`RunPlan::completes`]);
    /// the API still forces `source_type` API, the caller as user and the body's metadata.
    pub fn set_create_plan(&self, plan: RunPlan) {
        self.lock().create_plan = plan;
    }

    /// A plan for the next API-created run only (first in, first used).
    pub fn push_create_plan(&self, plan: RunPlan) {
        self.lock().queued_plans.push_back(plan);
    }
}

//! The remaining operations: check-suite settings, PR edits, setup commands, sandbox log
//! analysis, MCP providers, OAuth token status/revoke and Slack-connect tokens.

use serde_json::{json, Value};

use super::runs::with_body;
use super::Req;
use crate::sim::error::ApiError;
use crate::sim::model::State;
use crate::sim::plan::RunPlan;
use crate::sim::render::{self, Style};
use crate::sim::validate::Checker;

/// Source type given to setup-commands and log-analysis runs (the API does not say which).
const SETUP_SOURCE: &str = "SETUP_COMMANDS";
/// Check suites the simulated repositories report.
const CHECK_SUITES: [&str; 3] = ["build", "test", "lint"];

fn repo_not_found() -> ApiError {
    ApiError::Status(404, "Repository not found.".to_owned())
}

fn check_suite_repo(state: &mut State, req: &Req) -> Result<i64, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    let repo = c.query_int_required(&req.query, "repo_id");
    c.finish()?;
    req.admit(state, Some(org))?;
    match state.repos.get(&repo) {
        Some(r) if r.org_id == org => Ok(repo),
        _ => Err(repo_not_found()),
    }
}

fn check_suite_body(state: &State, repo: i64) -> Value {
    let mut settings = state
        .repos
        .get(&repo)
        .map(|r| r.check_suite.clone())
        .unwrap_or_else(crate::sim::model::default_check_suite);
    if let Some(map) = settings.as_object_mut() {
        map.insert(
            "available_check_suite_names".to_owned(),
            json!(CHECK_SUITES),
        );
    }
    Style::of(state).object(settings)
}

pub(crate) fn get_check_suite(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let repo = check_suite_repo(state, req)?;
    Ok(check_suite_body(state, repo))
}

pub(crate) fn put_check_suite(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let update = with_body(&mut c, &req.body, |b| {
        vec![
            (
                "check_retry_count",
                b.int_in("check_retry_count", 0, 10).map(|v| json!(v)),
            ),
            (
                "ignored_checks",
                b.strings("ignored_checks").map(|v| json!(v)),
            ),
            (
                "check_retry_counts",
                b.map("check_retry_counts", true).map(Value::Object),
            ),
            (
                "custom_prompts",
                b.map("custom_prompts", false).map(Value::Object),
            ),
            (
                "high_priority_apps",
                b.strings("high_priority_apps").map(|v| json!(v)),
            ),
        ]
    });
    c.finish()?;
    let repo = check_suite_repo(state, req)?;
    if let Some(settings) = state
        .repos
        .get_mut(&repo)
        .and_then(|r| r.check_suite.as_object_mut())
    {
        for (key, value) in update {
            if let Some(value) = value {
                settings.insert(key.to_owned(), value);
            }
        }
    }
    let mut body = check_suite_body(state, repo);
    if let Some(map) = body.as_object_mut() {
        map.insert("success".to_owned(), json!(true));
        map.insert("repo_id".to_owned(), json!(repo));
    }
    Ok(body)
}

/// Both PR edit routes; the repository-scoped one also checks the PR is in that repository.
pub(crate) fn edit_pr(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    let pr_id = c.path_int(&req.params, "pr_id");
    let repo_id = req
        .params
        .iter()
        .any(|(k, _)| k == "repo_id")
        .then(|| c.path_int(&req.params, "repo_id"));
    let allowed = ["open", "closed", "draft", "ready_for_review"];
    let wanted = with_body(&mut c, &req.body, |b| {
        b.choice("state", true, &allowed, "enum")
    });
    c.finish()?;
    req.admit(state, Some(org))?;
    let style = Style::of(state);
    let pr = state
        .prs
        .get_mut(&pr_id)
        .filter(|pr| pr.org_id == org && repo_id.is_none_or(|r| r == pr.repo_id));
    let Some(pr) = pr else {
        return Ok(style.object(json!({
            "success": false,
            "url": null,
            "number": null,
            "title": null,
            "state": null,
            "error": format!("Pull request {pr_id} not found"),
        })));
    };
    pr.state = match wanted.as_deref() {
        Some("ready_for_review") => "open".to_owned(),
        Some(s) => s.to_owned(),
        None => pr.state.clone(),
    };
    Ok(style.object(json!({
        "success": true,
        "url": pr.url,
        "number": pr.number,
        "title": pr.title,
        "state": pr.state,
        "error": null,
    })))
}

pub(crate) fn setup_commands(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    let (repo, prompt) = with_body(&mut c, &req.body, |b| {
        b.string("trigger_source", false);
        (b.int("repo_id", true), b.string("prompt", false))
    });
    c.finish()?;
    let user = req.admit(state, Some(org))?;
    let repo = repo.unwrap_or_default();
    let full_name = match state.repos.get(&repo) {
        Some(r) if r.org_id == org && r.archived => {
            return Err(ApiError::Status(400, "Repository is archived.".to_owned()));
        }
        Some(r) if r.org_id == org => r.full_name.clone(),
        _ => return Err(repo_not_found()),
    };
    let prompt = prompt.unwrap_or_else(|| format!("Generate setup commands for {full_name}"));
    let plan = RunPlan::completes()
        .without_pr()
        .source_type(SETUP_SOURCE)
        .user(user)
        .repo(repo)
        .prompt(&prompt);
    let id = state.insert_run(org, plan);
    let status = state.runs.get(&id).and_then(|r| r.status.clone());
    Ok(Style::of(state).object(json!({
        "agent_run_id": id,
        "status": status.unwrap_or_else(|| "ACTIVE".to_owned()),
        "url": render::web_url(id),
    })))
}

/// Starts a run reading a sandbox's setup logs. The request has no body.
pub(crate) fn analyze_logs(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let sandbox = c.path_int(&req.params, "sandbox_id");
    let org = c.path_int(&req.params, "org_id");
    c.finish()?;
    let user = req.admit(state, Some(org))?;
    match state.sandboxes.get(&(org, sandbox)) {
        None => return Err(ApiError::Status(404, "Sandbox not found".to_owned())),
        Some(false) => {
            return Err(ApiError::Status(
                400,
                "No logs available for analysis".to_owned(),
            ));
        }
        Some(true) => {}
    }
    let plan = RunPlan::completes()
        .without_pr()
        .source_type(SETUP_SOURCE)
        .user(user)
        .prompt(&format!("Analyze the setup logs of sandbox {sandbox}"))
        .metadata(json!({"sandbox_id": sandbox, "analysis": "setup-logs"}));
    let id = state.insert_run(org, plan);
    Ok(Style::of(state).object(json!({
        "agent_run_id": id,
        "status": "ACTIVE",
        "message": format!("Started analysis of the setup logs of sandbox {sandbox}."),
    })))
}

pub(crate) fn mcp_providers(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    req.admit(state, None)?;
    let style = Style::of(state);
    let providers = [
        (1, "linear", "https://linear.app", vec!["read", "write"]),
        (2, "notion", "https://api.notion.com", vec![]),
        (
            3,
            "sentry",
            "https://sentry.io",
            vec!["project:read", "event:read"],
        ),
    ];
    let items: Vec<Value> = providers
        .into_iter()
        .map(|(id, name, issuer, scopes)| {
            style.object(json!({
                "id": id,
                "name": name,
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/oauth/authorize"),
                "token_endpoint": format!("{issuer}/oauth/token"),
                "default_scopes": if scopes.is_empty() { Value::Null } else { json!(scopes) },
                "is_mcp": true,
                "meta": {"mcp_url": format!("https://mcp.{name}.example/sse")},
            }))
        })
        .collect();
    Ok(Value::Array(items))
}

pub(crate) fn oauth_status(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.query_int_required(&req.query, "org_id");
    c.finish()?;
    let user = req.admit(state, Some(org))?;
    let providers: Vec<&String> = state
        .oauth
        .get(&(user, org))
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    Ok(json!(providers))
}

pub(crate) fn oauth_revoke(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let provider = c.query_str_required(&req.query, "provider");
    let org = c.query_int_required(&req.query, "org_id");
    c.finish()?;
    let user = req.admit(state, Some(org))?;
    let revoked = state
        .oauth
        .get_mut(&(user, org))
        .is_some_and(|p| p.remove(&provider));
    Ok(json!({
        "success": true,
        "provider": provider,
        "revoked": revoked,
        "message": format!("Disconnected {provider}"),
    }))
}

pub(crate) fn slack_token(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = with_body(&mut c, &req.body, |b| b.int("org_id", true));
    c.finish()?;
    req.admit(state, org)?;
    state.slack_tokens += 1;
    let token = format!(
        "slk-{:04}-{:08x}",
        state.slack_tokens,
        0x5eed_0000_u64 + state.slack_tokens
    );
    Ok(Style::of(state).object(json!({
        "token": token,
        "message": format!("Send \"Connect my account: {token}\" to the Codegen bot in a direct message."),
        "expires_in_minutes": 10,
    })))
}

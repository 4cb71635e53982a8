//! Agent-run operations: create, get, list, resume, ban / unban / remove-from-pr, and the alpha
//! logs route.

use serde_json::{json, Map, Value};

use super::Req;
use crate::sim::config::CreateOutcome;
use crate::sim::error::ApiError;
use crate::sim::lifecycle;
use crate::sim::model::State;
use crate::sim::render::{self, page_numbers, Style};
use crate::sim::validate::{Body, Checker};

/// Values of the spec's `ApiAgentRunSourceType`.
pub(crate) const SOURCE_TYPES: [&str; 12] = [
    "LOCAL",
    "SLACK",
    "GITHUB",
    "GITHUB_CHECK_SUITE",
    "GITHUB_PR_REVIEW",
    "LINEAR",
    "API",
    "CHAT",
    "JIRA",
    "CLICKUP",
    "MONDAY",
    "SETUP_COMMANDS",
];

/// Parses the JSON body and runs `fields` over it; an unusable body is already an error.
pub(crate) fn with_body<T: Default>(
    c: &mut Checker,
    raw: &[u8],
    fields: impl FnOnce(&mut Body<'_>) -> T,
) -> T {
    match c.body_object(raw) {
        Some(obj) => fields(&mut Body {
            obj: &obj,
            checker: c,
        }),
        None => T::default(),
    }
}

pub(crate) fn create(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    let (prompt, images, metadata, repo_id, model, agent_type) =
        with_body(&mut c, &req.body, |b| {
            (
                b.string("prompt", true),
                b.strings("images"),
                b.object("metadata"),
                b.int("repo_id", false),
                b.string("model", false),
                b.choice(
                    "agent_type",
                    false,
                    &["codegen", "claude_code"],
                    "literal_error",
                ),
            )
        });
    c.finish()?;
    let user = req.admit(state, Some(org))?;
    match state.create_outcome {
        CreateOutcome::Ok => {}
        CreateOutcome::QuotaExceeded => return Err(ApiError::QuotaExceeded),
        CreateOutcome::NoRepos => return Err(ApiError::NoRepos),
        CreateOutcome::RateLimited => return Err(ApiError::RateLimited),
    }
    if state.org_repos(org).next().is_none() {
        return Err(ApiError::NoRepos);
    }
    if let Some(repo) = repo_id {
        if state.repos.get(&repo).is_none_or(|r| r.org_id != org) {
            return Err(ApiError::Status(404, "Repository not found.".to_owned()));
        }
    }
    let mut plan = state
        .next_create_plan()
        .source_type("API")
        .user(user)
        .prompt(&prompt.unwrap_or_default());
    plan.metadata = metadata;
    if let Some(repo) = repo_id {
        plan = plan.repo(repo);
    }
    let id = state.insert_run(org, plan);
    if let Some(run) = state.runs.get_mut(&id) {
        run.model = model;
        run.agent_type = agent_type;
        run.images = images.map_or(0, |i| i.len());
    }
    run_body(state, org, id)
}

fn run_body(state: &State, org: i64, id: i64) -> Result<Value, ApiError> {
    let run = state.run_in(org, id).ok_or(ApiError::RunNotFound)?;
    Ok(render::run(state, id, run, Style::of(state)))
}

pub(crate) fn get(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let id = c.path_int(&req.params, "agent_run_id");
    let org = c.path_int(&req.params, "org_id");
    c.finish()?;
    req.admit(state, Some(org))?;
    run_body(state, org, id)
}

pub(crate) fn list(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    let user_id = c.query_int(&req.query, "user_id", None, None);
    let source_type = c.query_enum(&req.query, "source_type", &SOURCE_TYPES);
    let (skip, limit) = c.paging(&req.query);
    c.finish()?;
    req.admit(state, Some(org))?;
    let style = Style::of(state);
    let mut runs: Vec<(i64, &crate::sim::model::Run)> = state
        .runs
        .iter()
        .filter(|(_, r)| r.org_id == org)
        .filter(|(_, r)| user_id.is_none() || r.user_id == user_id)
        .filter(|(_, r)| source_type.is_none() || r.source_type == source_type)
        .map(|(id, r)| (*id, r))
        .collect();
    // Newest first; equal creation times fall back to the higher id.
    runs.sort_by(|(ia, a), (ib, b)| b.created_at.cmp(&a.created_at).then(ib.cmp(ia)));
    let items = runs
        .into_iter()
        .map(|(id, r)| render::run(state, id, r, style))
        .collect();
    Ok(render::page(items, skip, limit, style))
}

/// `StopAgentRunInput` shared by ban, unban and remove-from-pr: (org, run id).
fn stop_input(state: &mut State, req: &Req) -> Result<(i64, i64), ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    let run_id = with_body(&mut c, &req.body, |b| {
        b.string("before_card_order_id", false);
        b.string("after_card_order_id", false);
        b.int("agent_run_id", true)
    });
    c.finish()?;
    req.admit(state, Some(org))?;
    let run_id = run_id.unwrap_or_default();
    state.run_in(org, run_id).ok_or(ApiError::RunNotFound)?;
    Ok((org, run_id))
}

/// Ban and remove-from-pr (the spec calls them the same action).
pub(crate) fn ban(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let (_, run_id) = stop_input(state, req)?;
    lifecycle::ban(state, run_id);
    Ok(json!({
        "message": "Checks banned for the pull request; running agents on it were stopped.",
        "agent_run_id": run_id,
    }))
}

pub(crate) fn unban(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let (_, run_id) = stop_input(state, req)?;
    lifecycle::unban(state, run_id);
    Ok(json!({
        "message": "Checks unbanned for the pull request.",
        "agent_run_id": run_id,
    }))
}

pub(crate) fn resume(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    let (run_id, prompt) = with_body(&mut c, &req.body, |b| {
        b.strings("images");
        (b.int("agent_run_id", true), b.nonempty_string("prompt"))
    });
    c.finish()?;
    req.admit(state, Some(org))?;
    let run_id = run_id.unwrap_or_default();
    state.run_in(org, run_id).ok_or(ApiError::RunNotFound)?;
    lifecycle::resume(state, run_id, &prompt.unwrap_or_default());
    run_body(state, org, run_id)
}

pub(crate) fn logs(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let id = c.path_int(&req.params, "agent_run_id");
    let org = c.path_int(&req.params, "org_id");
    let (skip, limit) = c.paging(&req.query);
    let reverse = c.query_bool(&req.query, "reverse").unwrap_or(false);
    c.finish()?;
    req.admit(state, Some(org))?;
    let run = state.run_in(org, id).ok_or(ApiError::RunNotFound)?;
    let style = Style::of(state);
    let total = run.logs.len() as i64;
    let ordered: Box<dyn Iterator<Item = _>> = if reverse {
        Box::new(run.logs.iter().rev())
    } else {
        Box::new(run.logs.iter())
    };
    let logs: Vec<Value> = ordered
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(0))
        .map(|entry| render::log(id, entry, style))
        .collect();
    let (page, pages) = page_numbers(total, skip, limit);
    let mut body = Map::new();
    body.insert("id".to_owned(), json!(id));
    body.insert("organization_id".to_owned(), json!(run.org_id));
    body.insert("status".to_owned(), json!(run.status));
    body.insert("created_at".to_owned(), json!(style.ts(run.created_at)));
    body.insert("web_url".to_owned(), json!(render::run_web_url(id, run)));
    body.insert("result".to_owned(), json!(run.result));
    body.insert("metadata".to_owned(), json!(run.metadata));
    body.insert("logs".to_owned(), Value::Array(logs));
    body.insert("total_logs".to_owned(), json!(total));
    body.insert("page".to_owned(), json!(page));
    body.insert("size".to_owned(), json!(limit));
    body.insert("pages".to_owned(), json!(pages));
    Ok(style.object(Value::Object(body)))
}

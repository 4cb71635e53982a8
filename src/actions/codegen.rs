//! Codegen actions through the shared client, in the run's organization unless `org_id` is given.
//!
//! What is done after an attempt that may have acted (`StepCall::uncertain`):
//! - `create_run` tags the run's `metadata` with the step's idempotency key and, before creating
//!   again, looks for that key among the newest API-created runs; a match is the step's output.
//! - `resume_run` reads the run: if it is active again the earlier resume took effect and the run
//!   is the output; otherwise it is resumed again (a resumed run turns ACTIVE at once and works
//!   for minutes, so a run still finished means the resume never landed).
//! - `analyze_logs` cannot be checked (its run carries nothing of ours), so it is not repeated:
//!   the step fails for good, naming the uncertainty, and an operator decides (`jobs retry`).
//! - ban, unban, remove-from-pr and edit-pr are idempotent and simply sent again; the client
//!   retries them itself.

use serde_json::{json, Map, Value};

use super::{ActionError, StepCall};
use crate::api::{
    AgentRun, AgentType, CodegenClient, CreateRunInput, OrgId, PageRequest, PrState,
    ResumeRunInput, RunFilter, RunId, SourceType, StopRunInput,
};

/// The `metadata` field of a created run that carries the step's idempotency key.
pub const KEY_FIELD: &str = "codegen_sentinel_key";
/// Pages of newest API runs searched for an earlier create (100 runs each).
const CREATE_PROBE_PAGES: u32 = 3;

/// The organization a step acts in: `org_id`, else the run's.
pub fn target_org(params: &Map<String, Value>, context: &Value) -> Result<OrgId, ActionError> {
    params
        .get("org_id")
        .and_then(Value::as_i64)
        .or_else(|| context["run"]["organization_id"].as_i64())
        .map(OrgId)
        .ok_or_else(|| {
            ActionError::permanent("no organization: the event has no run; set `org_id`")
        })
}

/// The run a step acts on: `run_id`, else the event's run.
pub fn target_run(params: &Map<String, Value>, context: &Value) -> Result<RunId, ActionError> {
    params
        .get("run_id")
        .and_then(Value::as_i64)
        .or_else(|| context["run"]["id"].as_i64())
        .map(RunId)
        .ok_or_else(|| ActionError::permanent("no run: the event has no run; set `run_id`"))
}

/// Runs one Codegen action.
pub async fn execute(client: &CodegenClient, call: &StepCall<'_>) -> Result<Value, ActionError> {
    let org = target_org(call.params, call.context)?;
    let api = ActionError::from_api;
    match call.action.name {
        "codegen.fetch_logs" => fetch_logs(client, org, call).await,
        "codegen.analyze_logs" => analyze_logs(client, org, call).await,
        "codegen.ban_checks" => {
            let input = StopRunInput::run(target_run(call.params, call.context)?);
            client.ban_checks(org, &input).await.map_err(api)?;
            Ok(json!({}))
        }
        "codegen.unban_checks" => {
            let input = StopRunInput::run(target_run(call.params, call.context)?);
            client.unban_checks(org, &input).await.map_err(api)?;
            Ok(json!({}))
        }
        "codegen.remove_from_pr" => {
            let input = StopRunInput::run(target_run(call.params, call.context)?);
            client.remove_from_pr(org, &input).await.map_err(api)?;
            Ok(json!({}))
        }
        "codegen.resume_run" => resume_run(client, org, call).await,
        "codegen.create_run" => create_run(client, org, call).await,
        "codegen.edit_pr" => edit_pr(client, org, call).await,
        other => Err(ActionError::permanent(format!(
            "{other} is not a Codegen action the client runs"
        ))),
    }
}

async fn fetch_logs(
    client: &CodegenClient,
    org: OrgId,
    call: &StepCall<'_>,
) -> Result<Value, ActionError> {
    let run = target_run(call.params, call.context)?;
    let reverse = call.bool("reverse").unwrap_or(false);
    let logs = if call.bool("all").unwrap_or(false) {
        client.all_run_logs(org, run, reverse).await
    } else {
        let limit = call.int("limit").unwrap_or(100).clamp(1, 100) as u32;
        let page = PageRequest { skip: 0, limit };
        client.run_logs(org, run, page, reverse).await
    }
    .map_err(ActionError::from_api)?;
    let entries: Vec<Value> = logs
        .logs
        .iter()
        .map(|entry| serde_json::to_value(entry).unwrap_or(Value::Null))
        .collect();
    let errors: Vec<Value> = entries
        .iter()
        .filter(|e| e["message_type"].as_str() == Some("ERROR"))
        .cloned()
        .collect();
    let total = logs.total_logs.unwrap_or(entries.len() as i64);
    Ok(json!({ "logs": entries, "errors": errors, "total": total }))
}

async fn analyze_logs(
    client: &CodegenClient,
    org: OrgId,
    call: &StepCall<'_>,
) -> Result<Value, ActionError> {
    if call.uncertain {
        return Err(ActionError::permanent(
            "an earlier analyze-logs request may have started an analysis (no answer was read); \
             not repeating it: check the organization's runs, then `jobs retry` to send it again",
        ));
    }
    let sandbox = call
        .int("sandbox_id")
        .ok_or_else(|| ActionError::permanent("`sandbox_id` is required"))?;
    let answer = client
        .analyze_logs(org, sandbox)
        .await
        .map_err(ActionError::from_api)?;
    Ok(json!({
        "agent_run_id": answer.agent_run_id.0,
        "status": answer.status,
        "message": answer.message,
    }))
}

async fn resume_run(
    client: &CodegenClient,
    org: OrgId,
    call: &StepCall<'_>,
) -> Result<Value, ActionError> {
    let run = target_run(call.params, call.context)?;
    if call.uncertain {
        let current = client
            .get_run(org, run)
            .await
            .map_err(|e| ActionError::from_api(e).uncertain())?;
        if current.status.as_ref().is_some_and(|s| s.is_active()) {
            return run_json(&current);
        }
    }
    let input = ResumeRunInput {
        agent_run_id: run,
        prompt: call.required_str("prompt")?.to_owned(),
        images: None,
    };
    let resumed = client
        .resume_run(org, &input)
        .await
        .map_err(ActionError::from_api)?;
    run_json(&resumed)
}

async fn create_run(
    client: &CodegenClient,
    org: OrgId,
    call: &StepCall<'_>,
) -> Result<Value, ActionError> {
    if call.uncertain {
        if let Some(found) = find_created(client, org, call.key).await? {
            tracing::info!(
                job = call.job_id,
                run = found.id.0,
                "Run created by an earlier attempt found; not creating again"
            );
            return run_json(&found);
        }
    }
    let mut metadata = match call.params.get("metadata") {
        Some(Value::Object(map)) => map.clone(),
        _ => Map::new(),
    };
    metadata.insert(KEY_FIELD.to_owned(), Value::String(call.key.to_owned()));
    let agent_type = match call.str("agent_type") {
        Some("claude_code") => Some(AgentType::ClaudeCode),
        Some("codegen") => Some(AgentType::Codegen),
        Some(other) => {
            return Err(ActionError::permanent(format!(
                "`agent_type`: unknown agent {other:?}"
            )))
        }
        None => None,
    };
    let input = CreateRunInput {
        prompt: call.required_str("prompt")?.to_owned(),
        images: None,
        metadata: Some(Value::Object(metadata)),
        repo_id: call.int("repo_id"),
        model: call.str("model").map(str::to_owned),
        agent_type,
    };
    let run = client
        .create_run(org, &input)
        .await
        .map_err(ActionError::from_api)?;
    run_json(&run)
}

/// The newest API-created run whose metadata carries `key`, if any.
async fn find_created(
    client: &CodegenClient,
    org: OrgId,
    key: &str,
) -> Result<Option<AgentRun>, ActionError> {
    let filter = RunFilter {
        user_id: None,
        source_type: Some(SourceType::Api),
    };
    for page in 0..CREATE_PROBE_PAGES {
        let request = PageRequest {
            skip: page * 100,
            limit: 100,
        };
        let runs = client.list_runs(org, &filter, request).await.map_err(|e| {
            ActionError::from_api(e)
                .uncertain()
                .context("looking for a run created by an earlier attempt")
        })?;
        let count = runs.items.len();
        let found = runs.items.into_iter().find(|run| {
            run.metadata
                .as_ref()
                .and_then(|m| m.get(KEY_FIELD))
                .and_then(Value::as_str)
                == Some(key)
        });
        if found.is_some() || count < 100 {
            return Ok(found);
        }
    }
    Ok(None)
}

async fn edit_pr(
    client: &CodegenClient,
    org: OrgId,
    call: &StepCall<'_>,
) -> Result<Value, ActionError> {
    let pr_id = call
        .int("pr_id")
        .ok_or_else(|| ActionError::permanent("`pr_id` is required"))?;
    let state = match call.required_str("state")? {
        "open" => PrState::Open,
        "closed" => PrState::Closed,
        "draft" => PrState::Draft,
        "ready_for_review" => PrState::ReadyForReview,
        other => {
            return Err(ActionError::permanent(format!(
                "`state`: unknown PR state {other:?}"
            )))
        }
    };
    let answer = client
        .edit_pr(org, call.int("repo_id"), pr_id, state)
        .await
        .map_err(ActionError::from_api)?;
    serde_json::to_value(answer).map_err(|e| ActionError::permanent(e.to_string()))
}

fn run_json(run: &AgentRun) -> Result<Value, ActionError> {
    serde_json::to_value(run).map_err(|e| ActionError::permanent(format!("encoding the run: {e}")))
}

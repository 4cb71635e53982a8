//! JSON bodies built straight from the model, shaped like the spec's schemas: every nullable
//! field is written, as an explicit null when empty. Independent of the client's wire types on
//! purpose, so a serde mistake on one side cannot hide one on the other.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::config::TimestampStyle;
use super::lifecycle::is_banned;
use super::model::{LogEntry, Pr, Run, State};

/// Formatting switches read once per response.
#[derive(Clone, Copy)]
pub(crate) struct Style {
    pub timestamps: TimestampStyle,
    pub extra_fields: bool,
}

impl Style {
    pub fn of(state: &State) -> Style {
        Style {
            timestamps: state.config.timestamp_style,
            extra_fields: state.config.extra_fields,
        }
    }

    pub fn ts(self, t: DateTime<Utc>) -> String {
        match self.timestamps {
            TimestampStyle::Rfc3339 => t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
            TimestampStyle::Naive => t.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        }
    }

    /// Adds fields no schema declares, when switched on, to exercise lenient parsing.
    pub fn object(self, value: Value) -> Value {
        match value {
            Value::Object(mut map) if self.extra_fields => {
                map.insert("_revision".to_owned(), json!(3));
                map.insert("beta_flags".to_owned(), json!(["kanban_v2"]));
                map.insert("internal_note".to_owned(), Value::Null);
                Value::Object(map)
            }
            other => other,
        }
    }
}

/// The web URL of a run.
pub(crate) fn web_url(run_id: i64) -> String {
    format!("https://codegen.com/agent/trace/{run_id}")
}

/// A run's `web_url`: null for local CLI sessions, which have no trace page.
pub(crate) fn run_web_url(id: i64, run: &Run) -> Option<String> {
    (run.source_type.as_deref() != Some("LOCAL")).then(|| web_url(id))
}

/// `AgentRunResponse`.
pub(crate) fn run(state: &State, id: i64, run: &Run, style: Style) -> Value {
    let prs: Vec<Value> = run
        .pr_ids
        .iter()
        .filter_map(|p| state.prs.get(p).map(|pr| pull_request(*p, pr, style)))
        .collect();
    // A queued run has no PR list yet (null); later it is a possibly empty array.
    let github_pull_requests = if prs.is_empty() && run.status.as_deref() == Some("PENDING") {
        Value::Null
    } else {
        Value::Array(prs)
    };
    let mut body = json!({
        "id": id,
        "organization_id": run.org_id,
        "status": run.status,
        "created_at": style.ts(run.created_at),
        "web_url": run_web_url(id, run),
        "result": run.result,
        "summary": run.summary,
        "source_type": run.source_type,
        "github_pull_requests": github_pull_requests,
        "metadata": run.metadata,
    });
    if style.extra_fields {
        if let Some(map) = body.as_object_mut() {
            map.insert("is_banned".to_owned(), json!(is_banned(state, run)));
        }
    }
    style.object(body)
}

/// `GithubPullRequestResponse`.
pub(crate) fn pull_request(id: i64, pr: &Pr, style: Style) -> Value {
    style.object(json!({
        "id": id,
        "title": pr.title,
        "url": pr.url,
        "created_at": style.ts(pr.created_at),
        "head_branch_name": pr.head_branch,
    }))
}

/// `AgentRunLogResponse`.
pub(crate) fn log(run_id: i64, entry: &LogEntry, style: Style) -> Value {
    style.object(json!({
        "agent_run_id": run_id,
        "created_at": style.ts(entry.created_at),
        "tool_name": entry.tool_name,
        "message_type": entry.message_type,
        "thought": entry.thought,
        "observation": entry.observation,
        "tool_input": entry.tool_input,
        "tool_output": entry.tool_output,
    }))
}

/// `UserResponse` for a member of `org_id` (or of the user's first organisation for `/users/me`).
pub(crate) fn user(state: &State, user_id: i64, org_id: Option<i64>, style: Style) -> Value {
    let user = state.users.get(&user_id);
    let org = org_id.or_else(|| state.orgs_of(user_id).first().copied());
    let role = org.and_then(|o| state.members.get(&(o, user_id)).cloned());
    let name = user.map(|u| u.github_username.clone()).unwrap_or_default();
    style.object(json!({
        "id": user_id,
        "email": user.and_then(|u| u.email.clone()),
        "github_user_id": (9_000_000 + user_id).to_string(),
        "github_username": name,
        "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", 9_000_000 + user_id),
        "full_name": user.and_then(|u| u.full_name.clone()),
        "is_admin": role.as_deref().map(|r| r == "ADMIN"),
        "role": role,
    }))
}

/// `RepoResponse`.
pub(crate) fn repo(state: &State, repo_id: i64, style: Style) -> Value {
    let Some(repo) = state.repos.get(&repo_id) else {
        return Value::Null;
    };
    let name = repo.full_name.rsplit('/').next().unwrap_or(&repo.full_name);
    style.object(json!({
        "id": repo_id,
        "name": name,
        "full_name": repo.full_name,
        "description": format!("The {name} repository"),
        "github_id": (700_000_000 + repo_id).to_string(),
        "organization_id": repo.org_id,
        "visibility": "private",
        "archived": repo.archived,
        "setup_status": if repo.archived { "NOT_STARTED" } else { "COMPLETED" },
        "language": repo.language,
    }))
}

/// `OrganizationResponse`.
pub(crate) fn organization(state: &State, org_id: i64, style: Style) -> Value {
    let org = state.orgs.get(&org_id);
    style.object(json!({
        "id": org_id,
        "name": org.map(|o| o.name.clone()).unwrap_or_default(),
        "settings": style.object(json!({
            "enable_pr_creation": org.is_none_or(|o| o.enable_pr_creation),
            "enable_rules_detection": true,
        })),
    }))
}

/// Applies `skip`/`limit` and wraps the slice in a `Page_*_` envelope.
pub(crate) fn page(all: Vec<Value>, skip: i64, limit: i64, style: Style) -> Value {
    let total = all.len() as i64;
    let items: Vec<Value> = all
        .into_iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(limit).unwrap_or(0))
        .collect();
    let (page, pages) = page_numbers(total, skip, limit);
    style.object(json!({
        "items": items,
        "total": total,
        "page": page,
        "size": limit,
        "pages": pages,
    }))
}

/// `page = skip/limit + 1`, `pages = ceil(total/limit)`.
pub(crate) fn page_numbers(total: i64, skip: i64, limit: i64) -> (i64, i64) {
    let limit = limit.max(1);
    (skip / limit + 1, (total + limit - 1) / limit)
}

/// `{message, status_code}` or `{detail}` per the error style.
pub(crate) fn error_body(detail_style: bool, status: u16, message: &str) -> Value {
    if detail_style {
        json!({ "detail": message })
    } else {
        json!({ "message": message, "status_code": status })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_math() {
        assert_eq!(page_numbers(25, 0, 100), (1, 1));
        assert_eq!(page_numbers(25, 10, 10), (2, 3));
        assert_eq!(page_numbers(0, 0, 10), (1, 0));
        assert_eq!(page_numbers(30, 30, 10), (4, 3));
        let style = Style {
            timestamps: TimestampStyle::Rfc3339,
            extra_fields: false,
        };
        let body = page((0..7).map(|i| json!(i)).collect(), 5, 3, style);
        assert_eq!(
            body,
            json!({"items": [5, 6], "total": 7, "page": 2, "size": 3, "pages": 3})
        );
    }

    #[test]
    fn timestamp_styles() {
        let t = crate::sim::config::SimConfig::default().start_time;
        let mut style = Style {
            timestamps: TimestampStyle::Rfc3339,
            extra_fields: false,
        };
        assert_eq!(style.ts(t), "2025-06-21T11:20:04.338398Z");
        style.timestamps = TimestampStyle::Naive;
        assert_eq!(style.ts(t), "2025-06-21 11:20:04.338398");
    }
}

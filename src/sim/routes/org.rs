//! Organisation-scoped reads: organisations, users, the current user, repositories, integrations
//! and CLI rules.

use serde_json::{json, Value};

use super::Req;
use crate::sim::error::ApiError;
use crate::sim::model::State;
use crate::sim::render::{self, Style};
use crate::sim::validate::Checker;

pub(crate) fn list_orgs(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let (skip, limit) = c.paging(&req.query);
    c.finish()?;
    let user = req.admit(state, None)?;
    let style = Style::of(state);
    let items = state
        .orgs_of(user)
        .into_iter()
        .map(|org| render::organization(state, org, style))
        .collect();
    Ok(render::page(items, skip, limit, style))
}

pub(crate) fn list_users(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    let (skip, limit) = c.paging(&req.query);
    c.finish()?;
    req.admit(state, Some(org))?;
    let style = Style::of(state);
    let items = state
        .org_members(org)
        .map(|user| render::user(state, user, Some(org), style))
        .collect();
    Ok(render::page(items, skip, limit, style))
}

pub(crate) fn get_user(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    let user = c.path_int(&req.params, "user_id");
    c.finish()?;
    req.admit(state, Some(org))?;
    if !state.is_member(org, user) {
        return Err(ApiError::UserNotFound);
    }
    Ok(render::user(state, user, Some(org), Style::of(state)))
}

pub(crate) fn me(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let user = req.admit(state, None)?;
    Ok(render::user(state, user, None, Style::of(state)))
}

pub(crate) fn list_repos(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    let (skip, limit) = c.paging(&req.query);
    c.finish()?;
    req.admit(state, Some(org))?;
    let style = Style::of(state);
    let items = state
        .org_repos(org)
        .map(|(id, _)| render::repo(state, id, style))
        .collect();
    Ok(render::page(items, skip, limit, style))
}

pub(crate) fn integrations(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    c.finish()?;
    req.admit(state, Some(org))?;
    let style = Style::of(state);
    let name = state
        .orgs
        .get(&org)
        .map(|o| o.name.clone())
        .unwrap_or_default();
    let slack_connected = state
        .oauth
        .iter()
        .any(|((_, o), p)| *o == org && p.contains("slack"));
    let integrations = vec![
        style.object(json!({
            "integration_type": "github",
            "active": true,
            "token_id": null,
            "installation_id": 40_000_000 + org,
            "metadata": {"app_name": "codegen-sh", "account_login": name},
        })),
        style.object(json!({
            "integration_type": "slack",
            "active": slack_connected,
            "token_id": if slack_connected { json!(60_000 + org) } else { Value::Null },
            "installation_id": null,
            "metadata": null,
        })),
        style.object(json!({
            "integration_type": "linear",
            "active": false,
            "token_id": null,
            "installation_id": null,
            "metadata": null,
        })),
        style.object(json!({
            "integration_type": "circleci",
            "active": false,
            "token_id": null,
            "installation_id": null,
            "metadata": {"kind": "api_key"},
        })),
    ];
    let active = integrations
        .iter()
        .filter(|i| i["active"] == json!(true))
        .count();
    Ok(style.object(json!({
        "organization_id": org,
        "organization_name": name,
        "integrations": integrations,
        "total_active_integrations": active,
    })))
}

pub(crate) fn cli_rules(state: &mut State, req: &Req) -> Result<Value, ApiError> {
    let mut c = Checker::default();
    let org = c.path_int(&req.params, "org_id");
    c.finish()?;
    let user = req.admit(state, Some(org))?;
    let rules = state.orgs.get(&org).and_then(|o| o.rules.clone());
    let prompt = state
        .users
        .get(&user)
        .map(|u| format!("Sign commits as {}.", u.github_username));
    Ok(Style::of(state).object(json!({
        "organization_rules": rules,
        "user_custom_prompt": prompt,
    })))
}

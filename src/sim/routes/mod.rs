//! The route table of the simulated API: exact spec paths, their rate-limit classes, the request
//! extractor every operation uses and the auth / rate-limit / org-access gate.

mod misc;
mod observe;
mod org;
mod runs;

use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::Method;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::Value;

use super::config::RouteClass;
use super::error::{json_status, method_not_allowed, route_not_found, ApiError, ErrorSwitches};
use super::model::State;
use super::validate::Query;
use super::Simulator;

/// Largest request body the simulator reads.
const MAX_BODY: usize = 4 * 1024 * 1024;

const USERS: &str = "/v1/organizations/{org_id}/users";
const USER: &str = "/v1/organizations/{org_id}/users/{user_id}";
const ME: &str = "/v1/users/me";
const CREATE_RUN: &str = "/v1/organizations/{org_id}/agent/run";
const RUN: &str = "/v1/organizations/{org_id}/agent/run/{agent_run_id}";
const RUNS: &str = "/v1/organizations/{org_id}/agent/runs";
const RESUME: &str = "/v1/organizations/{org_id}/agent/run/resume";
const BAN: &str = "/v1/organizations/{org_id}/agent/run/ban";
const UNBAN: &str = "/v1/organizations/{org_id}/agent/run/unban";
const REMOVE_FROM_PR: &str = "/v1/organizations/{org_id}/agent/run/remove-from-pr";
const REPOS: &str = "/v1/organizations/{org_id}/repos";
const CHECK_SUITE: &str = "/v1/organizations/{org_id}/repos/check-suite-settings";
const PR_SIMPLE: &str = "/v1/organizations/{org_id}/prs/{pr_id}";
const PR_IN_REPO: &str = "/v1/organizations/{org_id}/repos/{repo_id}/prs/{pr_id}";
const INTEGRATIONS: &str = "/v1/organizations/{org_id}/integrations";
const SETUP_COMMANDS: &str = "/v1/organizations/{org_id}/setup-commands/generate";
const ORGS: &str = "/v1/organizations";
const MCP_PROVIDERS: &str = "/v1/mcp-providers";
const OAUTH_STATUS: &str = "/v1/oauth/tokens/status";
const OAUTH_REVOKE: &str = "/v1/oauth/tokens/revoke";
const ANALYZE_LOGS: &str = "/v1/organizations/{org_id}/sandbox/{sandbox_id}/analyze-logs";
const CLI_RULES: &str = "/v1/organizations/{org_id}/cli/rules";
const SLACK_TOKEN: &str = "/v1/slack-connect/generate-token";
const LOGS: &str = "/v1/alpha/organizations/{org_id}/agent/run/{agent_run_id}/logs";

/// The rate-limit class of a matched route, `None` for a method the path does not serve.
///
/// Resume, ban, unban and remove-from-pr list 429 without a number: they count as standard.
/// Check-suite settings, MCP providers, OAuth status/revoke and Slack connect list no 429 at all:
/// they are unlimited.
pub(crate) fn classify(method: &Method, path: &str) -> Option<RouteClass> {
    use RouteClass::*;
    let class = match (method.as_str(), path) {
        ("GET", USERS | USER | ME | RUN | RUNS | REPOS | INTEGRATIONS | ORGS) => Standard,
        ("POST", RESUME | BAN | UNBAN | REMOVE_FROM_PR) => Standard,
        ("POST", CREATE_RUN) => Create,
        ("GET", LOGS) => Logs,
        ("POST", ANALYZE_LOGS) => AnalyzeLogs,
        ("POST", SETUP_COMMANDS) => SetupCommands,
        ("PATCH", PR_SIMPLE | PR_IN_REPO) => PrEdit,
        ("GET", CLI_RULES) => CliRules,
        ("GET" | "PUT", CHECK_SUITE) => Unlimited,
        ("GET", MCP_PROVIDERS | OAUTH_STATUS) => Unlimited,
        ("POST", OAUTH_REVOKE | SLACK_TOKEN) => Unlimited,
        _ => return None,
    };
    Some(class)
}

/// An operation over the locked state: 200 with the returned JSON, or an error answer.
type Op = fn(&mut State, &Req) -> Result<Value, ApiError>;

/// Wraps an [`Op`] as an axum handler.
macro_rules! op {
    ($f:path) => {
        |axum::extract::State(sim): axum::extract::State<Simulator>, req: Req| async move {
            sim.run_op(&req, $f as Op)
        }
    };
}

/// The full router: every spec operation, FastAPI-style 404/405, the request log and faults.
pub(crate) fn router(sim: &Simulator) -> Router {
    Router::new()
        .route(USERS, get(op!(org::list_users)))
        .route(USER, get(op!(org::get_user)))
        .route(ME, get(op!(org::me)))
        .route(CREATE_RUN, post(op!(runs::create)))
        .route(RUN, get(op!(runs::get)))
        .route(RUNS, get(op!(runs::list)))
        .route(RESUME, post(op!(runs::resume)))
        .route(BAN, post(op!(runs::ban)))
        .route(UNBAN, post(op!(runs::unban)))
        .route(REMOVE_FROM_PR, post(op!(runs::ban)))
        .route(REPOS, get(op!(org::list_repos)))
        .route(
            CHECK_SUITE,
            get(op!(misc::get_check_suite)).put(op!(misc::put_check_suite)),
        )
        .route(PR_SIMPLE, patch(op!(misc::edit_pr)))
        .route(PR_IN_REPO, patch(op!(misc::edit_pr)))
        .route(INTEGRATIONS, get(op!(org::integrations)))
        .route(SETUP_COMMANDS, post(op!(misc::setup_commands)))
        .route(ORGS, get(op!(org::list_orgs)))
        .route(MCP_PROVIDERS, get(op!(misc::mcp_providers)))
        .route(OAUTH_STATUS, get(op!(misc::oauth_status)))
        .route(OAUTH_REVOKE, post(op!(misc::oauth_revoke)))
        .route(ANALYZE_LOGS, post(op!(misc::analyze_logs)))
        .route(CLI_RULES, get(op!(org::cli_rules)))
        .route(SLACK_TOKEN, post(op!(misc::slack_token)))
        .route(LOGS, get(op!(runs::logs)))
        .fallback(|| async { route_not_found() })
        .method_not_allowed_fallback(|| async { method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            observe::observe,
        ))
        .with_state(sim.clone())
}

impl Simulator {
    fn run_op(&self, req: &Req, op: Op) -> Response {
        let mut state = self.lock();
        match op(&mut state, req) {
            Ok(body) => Json(body).into_response(),
            Err(e) => e.render(ErrorSwitches::of(&state)),
        }
    }
}

/// What an operation sees of a request.
pub(crate) struct Req {
    pub params: Vec<(String, String)>,
    pub query: Query,
    pub body: axum::body::Bytes,
    pub token: Option<String>,
    pub class: RouteClass,
}

impl<S: Send + Sync> FromRequest<S> for Req {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let params = RawPathParams::from_request_parts(&mut parts, state)
            .await
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let class = parts
            .extensions
            .get::<RouteClass>()
            .copied()
            .unwrap_or(RouteClass::Standard);
        let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
            json_status(413, serde_json::json!({"detail": "Request body too large"}))
        })?;
        Ok(Req {
            params,
            query: Query::parse(parts.uri.query()),
            body,
            token: bearer_token(&parts.headers),
            class,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header (any header-name case).
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<String> {
    let value = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}

impl Req {
    /// Authentication (401), then the rate limit (429, counting only admitted requests), then
    /// membership of `org` (403). Returns the acting user.
    pub fn admit(&self, state: &mut State, org: Option<i64>) -> Result<i64, ApiError> {
        let token = self.token.as_deref().ok_or(ApiError::Unauthorized)?;
        let user = state.user_for_token(token).ok_or(ApiError::Unauthorized)?;
        if state.config.rate_limits
            && !state
                .limiter
                .admit(token, self.class, tokio::time::Instant::now())
        {
            return Err(ApiError::RateLimited);
        }
        match org {
            Some(org) if !state.is_member(org, user) => Err(ApiError::Forbidden),
            _ => Ok(user),
        }
    }
}

//! An in-memory GitHub behind the REST paths octocrab calls for our actions: pull requests with
//! their issue comments, labels and review requests, and commit statuses. Its JSON is written
//! here from GitHub's documented shapes, not from anything the client defines. It takes one token,
//! or (App mode, `app.rs`) installation tokens it issued itself.

// Handlers answer errors as ready responses; their size does not matter in a test double.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::app;

/// A comment as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Comment {
    pub id: u64,
    pub body: String,
}

/// A commit status as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct CommitStatus {
    pub sha: String,
    pub state: String,
    pub context: String,
    pub description: Option<String>,
    pub target_url: Option<String>,
}

#[derive(Default)]
struct Pr {
    comments: Vec<Comment>,
    labels: Vec<String>,
    reviewers: Vec<String>,
    teams: Vec<String>,
}

#[derive(Default)]
pub(super) struct World {
    token: String,
    /// App mode: JWTs, installations and their tokens instead of `token`.
    pub(super) app: Option<super::app::AppWorld>,
    /// "owner/repo" → number → PR.
    prs: HashMap<String, BTreeMap<u64, Pr>>,
    statuses: HashMap<String, Vec<CommitStatus>>,
    next_id: u64,
}

/// The fake; clones share one world.
#[derive(Clone)]
pub struct FakeGithub {
    world: Arc<Mutex<World>>,
}

type Answer = Result<Response, Response>;

impl FakeGithub {
    /// A GitHub that accepts `token` (as `Bearer` or `token`).
    pub fn new(token: &str) -> FakeGithub {
        FakeGithub {
            world: Arc::new(Mutex::new(World {
                token: token.to_owned(),
                next_id: 1_000,
                ..World::default()
            })),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens pull request `number` in `repo` ("owner/name").
    pub fn add_pr(&self, repo: &str, number: u64) {
        self.lock()
            .prs
            .entry(repo.to_owned())
            .or_default()
            .entry(number)
            .or_default();
    }

    /// Adds a comment as if someone else wrote it.
    pub fn add_comment(&self, repo: &str, number: u64, body: &str) {
        let mut world = self.lock();
        world.next_id += 1;
        let id = world.next_id;
        if let Some(pr) = world.prs.get_mut(repo).and_then(|p| p.get_mut(&number)) {
            pr.comments.push(Comment {
                id,
                body: body.to_owned(),
            });
        }
    }

    pub fn comments(&self, repo: &str, number: u64) -> Vec<Comment> {
        self.read(repo, number, |pr| pr.comments.clone())
    }

    pub fn labels(&self, repo: &str, number: u64) -> Vec<String> {
        self.read(repo, number, |pr| pr.labels.clone())
    }

    /// (users, teams) asked to review.
    pub fn review_requests(&self, repo: &str, number: u64) -> (Vec<String>, Vec<String>) {
        self.read(repo, number, |pr| (pr.reviewers.clone(), pr.teams.clone()))
    }

    pub fn statuses(&self, repo: &str) -> Vec<CommitStatus> {
        self.lock().statuses.get(repo).cloned().unwrap_or_default()
    }

    fn read<T: Default>(&self, repo: &str, number: u64, f: impl Fn(&Pr) -> T) -> T {
        self.lock()
            .prs
            .get(repo)
            .and_then(|p| p.get(&number))
            .map(f)
            .unwrap_or_default()
    }

    /// The routes, at GitHub's paths.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                get(list_comments).post(create_comment),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/labels",
                post(add_labels),
            )
            .route(
                "/repos/{owner}/{repo}/issues/{number}/labels/{name}",
                delete(remove_label),
            )
            .route(
                "/repos/{owner}/{repo}/pulls/{number}/requested_reviewers",
                post(request_reviewers),
            )
            .route("/repos/{owner}/{repo}/statuses/{sha}", post(create_status))
            .route(
                "/repos/{owner}/{repo}/installation",
                get(app::repo_installation),
            )
            .route("/app/installations/{id}", get(app::get_installation))
            .route(
                "/app/installations/{id}/access_tokens",
                post(app::create_token),
            )
            .fallback(|| async { not_found() })
            .layer(axum::middleware::map_response(rate_headers))
            .with_state(self.clone())
    }

    /// 401 unless the token is ours (App mode: a live token of `owner`'s installation).
    fn authorize(&self, headers: &HeaderMap, owner: &str) -> Result<(), Response> {
        if let Some(app) = self.lock().app.as_mut() {
            return app.authorize(headers, owner);
        }
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| {
                scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")
            })
            .map(|(_, token)| token.trim().to_owned());
        if given.as_deref() == Some(self.lock().token.as_str()) {
            return Ok(());
        }
        Err(error(StatusCode::UNAUTHORIZED, "Bad credentials"))
    }

    /// Runs `f` on an existing PR; 404 otherwise.
    fn with_pr<T>(
        &self,
        owner: &str,
        repo: &str,
        number: u64,
        f: impl FnOnce(&mut Pr, &mut u64) -> T,
    ) -> Result<T, Response> {
        let mut world = self.lock();
        let World { prs, next_id, .. } = &mut *world;
        let pr = prs
            .get_mut(&format!("{owner}/{repo}"))
            .and_then(|p| p.get_mut(&number))
            .ok_or_else(not_found)?;
        Ok(f(pr, next_id))
    }
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

pub(super) fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found")
}

fn invalid(message: &str) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// The rate-limit headers GitHub sends on every answer (never exhausted here; faults do that).
async fn rate_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", 5000.into());
    headers.insert("x-ratelimit-remaining", 4999.into());
    headers.insert("x-ratelimit-reset", 4_102_444_800i64.into());
    response
}

fn comment_json(owner: &str, repo: &str, number: u64, c: &Comment) -> Value {
    json!({
        "id": c.id,
        "node_id": format!("IC_{}", c.id),
        "url": format!("https://api.github.com/repos/{owner}/{repo}/issues/comments/{}", c.id),
        "html_url": format!("https://github.com/{owner}/{repo}/pull/{number}#issuecomment-{}", c.id),
        "issue_url": format!("https://api.github.com/repos/{owner}/{repo}/issues/{number}"),
        "body": c.body,
        "user": {"login": "codegen-sentinel[bot]", "id": 1, "type": "Bot"},
        "created_at": "2025-06-21T11:20:04Z",
        "updated_at": "2025-06-21T11:20:04Z",
        "author_association": "NONE",
    })
}

fn label_json(name: &str) -> Value {
    json!({"id": name.len(), "node_id": format!("LA_{name}"), "name": name, "color": "ededed", "default": false, "description": null})
}

type PrPath = Path<(String, String, u64)>;

async fn list_comments(
    State(gh): State<FakeGithub>,
    Path((owner, repo, number)): PrPath,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Answer {
    gh.authorize(&headers, &owner)?;
    let per_page = query
        .get("per_page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30usize)
        .clamp(1, 100);
    let page = query
        .get("page")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1usize)
        .max(1);
    let items = gh.with_pr(&owner, &repo, number, |pr, _| {
        pr.comments
            .iter()
            .skip((page - 1) * per_page)
            .take(per_page)
            .map(|c| comment_json(&owner, &repo, number, c))
            .collect::<Vec<_>>()
    })?;
    Ok(Json(items).into_response())
}

async fn create_comment(
    State(gh): State<FakeGithub>,
    Path((owner, repo, number)): PrPath,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    gh.authorize(&headers, &owner)?;
    let text = body["body"]
        .as_str()
        .ok_or_else(|| invalid("body is missing"))?
        .to_owned();
    let comment = gh.with_pr(&owner, &repo, number, |pr, next_id| {
        *next_id += 1;
        let comment = Comment {
            id: *next_id,
            body: text,
        };
        pr.comments.push(comment.clone());
        comment
    })?;
    Ok((
        StatusCode::CREATED,
        Json(comment_json(&owner, &repo, number, &comment)),
    )
        .into_response())
}

async fn add_labels(
    State(gh): State<FakeGithub>,
    Path((owner, repo, number)): PrPath,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    gh.authorize(&headers, &owner)?;
    let wanted: Vec<String> = body["labels"]
        .as_array()
        .ok_or_else(|| invalid("labels must be a list"))?
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    let labels = gh.with_pr(&owner, &repo, number, |pr, _| {
        for label in wanted {
            if !pr.labels.contains(&label) {
                pr.labels.push(label);
            }
        }
        pr.labels.iter().map(|l| label_json(l)).collect::<Vec<_>>()
    })?;
    Ok(Json(labels).into_response())
}

async fn remove_label(
    State(gh): State<FakeGithub>,
    Path((owner, repo, number, name)): Path<(String, String, u64, String)>,
    headers: HeaderMap,
) -> Answer {
    gh.authorize(&headers, &owner)?;
    let labels = gh.with_pr(&owner, &repo, number, |pr, _| {
        let before = pr.labels.len();
        pr.labels.retain(|l| *l != name);
        (before != pr.labels.len())
            .then(|| pr.labels.iter().map(|l| label_json(l)).collect::<Vec<_>>())
    })?;
    match labels {
        Some(labels) => Ok(Json(labels).into_response()),
        None => Err(error(StatusCode::NOT_FOUND, "Label does not exist")),
    }
}

async fn request_reviewers(
    State(gh): State<FakeGithub>,
    Path((owner, repo, number)): PrPath,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    gh.authorize(&headers, &owner)?;
    let list = |key: &str| -> Vec<String> {
        body[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (users, teams) = (list("reviewers"), list("team_reviewers"));
    if users.is_empty() && teams.is_empty() {
        return Err(invalid("reviewers or team_reviewers is required"));
    }
    gh.with_pr(&owner, &repo, number, |pr, _| {
        for user in users {
            if !pr.reviewers.contains(&user) {
                pr.reviewers.push(user);
            }
        }
        for team in teams {
            if !pr.teams.contains(&team) {
                pr.teams.push(team);
            }
        }
    })?;
    let pr = json!({"number": number, "url": format!("https://api.github.com/repos/{owner}/{repo}/pulls/{number}"), "state": "open"});
    Ok((StatusCode::CREATED, Json(pr)).into_response())
}

async fn create_status(
    State(gh): State<FakeGithub>,
    Path((owner, repo, sha)): Path<(String, String, String)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    gh.authorize(&headers, &owner)?;
    let state = body["state"].as_str().unwrap_or_default().to_owned();
    if !["error", "failure", "pending", "success"].contains(&state.as_str()) {
        return Err(invalid("state is not included in the list"));
    }
    let text = |key: &str| body[key].as_str().map(str::to_owned);
    let status = CommitStatus {
        sha: sha.clone(),
        state,
        context: text("context").unwrap_or_else(|| "default".to_owned()),
        description: text("description"),
        target_url: text("target_url"),
    };
    let answer = json!({
        "id": 1, "state": status.state, "context": status.context,
        "description": status.description, "target_url": status.target_url,
        "url": format!("https://api.github.com/repos/{owner}/{repo}/statuses/{sha}"),
    });
    gh.lock()
        .statuses
        .entry(format!("{owner}/{repo}"))
        .or_default()
        .push(status);
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

//! GitHub actions on pull requests and commits, through [`GithubClient`].
//!
//! `github.comment` is the one whose repetition shows: its body carries a hidden marker with the
//! step's idempotency key, and after an attempt that may have posted, the PR's comments are
//! searched for the marker before posting again. Labels, review requests and commit statuses are
//! idempotent at GitHub (adding a present label or re-setting a status changes nothing).

mod app;
mod client;
mod error;
mod gate;

use serde_json::{json, Value};

pub use app::TOKEN_REFRESH_MARGIN;
pub use client::{GithubAuth, GithubClient, GithubClientBuilder, Verb, DEFAULT_BASE_URL};
pub use error::GithubError;
pub use gate::{RateGate, CONTENT_PER_MINUTE, CONTENT_WINDOW};

use super::{ActionError, StepCall};

/// Comments listed per page while looking for a marker (GitHub's maximum).
const PER_PAGE: usize = 100;
/// Pages searched for a marker at most (3000 comments).
const MAX_COMMENT_PAGES: usize = 30;
/// The context of a commit status when none is given.
pub const DEFAULT_STATUS_CONTEXT: &str = "codegen-sentinel";

/// The hidden line that marks a comment as posted by the step with `key`.
pub fn comment_marker(key: &str) -> String {
    format!("<!-- codegen-sentinel:{key} -->")
}

/// A repository, `owner/name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    pub owner: String,
    pub name: String,
}

impl RepoRef {
    /// Reads `owner/name` or a repository URL.
    pub fn parse(text: &str) -> Result<RepoRef, String> {
        let text = text.trim();
        let path = match url::Url::parse(text) {
            Ok(url) => url.path().trim_matches('/').to_owned(),
            Err(_) => text.to_owned(),
        };
        let mut parts = path.split('/');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(owner), Some(name), None) if valid_name(owner) && valid_name(name) => {
                Ok(RepoRef {
                    owner: owner.to_owned(),
                    name: name.trim_end_matches(".git").to_owned(),
                })
            }
            _ => Err(format!("expected owner/repo, got {text:?}")),
        }
    }

    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    fn path(&self) -> String {
        format!("/repos/{}/{}", encode(&self.owner), encode(&self.name))
    }
}

/// A pull request: a URL (`https://github.com/o/r/pull/N`) or `owner/repo#N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrRef {
    pub repo: RepoRef,
    pub number: u64,
}

impl PrRef {
    pub fn parse(text: &str) -> Result<PrRef, String> {
        let text = text.trim();
        let bad = || format!("expected a pull request URL or owner/repo#N, got {text:?}");
        let (repo, number) = match crate::events::parse_github_pr_url(text) {
            Some(found) => found,
            None => {
                let (repo, number) = text.split_once('#').ok_or_else(bad)?;
                (repo.to_owned(), number.trim().parse().map_err(|_| bad())?)
            }
        };
        if number == 0 {
            return Err(bad());
        }
        let repo = RepoRef::parse(&repo).map_err(|_| bad())?;
        Ok(PrRef { repo, number })
    }

    /// The issue path of the PR (comments and labels live on the issue).
    fn issue_path(&self) -> String {
        format!("{}/issues/{}", self.repo.path(), self.number)
    }
}

impl std::fmt::Display for PrRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}#{}", self.repo.owner, self.repo.name, self.number)
    }
}

fn valid_name(part: &str) -> bool {
    !part.is_empty()
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Percent-encodes one path segment (labels may hold spaces and symbols).
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Runs one GitHub action.
pub async fn execute(client: &GithubClient, call: &StepCall<'_>) -> Result<Value, ActionError> {
    match call.action.name {
        "github.comment" => comment(client, call).await,
        "github.add_labels" => add_labels(client, call).await,
        "github.remove_labels" => remove_labels(client, call).await,
        "github.request_reviewers" => request_reviewers(client, call).await,
        "github.commit_status" => commit_status(client, call).await,
        other => Err(ActionError::permanent(format!(
            "{other} is not a GitHub action"
        ))),
    }
}

fn pr_of(call: &StepCall<'_>) -> Result<PrRef, ActionError> {
    PrRef::parse(call.required_str("pr")?).map_err(|m| ActionError::permanent(format!("`pr`: {m}")))
}

async fn comment(client: &GithubClient, call: &StepCall<'_>) -> Result<Value, ActionError> {
    let pr = pr_of(call)?;
    let marker = comment_marker(call.key);
    if call.uncertain {
        if let Some(found) = find_marked(client, &pr, &marker).await? {
            tracing::info!(job = call.job_id, %pr, "Comment posted by an earlier attempt found; not posting again");
            return Ok(found);
        }
    }
    let body = format!("{}\n\n{marker}", call.required_str("body")?.trim_end());
    let path = format!("{}/comments", pr.issue_path());
    let posted = client
        .request(&pr.repo, Verb::Post, &path, Some(&json!({ "body": body })))
        .await
        .map_err(|e| e.into_action(true))?;
    Ok(comment_output(&posted))
}

/// The comment of `pr` whose body holds `marker`.
async fn find_marked(
    client: &GithubClient,
    pr: &PrRef,
    marker: &str,
) -> Result<Option<Value>, ActionError> {
    for page in 1..=MAX_COMMENT_PAGES {
        let path = format!(
            "{}/comments?per_page={PER_PAGE}&page={page}",
            pr.issue_path()
        );
        let listed = client
            .request(&pr.repo, Verb::Get, &path, None)
            .await
            .map_err(|e| {
                e.into_action(false)
                    .uncertain()
                    .context("looking for a comment posted by an earlier attempt")
            })?;
        let comments = listed.as_array().cloned().unwrap_or_default();
        if let Some(found) = comments
            .iter()
            .find(|c| c["body"].as_str().is_some_and(|b| b.contains(marker)))
        {
            return Ok(Some(comment_output(found)));
        }
        if comments.len() < PER_PAGE {
            return Ok(None);
        }
    }
    Ok(None)
}

fn comment_output(comment: &Value) -> Value {
    json!({ "id": comment["id"], "url": comment["html_url"] })
}

async fn add_labels(client: &GithubClient, call: &StepCall<'_>) -> Result<Value, ActionError> {
    let pr = pr_of(call)?;
    let labels = call.list("labels");
    if labels.is_empty() {
        return Ok(json!({}));
    }
    let path = format!("{}/labels", pr.issue_path());
    client
        .request(
            &pr.repo,
            Verb::Post,
            &path,
            Some(&json!({ "labels": labels })),
        )
        .await
        .map_err(|e| e.into_action(true))?;
    Ok(json!({}))
}

async fn remove_labels(client: &GithubClient, call: &StepCall<'_>) -> Result<Value, ActionError> {
    let pr = pr_of(call)?;
    for label in call.list("labels") {
        let path = format!("{}/labels/{}", pr.issue_path(), encode(&label));
        match client.request(&pr.repo, Verb::Delete, &path, None).await {
            Ok(_) => {}
            // Already absent: what we wanted.
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e.into_action(true).context(&format!("label {label:?}"))),
        }
    }
    Ok(json!({}))
}

async fn request_reviewers(
    client: &GithubClient,
    call: &StepCall<'_>,
) -> Result<Value, ActionError> {
    let pr = pr_of(call)?;
    let reviewers = call.list("reviewers");
    let teams = call.list("team_reviewers");
    if reviewers.is_empty() && teams.is_empty() {
        return Err(ActionError::permanent(
            "give `reviewers` or `team_reviewers` (both are empty)",
        ));
    }
    let path = format!("{}/pulls/{}/requested_reviewers", pr.repo.path(), pr.number);
    let body = json!({ "reviewers": reviewers, "team_reviewers": teams });
    client
        .request(&pr.repo, Verb::Post, &path, Some(&body))
        .await
        .map_err(|e| e.into_action(true))?;
    Ok(json!({}))
}

async fn commit_status(client: &GithubClient, call: &StepCall<'_>) -> Result<Value, ActionError> {
    let repo = RepoRef::parse(call.required_str("repo")?)
        .map_err(|m| ActionError::permanent(format!("`repo`: {m}")))?;
    let sha = call.required_str("sha")?.trim();
    if sha.is_empty() || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ActionError::permanent(format!(
            "`sha`: expected a commit hash, got {sha:?}"
        )));
    }
    let mut body = json!({
        "state": call.required_str("state")?,
        "context": call.str("context").unwrap_or(DEFAULT_STATUS_CONTEXT),
    });
    for field in ["description", "target_url"] {
        if let Some(value) = call.str(field) {
            body[field] = Value::String(value.to_owned());
        }
    }
    let path = format!("{}/statuses/{sha}", repo.path());
    client
        .request(&repo, Verb::Post, &path, Some(&body))
        .await
        .map_err(|e| e.into_action(true))?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_requests_are_read_from_urls_and_short_forms() {
        let pr = PrRef::parse("https://github.com/acme/widgets/pull/42").unwrap();
        assert_eq!(
            (pr.repo.full_name(), pr.number),
            ("acme/widgets".into(), 42)
        );
        let pr = PrRef::parse(" acme/widgets#7 ").unwrap();
        assert_eq!(pr.to_string(), "acme/widgets#7");
        assert_eq!(pr.issue_path(), "/repos/acme/widgets/issues/7");
        for bad in [
            "acme/widgets",
            "acme#3",
            "acme/widgets#x",
            "a/b/c#1",
            "acme/w#0",
            "",
        ] {
            assert!(PrRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repos_and_path_segments_are_safe() {
        assert_eq!(RepoRef::parse("acme/w").unwrap().full_name(), "acme/w");
        assert_eq!(
            RepoRef::parse("https://github.com/acme/w.git")
                .unwrap()
                .full_name(),
            "acme/w"
        );
        assert!(RepoRef::parse("acme/w?x=1").is_err());
        assert_eq!(encode("needs review/ok"), "needs%20review%2Fok");
        assert_eq!(comment_marker("k-1"), "<!-- codegen-sentinel:k-1 -->");
    }
}

//! The events rules react to (DESIGN §5): their types, stable ids and the data they carry.
//!
//! Events are written to the store in the same transaction as the observation that produced them.
//! Their ids are derived from what happened (org, run, transition sequence, PR id, delivery id),
//! never from when it was seen, so observing the same change twice yields the same id and the
//! store keeps one.

use serde_json::{json, Value};

use crate::api::{AgentRun, PullRequest};
use crate::store::{EventRecord, Tx, TxAbort};

/// The kind of an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A run is seen for the first time.
    RunCreated,
    /// A run's status differs from the stored one.
    RunStatusChanged,
    /// A run entered a terminal status.
    RunFinished,
    /// A run left a terminal or PAUSED status for an active one.
    RunResumed,
    /// A pull request appeared on a run.
    RunPrOpened,
    /// A non-terminal status stayed unchanged for `stall_after`.
    RunStalled,
    /// A verified GitHub delivery of this event name (`github.check_suite`, ...).
    Github(String),
    /// A cron tick of a scheduled rule.
    Schedule,
}

impl EventKind {
    /// Every run event type, for rule validation and docs.
    pub const RUN_TYPES: [&'static str; 6] = [
        "run.created",
        "run.status_changed",
        "run.finished",
        "run.resumed",
        "run.pr_opened",
        "run.stalled",
    ];

    /// The type name rules match on.
    pub fn as_str(&self) -> String {
        match self {
            EventKind::RunCreated => "run.created".into(),
            EventKind::RunStatusChanged => "run.status_changed".into(),
            EventKind::RunFinished => "run.finished".into(),
            EventKind::RunResumed => "run.resumed".into(),
            EventKind::RunPrOpened => "run.pr_opened".into(),
            EventKind::RunStalled => "run.stalled".into(),
            EventKind::Github(name) => format!("github.{name}"),
            EventKind::Schedule => "schedule".into(),
        }
    }

    /// The short suffix used in stable ids.
    fn id_suffix(&self) -> &str {
        match self {
            EventKind::RunCreated => "created",
            EventKind::RunStatusChanged => "status_changed",
            EventKind::RunFinished => "finished",
            EventKind::RunResumed => "resumed",
            EventKind::RunPrOpened => "pr_opened",
            EventKind::RunStalled => "stalled",
            EventKind::Github(name) => name,
            EventKind::Schedule => "schedule",
        }
    }

    /// The stable id of a run event tied to transition `seq` of a run.
    pub fn run_event_id(&self, org: i64, run: i64, seq: u32) -> String {
        format!("run/{org}/{run}/{seq}/{}", self.id_suffix())
    }
}

/// The stable id of `run.pr_opened` for one PR: a PR opens once, whatever the transitions.
pub fn pr_opened_id(org: i64, run: i64, pr_id: i64) -> String {
    format!("run/{org}/{run}/pr/{pr_id}")
}

/// The `pr` context of DESIGN §4 for a PR of a run: `id`, `url`, `title`, `head_branch`,
/// `repo` (`owner/name`) and `number`, the last two read from a GitHub PR URL.
pub fn pr_context(pr: &PullRequest) -> Value {
    let (repo, number) = pr
        .url
        .as_deref()
        .and_then(parse_github_pr_url)
        .map_or((None, None), |(repo, number)| (Some(repo), Some(number)));
    json!({
        "id": pr.id,
        "url": pr.url,
        "title": pr.title,
        "head_branch": pr.head_branch_name,
        "repo": repo,
        "number": number,
    })
}

/// Reads `https://github.com/OWNER/REPO/pull/N` (any host) into (`OWNER/REPO`, N).
pub fn parse_github_pr_url(url: &str) -> Option<(String, u64)> {
    let parsed = url::Url::parse(url).ok()?;
    let parts: Vec<&str> = parsed.path_segments()?.filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        [owner, repo, "pull", number, ..] => {
            Some((format!("{owner}/{repo}"), number.parse().ok()?))
        }
        _ => None,
    }
}

/// The data stored with a run event: the run as the API returned it, and transition details.
pub fn run_event_data(
    raw: &Value,
    from: Option<&str>,
    to: Option<&str>,
    pr: Option<&PullRequest>,
) -> Value {
    json!({
        "run": raw,
        "from": from,
        "to": to,
        "pr": pr.map(pr_context),
    })
}

/// The first PR of a run, as the `pr` of its events when no specific PR is meant.
pub fn primary_pr(run: &AgentRun) -> Option<&PullRequest> {
    run.pull_requests().first()
}

/// Receives every new event inside the transaction that recorded it, so that whatever it writes
/// (decisions, jobs) commits or fails together with the event. It may run more than once per
/// event (the store retries conflicting transactions): it must only write through `tx`.
pub trait EventSink: Send + Sync {
    fn on_event(&self, tx: &Tx<'_>, event: &EventRecord) -> Result<(), TxAbort>;

    /// Whether events of type `kind` may matter to this sink. When false, a source may skip
    /// work only the sink would use (the webhook receiver then does not build the payload of
    /// the event it offers); `on_event` is still called.
    fn wants(&self, kind: &str) -> bool {
        let _ = kind;
        true
    }
}

/// A sink that does nothing: events are recorded and nothing reacts.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoSink;

impl EventSink for NoSink {
    fn on_event(&self, _tx: &Tx<'_>, _event: &EventRecord) -> Result<(), TxAbort> {
        Ok(())
    }

    fn wants(&self, _kind: &str) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_pr_urls_are_read() {
        assert_eq!(
            parse_github_pr_url("https://github.com/acme/widgets/pull/42"),
            Some(("acme/widgets".into(), 42))
        );
        assert_eq!(
            parse_github_pr_url("https://github.com/acme/widgets/pull/42/files"),
            Some(("acme/widgets".into(), 42))
        );
        assert_eq!(
            parse_github_pr_url("https://github.com/acme/widgets/issues/42"),
            None
        );
        assert_eq!(parse_github_pr_url("not a url"), None);
    }

    #[test]
    fn run_event_ids_are_stable() {
        assert_eq!(
            EventKind::RunFinished.run_event_id(7, 123, 4),
            "run/7/123/4/finished"
        );
        assert_eq!(pr_opened_id(7, 123, 9), "run/7/123/pr/9");
        assert_eq!(
            EventKind::Github("check_suite".into()).as_str(),
            "github.check_suite"
        );
    }
}

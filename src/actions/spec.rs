//! The catalogue of actions (DESIGN §6): each action's parameters and outputs, so rule files are
//! checked when they load (unknown action, missing or unknown `with` key, a literal of the wrong
//! type, a `steps.<id>.field` that the action never outputs).

/// The type a parameter takes once its template (if any) is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Any text.
    String,
    /// A whole number (a template must render to one).
    Int,
    /// true or false.
    Bool,
    /// A list of strings, or one comma-separated string.
    StringList,
    /// A JSON object.
    Object,
    /// A humantime duration such as `30m`.
    Duration,
    /// Any JSON value.
    Any,
}

impl ParamKind {
    /// How the kind is named in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            ParamKind::String => "a string",
            ParamKind::Int => "an integer",
            ParamKind::Bool => "true or false",
            ParamKind::StringList => "a list of strings",
            ParamKind::Object => "an object",
            ParamKind::Duration => "a duration such as 30m",
            ParamKind::Any => "any value",
        }
    }
}

/// One `with` parameter of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub required: bool,
    /// One line for docs and `rules schema`.
    pub doc: &'static str,
}

/// An action rules can name in `steps[].action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub params: &'static [ParamSpec],
    /// Fields of the step's output (`steps.<id>.<field>`); `None` means any field (a run, an
    /// API answer passed through).
    pub outputs: Option<&'static [&'static str]>,
    /// Whether repeating the action repeats its effect (checked before retrying after an
    /// uncertain attempt).
    pub effectful: bool,
}

impl ActionSpec {
    pub fn param(&self, name: &str) -> Option<&'static ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
}

const fn req(name: &'static str, kind: ParamKind, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required: true,
        doc,
    }
}

const fn opt(name: &'static str, kind: ParamKind, doc: &'static str) -> ParamSpec {
    ParamSpec {
        name,
        kind,
        required: false,
        doc,
    }
}

use ParamKind::*;

const ORG: ParamSpec = opt("org_id", Int, "organization (default: the run's)");
const RUN_ID: ParamSpec = opt("run_id", Int, "agent run (default: run.id)");
const RUN_FIELDS: &[&str] = &[
    "id",
    "organization_id",
    "status",
    "created_at",
    "web_url",
    "result",
    "summary",
    "source_type",
    "github_pull_requests",
    "metadata",
];

/// Every action, in the order of DESIGN §6.
pub const ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        name: "codegen.fetch_logs",
        doc: "Fetch the run's logs.",
        params: &[
            RUN_ID,
            ORG,
            opt("limit", Int, "entries to fetch (1..100, default 100)"),
            opt("reverse", Bool, "newest first"),
            opt("all", Bool, "walk every page"),
        ],
        outputs: Some(&["logs", "errors", "total"]),
        effectful: false,
    },
    ActionSpec {
        name: "codegen.analyze_logs",
        doc: "Start a log analysis of a sandbox (a new agent run).",
        params: &[req("sandbox_id", Int, "the sandbox to analyze"), ORG],
        outputs: Some(&["agent_run_id", "status", "message"]),
        effectful: true,
    },
    ActionSpec {
        name: "codegen.ban_checks",
        doc: "Ignore check-suite events on the run's PR and stop its agents.",
        params: &[RUN_ID, ORG],
        outputs: Some(&[]),
        effectful: false,
    },
    ActionSpec {
        name: "codegen.unban_checks",
        doc: "Process check-suite events on the run's PR again.",
        params: &[RUN_ID, ORG],
        outputs: Some(&[]),
        effectful: false,
    },
    ActionSpec {
        name: "codegen.remove_from_pr",
        doc: "Remove Codegen from the run's PR.",
        params: &[RUN_ID, ORG],
        outputs: Some(&[]),
        effectful: false,
    },
    ActionSpec {
        name: "codegen.resume_run",
        doc: "Resume a run with a follow-up prompt.",
        params: &[RUN_ID, ORG, req("prompt", String, "the follow-up")],
        outputs: Some(RUN_FIELDS),
        effectful: true,
    },
    ActionSpec {
        name: "codegen.create_run",
        doc: "Create an agent run.",
        params: &[
            req("prompt", String, "what the agent should do"),
            ORG,
            opt("repo_id", Int, "repository (default: the org's)"),
            opt("model", String, "model name"),
            opt("agent_type", String, "codegen or claude_code"),
            opt("metadata", Object, "kept on the run"),
        ],
        outputs: Some(RUN_FIELDS),
        effectful: true,
    },
    ActionSpec {
        name: "codegen.edit_pr",
        doc: "Change a PR's state through Codegen.",
        params: &[
            req("pr_id", Int, "Codegen's PR id"),
            opt("repo_id", Int, "repository (repo-scoped path)"),
            req("state", String, "open, closed, draft or ready_for_review"),
            ORG,
        ],
        outputs: Some(&["success", "url", "number", "title", "state", "error"]),
        effectful: false,
    },
    ActionSpec {
        name: "codegen.wait_for_run",
        doc: "Wait durably until the run is terminal.",
        params: &[
            RUN_ID,
            ORG,
            opt("timeout", Duration, "give up after (default 1h)"),
        ],
        outputs: Some(RUN_FIELDS),
        effectful: false,
    },
    ActionSpec {
        name: "github.comment",
        doc: "Comment on a pull request (once, whatever the retries).",
        params: &[
            req("pr", String, "PR URL or owner/repo#N"),
            req("body", String, "Markdown"),
        ],
        outputs: Some(&["id", "url"]),
        effectful: true,
    },
    ActionSpec {
        name: "github.add_labels",
        doc: "Add labels to a pull request.",
        params: &[
            req("pr", String, "PR URL or owner/repo#N"),
            req("labels", StringList, "labels to add"),
        ],
        outputs: Some(&[]),
        effectful: false,
    },
    ActionSpec {
        name: "github.remove_labels",
        doc: "Remove labels from a pull request.",
        params: &[
            req("pr", String, "PR URL or owner/repo#N"),
            req("labels", StringList, "labels to remove"),
        ],
        outputs: Some(&[]),
        effectful: false,
    },
    ActionSpec {
        name: "github.request_reviewers",
        doc: "Request reviews on a pull request.",
        params: &[
            req("pr", String, "PR URL or owner/repo#N"),
            opt("reviewers", StringList, "user logins"),
            opt("team_reviewers", StringList, "team slugs"),
        ],
        outputs: Some(&[]),
        effectful: false,
    },
    ActionSpec {
        name: "github.commit_status",
        doc: "Set a commit status.",
        params: &[
            req("repo", String, "owner/repo"),
            req("sha", String, "commit"),
            req("state", String, "error, failure, pending or success"),
            opt("context", String, "status name (default codegen-sentinel)"),
            opt("description", String, "short text"),
            opt("target_url", String, "link"),
        ],
        outputs: Some(&[]),
        effectful: false,
    },
    ActionSpec {
        name: "notify",
        doc: "Send a message to a configured notifier.",
        params: &[
            req("to", String, "a notifier name from the config"),
            opt("text", String, "the message"),
            opt("payload", Any, "extra JSON (webhook notifiers)"),
        ],
        outputs: Some(&["status"]),
        effectful: true,
    },
    ActionSpec {
        name: "log",
        doc: "Write a line to the daemon's log.",
        params: &[
            req("message", String, "the line"),
            opt("level", String, "error, warn, info (default) or debug"),
        ],
        outputs: Some(&[]),
        effectful: false,
    },
];

/// The action called `name`.
pub fn action(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_params_too() {
        let mut names: Vec<_> = ACTIONS.iter().map(|a| a.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ACTIONS.len());
        for a in ACTIONS {
            let mut params: Vec<_> = a.params.iter().map(|p| p.name).collect();
            params.sort_unstable();
            params.dedup();
            assert_eq!(params.len(), a.params.len(), "{}", a.name);
        }
        assert_eq!(action("notify").unwrap().param("to").unwrap().kind, String);
    }
}

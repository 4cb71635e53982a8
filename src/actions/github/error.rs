//! A failed GitHub request, and what it means to the executor: retry or not, and whether the
//! attempt may have acted.

use std::time::Duration;

use crate::actions::ActionError;

/// A failed GitHub request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GithubError {
    /// GitHub asked us to wait (429, or 403 with the limit exhausted), or our own gate is closed
    /// (`sent` false). Nothing was done either way.
    #[error("GitHub rate limit: nothing is sent for {}s{}", .wait.as_secs(), if *.sent { "" } else { " (not sent)" })]
    RateLimited { wait: Duration, sent: bool },
    /// Any other non-success answer.
    #[error("GitHub answered {status}: {message}")]
    Status { status: u16, message: String },
    /// No complete answer in time.
    #[error("GitHub request timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed or broke.
    #[error("GitHub request failed: {0}")]
    Transport(String),
    /// A success whose body is not the JSON expected.
    #[error("GitHub answer could not be read: {0}")]
    Decode(String),
    /// The client could not be built or authenticated (bad key, bad base URL).
    #[error("GitHub client: {0}")]
    Setup(String),
    /// GitHub answered 401 to a GitHub App installation token. GitHub did nothing; the token is
    /// dropped and the next attempt authenticates with a new one.
    #[error("GitHub refused the App installation token for {owner} (401: {message}); the next attempt fetches a new one")]
    TokenRefused { owner: String, message: String },
}

impl GithubError {
    /// The executor's view: `mutating` requests that may have reached GitHub are uncertain.
    pub fn into_action(self, mutating: bool) -> ActionError {
        let message = self.to_string();
        let maybe = |e: ActionError| if mutating { e.uncertain() } else { e };
        match self {
            GithubError::RateLimited { wait, sent } => {
                let e = ActionError::transient(message).after(Some(wait));
                if sent {
                    e
                } else {
                    e.unsent()
                }
            }
            GithubError::Status { status, .. } if status == 408 || status >= 500 => {
                maybe(ActionError::transient(message))
            }
            GithubError::Status { .. } | GithubError::Setup(_) => ActionError::permanent(message),
            // Known not to have acted, and a fresh token may well be accepted.
            GithubError::TokenRefused { .. } => ActionError::transient(message),
            GithubError::Timeout(_) | GithubError::Transport(_) | GithubError::Decode(_) => {
                maybe(ActionError::transient(message))
            }
        }
    }

    /// The HTTP status GitHub answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            GithubError::Status { status, .. } => Some(*status),
            GithubError::TokenRefused { .. } => Some(401),
            _ => None,
        }
    }

    /// Prefixes the message with what was being done.
    pub(super) fn context(self, what: &str) -> GithubError {
        match self {
            GithubError::Status { status, message } => GithubError::Status {
                status,
                message: format!("{what}: {message}"),
            },
            GithubError::Transport(m) => GithubError::Transport(format!("{what}: {m}")),
            GithubError::Decode(m) => GithubError::Decode(format!("{what}: {m}")),
            GithubError::Setup(m) => GithubError::Setup(format!("{what}: {m}")),
            other => other,
        }
    }
}

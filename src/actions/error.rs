//! Why an action failed, in the terms the executor decides on: retry or give up, how long to wait,
//! and whether the failed attempt may still have had its effect.

use std::time::Duration;

use crate::api::ApiError;

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Trying again later may succeed: server trouble, throttling, the network.
    Transient,
    /// Trying again cannot help: a 4xx (other than 408/429), bad parameters, missing config.
    Permanent,
}

/// A failed attempt of an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    pub class: ErrorClass,
    pub message: String,
    /// The server (or our own rate gate) asked for at least this long before the next request.
    pub retry_after: Option<Duration>,
    /// The request may have reached the target and acted (a timeout, a dropped connection, a 5xx
    /// after sending, an unreadable 2xx): an effectful action checks the target before repeating.
    pub maybe_applied: bool,
    /// Nothing was sent (our own rate gate refused): the attempt does not count.
    pub not_sent: bool,
}

impl ActionError {
    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> ActionError {
        ActionError {
            class: ErrorClass::Permanent,
            message: message.into(),
            retry_after: None,
            maybe_applied: false,
            not_sent: false,
        }
    }

    /// A failure worth retrying; the request is known not to have acted.
    pub fn transient(message: impl Into<String>) -> ActionError {
        ActionError {
            class: ErrorClass::Transient,
            ..ActionError::permanent(message)
        }
    }

    /// Marks the attempt as possibly applied.
    pub fn uncertain(mut self) -> ActionError {
        self.maybe_applied = true;
        self
    }

    /// Sets the least wait before the next request.
    pub fn after(mut self, wait: Option<Duration>) -> ActionError {
        self.retry_after = wait;
        self
    }

    /// Our own gate refused before sending: the attempt is not counted.
    pub fn unsent(mut self) -> ActionError {
        self.not_sent = true;
        self
    }

    pub fn is_permanent(&self) -> bool {
        self.class == ErrorClass::Permanent
    }

    /// Prefixes the message with what was being done.
    pub fn context(mut self, what: &str) -> ActionError {
        self.message = format!("{what}: {}", self.message);
        self
    }

    /// Classifies a Codegen API error. 429 never acted; 5xx, timeouts, transport failures and
    /// unreadable answers may have.
    pub fn from_api(err: ApiError) -> ActionError {
        let message = err.to_string();
        match &err {
            ApiError::RateLimited { retry_after, .. } => {
                ActionError::transient(message).after(*retry_after)
            }
            ApiError::Server { .. }
            | ApiError::Timeout(_)
            | ApiError::Transport(_)
            | ApiError::Decode { .. } => ActionError::transient(message).uncertain(),
            ApiError::Client { status: 408, .. } => ActionError::transient(message).uncertain(),
            ApiError::Unauthorized { .. }
            | ApiError::Forbidden { .. }
            | ApiError::NotFound { .. }
            | ApiError::Validation { .. }
            | ApiError::QuotaExceeded { .. }
            | ApiError::Client { .. } => ActionError::permanent(message),
        }
    }

    /// Classifies an HTTP status of a plain HTTP target (a notifier): 408, 429 and 5xx are
    /// transient, other 4xx permanent. Only 429 is known not to have acted.
    pub fn from_status(status: u16, detail: &str, retry_after: Option<Duration>) -> ActionError {
        let message = if detail.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {detail}")
        };
        match status {
            429 => ActionError::transient(message).after(retry_after),
            408 | 500..=599 => ActionError::transient(message)
                .after(retry_after)
                .uncertain(),
            _ => ActionError::permanent(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_are_classified_by_retry_and_certainty() {
        let limited = ActionError::from_api(ApiError::RateLimited {
            retry_after: Some(Duration::from_secs(3)),
            message: "slow down".into(),
        });
        assert_eq!(limited.class, ErrorClass::Transient);
        assert_eq!(limited.retry_after, Some(Duration::from_secs(3)));
        assert!(!limited.maybe_applied);

        let server = ActionError::from_api(ApiError::Server {
            status: 502,
            message: "bad gateway".into(),
        });
        assert!(!server.is_permanent() && server.maybe_applied);

        let missing = ActionError::from_api(ApiError::NotFound {
            message: "no run".into(),
        });
        assert!(missing.is_permanent());
        let quota = ActionError::from_api(ApiError::QuotaExceeded {
            message: "plan".into(),
        });
        assert!(quota.is_permanent());
    }

    #[test]
    fn http_statuses_follow_the_retry_rules() {
        assert!(!ActionError::from_status(429, "", None).maybe_applied);
        assert!(!ActionError::from_status(429, "", None).is_permanent());
        assert!(!ActionError::from_status(408, "", None).is_permanent());
        assert!(ActionError::from_status(503, "", None).maybe_applied);
        assert!(ActionError::from_status(404, "", None).is_permanent());
        assert!(ActionError::from_status(422, "", None).is_permanent());
        assert_eq!(
            ActionError::from_status(500, "boom", None).message,
            "HTTP 500: boom"
        );
    }
}

//! Errors of the Codegen client, in variants a caller can act on.
//!
//! Error bodies come in three shapes: `{message, status_code}` (the spec's models),
//! `{detail: "..."}` (FastAPI's HTTPException) and `{detail: [{loc, msg, type}]}` (422). Anything
//! else is kept as (truncated) raw text.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

/// How much of a raw error body is kept in a message.
const MAX_ERROR_TEXT: usize = 300;

/// A failed Codegen API call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 401: the token is missing, invalid or expired.
    #[error("unauthorized (401): {message}")]
    Unauthorized { message: String },
    /// 403: the token has no access to this organization.
    #[error("forbidden (403): {message}")]
    Forbidden { message: String },
    /// 404: the run, user, sandbox, repo or route does not exist.
    #[error("not found (404): {message}")]
    NotFound { message: String },
    /// 422 (or 400): the request was rejected as invalid.
    #[error("invalid request ({status}): {message}")]
    Validation { status: u16, message: String },
    /// 429: slow down; `retry_after` when the server said how long.
    #[error("rate limited (429): {message}{}", retry_after_text(.retry_after))]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// 402: the plan's agent-run quota is used up. Needs a human; never retried.
    #[error("quota exceeded (402): {message}")]
    QuotaExceeded { message: String },
    /// Another 4xx status.
    #[error("request failed ({status}): {message}")]
    Client { status: u16, message: String },
    /// 5xx: the server failed.
    #[error("server error ({status}): {message}")]
    Server { status: u16, message: String },
    /// No complete answer within the request timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed or closed before a complete answer.
    #[error("transport error: {0}")]
    Transport(String),
    /// The answer was not the JSON the spec describes.
    #[error("could not decode the answer at `{path}`: {message}")]
    Decode { path: String, message: String },
}

fn retry_after_text(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {}s)", d.as_secs()),
        None => String::new(),
    }
}

impl ApiError {
    /// Builds the error for a non-success answer.
    pub fn from_response(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let message = error_message(body);
        let code = status.as_u16();
        match code {
            401 => ApiError::Unauthorized { message },
            402 => ApiError::QuotaExceeded { message },
            403 => ApiError::Forbidden { message },
            404 => ApiError::NotFound { message },
            400 | 422 => ApiError::Validation {
                status: code,
                message,
            },
            429 => ApiError::RateLimited {
                retry_after,
                message,
            },
            500..=599 => ApiError::Server {
                status: code,
                message,
            },
            _ => ApiError::Client {
                status: code,
                message,
            },
        }
    }

    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Unauthorized { .. } => Some(401),
            ApiError::Forbidden { .. } => Some(403),
            ApiError::NotFound { .. } => Some(404),
            ApiError::QuotaExceeded { .. } => Some(402),
            ApiError::RateLimited { .. } => Some(429),
            ApiError::Validation { status, .. }
            | ApiError::Client { status, .. }
            | ApiError::Server { status, .. } => Some(*status),
            ApiError::Timeout(_) | ApiError::Transport(_) | ApiError::Decode { .. } => None,
        }
    }

    /// Whether trying again later may succeed (server trouble, throttling, the network).
    ///
    /// Whether it is *safe* to try again is a separate question: see [`ApiError::was_not_processed`].
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::RateLimited { .. }
            | ApiError::Server { .. }
            | ApiError::Timeout(_)
            | ApiError::Transport(_) => true,
            ApiError::Client { status, .. } => *status == 408,
            ApiError::Unauthorized { .. }
            | ApiError::Forbidden { .. }
            | ApiError::NotFound { .. }
            | ApiError::Validation { .. }
            | ApiError::QuotaExceeded { .. }
            | ApiError::Decode { .. } => false,
        }
    }

    /// The server said it did not act on the request, so even a non-idempotent call may be sent
    /// again (429 is answered before any work is done).
    pub fn was_not_processed(&self) -> bool {
        matches!(self, ApiError::RateLimited { .. })
    }

    /// How long the server asked us to wait.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Builds the error for a failure below HTTP.
    pub fn from_transport(err: &reqwest::Error, timeout: Duration) -> Self {
        if err.is_timeout() {
            return ApiError::Timeout(timeout);
        }
        // reqwest's Display names the URL; ours never carry secrets, but the chain is what helps.
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        ApiError::Transport(text)
    }
}

/// Reads `message`, then `detail` (a string or a FastAPI list), then the raw text.
pub fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        if let Some(message) = value.get("message").and_then(Value::as_str) {
            return message.to_owned();
        }
        match value.get("detail") {
            Some(Value::String(detail)) => return detail.clone(),
            Some(Value::Array(items)) => return validation_details(items),
            _ => {}
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".to_owned();
    }
    truncate(text, MAX_ERROR_TEXT)
}

fn validation_details(items: &[Value]) -> String {
    let parts: Vec<String> = items
        .iter()
        .map(|item| {
            let loc = item
                .get("loc")
                .and_then(Value::as_array)
                .map(|loc| {
                    loc.iter()
                        .map(|p| match p {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(".")
                })
                .unwrap_or_default();
            let msg = item.get("msg").and_then(Value::as_str).unwrap_or("invalid");
            if loc.is_empty() {
                msg.to_owned()
            } else {
                format!("{loc}: {msg}")
            }
        })
        .collect();
    if parts.is_empty() {
        "validation failed".to_owned()
    } else {
        parts.join("; ")
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Parses `Retry-After` given in seconds (the HTTP-date form is read as well).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_come_from_message_then_detail_then_text() {
        assert_eq!(
            error_message(br#"{"message":"Agent run not found.","status_code":404}"#),
            "Agent run not found."
        );
        assert_eq!(
            error_message(br#"{"detail":"Rate limit exceeded","status_code":429}"#),
            "Rate limit exceeded"
        );
        assert_eq!(
            error_message(
                br#"{"detail":[{"loc":["body","prompt"],"msg":"Field required","type":"missing"}]}"#
            ),
            "body.prompt: Field required"
        );
        assert_eq!(error_message(b"Bad Gateway"), "Bad Gateway");
        assert_eq!(error_message(b""), "(empty body)");
        assert!(error_message(&[b'x'; 1000]).len() < 400);
    }

    #[test]
    fn statuses_map_to_actionable_variants() {
        let e = ApiError::from_response(
            StatusCode::TOO_MANY_REQUESTS,
            Some(Duration::from_secs(3)),
            b"{}",
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
        assert!(e.is_transient() && e.was_not_processed());
        let e = ApiError::from_response(StatusCode::PAYMENT_REQUIRED, None, b"{}");
        assert!(matches!(e, ApiError::QuotaExceeded { .. }) && !e.is_transient());
        let e = ApiError::from_response(StatusCode::BAD_GATEWAY, None, b"{}");
        assert!(matches!(e, ApiError::Server { status: 502, .. }) && e.is_transient());
        let e = ApiError::from_response(StatusCode::UNPROCESSABLE_ENTITY, None, b"{}");
        assert!(!e.is_transient());
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("soon"), None);
    }
}

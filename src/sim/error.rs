//! Error answers of the simulated API and how each is rendered under the current error-body
//! switches (documented `{message,status_code}`, FastAPI `{detail}`, legacy 429).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::config::ErrorStyle;
use super::model::State;
use super::render::error_body;

/// The spec's `APIRateLimitErrorResponse` message.
const RATE_LIMIT_MESSAGE: &str = "Rate limit exceeded. Please try again later.";

/// A refusal, rendered by [`ApiError::render`].
#[derive(Debug)]
pub(crate) enum ApiError {
    /// 422 with pydantic-style entries.
    Validation(Vec<Value>),
    /// Missing or unknown token (401 unless configured otherwise).
    Unauthorized,
    /// 403 `PermissionsErrorResponse`.
    Forbidden,
    /// 429 `APIRateLimitErrorResponse` (or the legacy body).
    RateLimited,
    /// 404 `AgentRunNotFoundErrorResponse`.
    RunNotFound,
    /// 404 `UserNotFoundErrorResponse`.
    UserNotFound,
    /// 404 `NoReposFoundInOrgErrorResponse`.
    NoRepos,
    /// 402 `AgentRunLimitReachedErrorResponse`.
    QuotaExceeded,
    /// Any other status with a message.
    Status(u16, String),
}

/// The error switches, copied out of the state so rendering needs no lock.
#[derive(Clone, Copy)]
pub(crate) struct ErrorSwitches {
    pub detail_style: bool,
    pub legacy_429: bool,
    pub retry_after: Option<u64>,
    pub unauthorized_status: u16,
}

impl ErrorSwitches {
    pub fn of(state: &State) -> ErrorSwitches {
        ErrorSwitches {
            detail_style: state.config.error_style == ErrorStyle::Detail,
            legacy_429: state.config.legacy_429_body,
            retry_after: state.config.retry_after,
            unauthorized_status: state.config.unauthorized_status,
        }
    }
}

impl ApiError {
    pub fn render(self, sw: ErrorSwitches) -> Response {
        let (status, message) = match self {
            ApiError::Validation(errors) => {
                return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "detail": errors })))
                    .into_response();
            }
            ApiError::RateLimited => return rate_limited(sw),
            ApiError::Unauthorized => (
                sw.unauthorized_status,
                "Invalid or expired API token.".to_owned(),
            ),
            ApiError::Forbidden => (403, "You do not have access to this organization.".to_owned()),
            ApiError::RunNotFound => (404, "Agent run not found.".to_owned()),
            ApiError::UserNotFound => (404, "User not found.".to_owned()),
            ApiError::NoRepos => (
                404,
                "No repos found in the organization. Please add some repos and try again."
                    .to_owned(),
            ),
            ApiError::QuotaExceeded => (
                402,
                "Alloted agent runs for the current billing plan have been reached. Please upgrade your plan to continue."
                    .to_owned(),
            ),
            ApiError::Status(status, message) => (status, message),
        };
        json_status(status, error_body(sw.detail_style, status, &message))
    }
}

/// A JSON body with a numeric status (500 when the number is not a valid status).
pub(crate) fn json_status(status: u16, body: Value) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(body)).into_response()
}

fn rate_limited(sw: ErrorSwitches) -> Response {
    let body = if sw.legacy_429 {
        json!({"detail": "Rate limit exceeded", "status_code": 429})
    } else {
        json!({"message": RATE_LIMIT_MESSAGE, "status_code": 429})
    };
    let mut response = json_status(429, body);
    if let Some(secs) = sw.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    response
}

/// FastAPI's answer for a path no route matches.
pub(crate) fn route_not_found() -> Response {
    json_status(404, json!({"detail": "Not Found"}))
}

/// FastAPI's answer for a known path with the wrong method.
pub(crate) fn method_not_allowed() -> Response {
    json_status(405, json!({"detail": "Method Not Allowed"}))
}

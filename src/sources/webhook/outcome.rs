//! How one webhook request ended: its status and short body, its metric label, its log line.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::{valid_delivery, valid_event, Rejection, Webhooks};
use crate::store::{EventRecord, StoreError};

/// How one request ended; decides the status, the body, the metric label and the log line.
#[derive(Debug)]
pub(super) enum Outcome {
    Accepted(EventRecord),
    Duplicate,
    Ping,
    Unauthorized(Rejection),
    TooLarge,
    Malformed(&'static str),
    Timeout,
    Failed(std::sync::Arc<StoreError>),
    /// Recording the delivery panicked or its writer stopped (a bug): it may or may not be stored
    /// (a redelivery then gets 200 or 202).
    Internal,
}

impl Outcome {
    pub(super) fn label(&self) -> &'static str {
        match self {
            Outcome::Accepted(_) => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Ping => "ping",
            Outcome::Unauthorized(_) => "unauthorized",
            Outcome::TooLarge => "too_large",
            Outcome::Malformed(_) => "malformed",
            Outcome::Timeout => "timeout",
            Outcome::Failed(_) | Outcome::Internal => "error",
        }
    }

    /// Short bodies that echo nothing of the request but the delivery id.
    pub(super) fn into_response(self, delivery: Option<&str>) -> Response {
        let (status, text) = match &self {
            Outcome::Accepted(_) => (StatusCode::ACCEPTED, "accepted"),
            Outcome::Duplicate => (StatusCode::OK, "duplicate delivery, already processed"),
            Outcome::Ping => (StatusCode::OK, "pong"),
            Outcome::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "signature required"),
            Outcome::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload too large"),
            Outcome::Malformed(why) => (StatusCode::BAD_REQUEST, *why),
            Outcome::Timeout => (StatusCode::REQUEST_TIMEOUT, "body not received in time"),
            Outcome::Failed(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "could not store the delivery",
            ),
            Outcome::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        };
        let delivery = match &self {
            Outcome::Accepted(_) | Outcome::Duplicate => delivery,
            _ => None,
        };
        (
            status,
            Json(Answer {
                status: text,
                delivery,
            }),
        )
            .into_response()
    }
}

/// The JSON body of an answer.
#[derive(Serialize)]
struct Answer<'a> {
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery: Option<&'a str>,
}

pub(super) fn log_outcome(
    hooks: &Webhooks,
    outcome: &Outcome,
    delivery: Option<&str>,
    event: Option<&str>,
    remote: Option<SocketAddr>,
) {
    // Header values are the sender's: shown only once they passed the same checks as stored ids.
    let delivery = delivery.filter(|d| valid_delivery(d));
    let event = event.filter(|e| valid_event(e));
    // Formatted only for a line that is written.
    let remote = || remote.map(|r| r.ip().to_string());
    match outcome {
        Outcome::Accepted(e) => {
            tracing::debug!(
                delivery,
                event,
                seq = e.seq,
                run = e.run_id,
                "Webhook delivery stored"
            );
        }
        Outcome::Duplicate => tracing::info!(delivery, event, "Webhook delivery already processed"),
        Outcome::Ping => tracing::info!(delivery, remote = remote(), "Webhook ping answered"),
        Outcome::Failed(error) => {
            tracing::error!(delivery, event, %error, "Webhook delivery not stored");
        }
        Outcome::Internal => {
            tracing::error!(delivery, event, "Webhook delivery processing panicked")
        }
        Outcome::Unauthorized(_) | Outcome::TooLarge | Outcome::Malformed(_) | Outcome::Timeout => {
            if let Some(suppressed) = hooks.rejections.admit() {
                let reason = match outcome {
                    Outcome::Unauthorized(r) => r.as_str(),
                    Outcome::TooLarge => "payload too large",
                    Outcome::Malformed(why) => why,
                    _ => "body not received in time",
                };
                tracing::warn!(
                    delivery,
                    event,
                    remote = remote(),
                    reason,
                    suppressed,
                    "Webhook delivery rejected"
                );
            }
        }
    }
}

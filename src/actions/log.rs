//! The `log` action: one line in the daemon's log, at the level the step asks for.

use serde_json::{json, Value};

use super::StepCall;

/// Writes the step's `message`; the level defaults to info.
pub fn execute(call: &StepCall<'_>) -> Value {
    let message = call.str("message").unwrap_or_default();
    let (job, rule) = (call.job_id, call.rule);
    match call.str("level").unwrap_or("info") {
        "error" => tracing::error!(job, rule, "{message}"),
        "warn" => tracing::warn!(job, rule, "{message}"),
        "debug" => tracing::debug!(job, rule, "{message}"),
        _ => tracing::info!(job, rule, "{message}"),
    }
    json!({})
}

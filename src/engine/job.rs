//! The data of a job written by a fired rule: the job contract (contracts.md) the executor reads.

use serde_json::{json, Value};

use crate::rules::eval::EventContext;
use crate::rules::Rule;

/// The `version` of the job data this build writes.
pub const JOB_DATA_VERSION: u32 = 1;

/// `JobRecord.data` for `rule` fired on the event of `ctx`: the context it saw and its steps,
/// copied so that a reload never changes a job in flight.
pub fn job_data(rule: &Rule, ctx: &EventContext, rules_hash: &str) -> Value {
    json!({
        "version": JOB_DATA_VERSION,
        "rules_hash": rules_hash,
        "rule": rule.context_value(),
        "context": ctx.job_context(rule),
        "steps": rule.steps_json,
        "progress": {},
    })
}

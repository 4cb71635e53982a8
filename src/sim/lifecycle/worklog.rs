//! The log entries a simulated run writes: a fixed rotation of tool calls and plan evaluations
//! while it works, with `observation` alternating between a string and an object.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::sim::model::{LogEntry, Run};

pub(super) fn base_log(t: DateTime<Utc>, message_type: &'static str) -> LogEntry {
    LogEntry {
        created_at: t,
        message_type,
        tool_name: None,
        thought: None,
        observation: None,
        tool_input: None,
        tool_output: None,
    }
}

pub(super) fn push_log(run: &mut Run, t: DateTime<Utc>, mut entry: LogEntry) {
    entry.created_at = t;
    run.logs.push(entry);
}

pub(super) fn evaluation_log() -> LogEntry {
    let mut entry = base_log(DateTime::<Utc>::UNIX_EPOCH, "PLAN_EVALUATION");
    entry.thought = Some("The fix is in place; reviewing the diff before finishing.".to_owned());
    entry
}

/// The work log written while a run is active: a fixed rotation of tool calls and plan
/// evaluations, with `observation` alternating between a string and an object.
pub(super) fn push_work_log(run: &mut Run, t: DateTime<Utc>) {
    let seq = run.log_seq;
    run.log_seq += 1;
    let mut entry = base_log(t, "ACTION");
    match seq % 4 {
        0 => {
            entry.tool_name = Some("ripgrep_search".to_owned());
            entry.thought = Some("Finding where the failing code lives.".to_owned());
            entry.tool_input = Some(json!({"query": "fn retry", "path": "src/"}));
            entry.tool_output = Some(json!({"matches": 3, "files": ["src/net.rs"]}));
            entry.observation = Some(json!("Found 3 matches in src/net.rs"));
        }
        1 => {
            entry.tool_name = Some("view_file".to_owned());
            entry.tool_input = Some(json!({"path": "src/net.rs", "start": 1, "end": 80}));
            entry.tool_output = Some(json!({"lines": 80}));
            entry.observation =
                Some(json!({"content_preview": "pub fn retry(...)", "truncated": true}));
        }
        2 => {
            entry.message_type = "PLAN_EVALUATION";
            entry.thought = Some("The retry loop never backs off; adding jitter.".to_owned());
        }
        _ => {
            entry.tool_name = Some("run_command".to_owned());
            entry.thought = Some("Running the test suite.".to_owned());
            entry.tool_input = Some(json!({"command": "cargo test"}));
            entry.tool_output = Some(json!({"exit_code": 0}));
            entry.observation =
                Some(json!({"stdout": "test result: ok. 42 passed", "exit_code": 0}));
        }
    }
    run.logs.push(entry);
}

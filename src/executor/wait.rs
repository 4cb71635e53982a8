//! `codegen.wait_for_run`: whether the awaited run is terminal yet.
//!
//! The store is the first source: the poller records every status it sees and publishes an
//! event after each flush, which wakes the parked job at once. A run the store does not hold
//! (an organization nobody polls) is read from the API, at a slow cadence.

use std::time::Duration;

use serde_json::Value;

use crate::actions::ActionError;
use crate::api::{CodegenClient, OrgId, RunId, RunStatus};
use crate::store::Store;

/// How often a parked job re-reads the store even without an event (events can be missed
/// when the feed overflows; a re-check costs one local read).
pub const RECHECK_TRACKED: Duration = Duration::from_secs(5 * 60);
/// How often a run the poller does not track is read from the API.
pub const RECHECK_UNTRACKED: Duration = Duration::from_secs(60);

/// What a check found.
#[derive(Debug, Clone, PartialEq)]
pub enum RunCheck {
    /// The run is terminal: this is the run, as the API returned it.
    Terminal(Value),
    /// Not yet; `tracked` when the poller records the run (events will wake the job).
    NotYet { tracked: bool },
}

impl RunCheck {
    /// When to look again without an event.
    pub fn recheck(&self) -> Duration {
        match self {
            RunCheck::NotYet { tracked: false } => RECHECK_UNTRACKED,
            RunCheck::NotYet { tracked: true } | RunCheck::Terminal(_) => RECHECK_TRACKED,
        }
    }
}

/// Looks at the run in the store, else asks the API.
pub async fn check_run(
    store: &Store,
    client: &CodegenClient,
    org: OrgId,
    run: RunId,
) -> Result<RunCheck, ActionError> {
    let stored = store
        .get_run(org.0, run.0)
        .map_err(|e| ActionError::transient(format!("reading the run from the store: {e}")))?;
    if let Some(record) = stored {
        let terminal = record
            .status
            .as_deref()
            .is_some_and(|s| RunStatus::parse(s).is_terminal());
        return Ok(if terminal {
            RunCheck::Terminal(record.raw)
        } else {
            RunCheck::NotYet { tracked: true }
        });
    }
    let current = client
        .get_run(org, run)
        .await
        .map_err(ActionError::from_api)?;
    if current.status.as_ref().is_some_and(RunStatus::is_terminal) {
        let raw = serde_json::to_value(&current)
            .map_err(|e| ActionError::permanent(format!("encoding the run: {e}")))?;
        return Ok(RunCheck::Terminal(raw));
    }
    Ok(RunCheck::NotYet { tracked: false })
}

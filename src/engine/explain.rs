//! What `explain` shows of a run: each recorded event with every rule's decision on it and the
//! jobs its firings created. Read from the store by the `explain` command, or, while a daemon
//! holds the store, by that daemon for the command (`GET /explain/{run_id}` on its admin socket).

use serde::{Deserialize, Serialize};

use crate::store::{EventRecord, JobRecord, JournalRecord, Store, StoreError};

/// One event of a run and what the rules made of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainedEvent {
    pub event: EventRecord,
    /// The journal: one decision per rule offered the event.
    pub decisions: Vec<JournalRecord>,
    /// Jobs created by firings on this event.
    pub jobs: Vec<JobRecord>,
}

/// Every recorded event of run `run_id` in any of `orgs`, oldest first, with its decisions and
/// jobs. Empty when nothing of that run was recorded.
pub fn explain_run(
    store: &Store,
    orgs: &[i64],
    run_id: i64,
) -> Result<Vec<ExplainedEvent>, StoreError> {
    let mut events = Vec::new();
    for &org in orgs {
        events.extend(store.events_of_run(org, run_id)?);
    }
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    let mut jobs: Vec<JobRecord> = Vec::new();
    for job in store.jobs() {
        let job = job?;
        if ids.contains(&job.event_id.as_str()) {
            jobs.push(job);
        }
    }
    let mut explained = Vec::with_capacity(events.len());
    for event in events {
        let decisions = store.journal_of_event(event.seq)?;
        let own_jobs = jobs
            .iter()
            .filter(|j| j.event_id == event.id)
            .cloned()
            .collect();
        explained.push(ExplainedEvent {
            event,
            decisions,
            jobs: own_jobs,
        });
    }
    Ok(explained)
}

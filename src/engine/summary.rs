//! The `summary` a scheduled rule sees: counts by status and the failed runs of the last 24 h,
//! read from the store's transitions.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::api::RunStatus;
use crate::rules::eval::rfc3339;
use crate::store::{Store, StoreError};

/// The window a summary covers.
pub const SUMMARY_WINDOW: chrono::Duration = chrono::Duration::hours(24);
/// Most failed runs listed (the count is exact whatever the list holds).
pub const MAX_FAILED_RUNS: usize = 50;

/// Whether a status counts as a failure in summaries: the run ended without finishing its
/// work for a reason other than someone stopping it.
pub fn is_failure(status: &str) -> bool {
    matches!(
        RunStatus::parse(status),
        RunStatus::Failed
            | RunStatus::Error
            | RunStatus::Timeout
            | RunStatus::MaxIterationsReached
            | RunStatus::OutOfTokens
    )
}

/// The summary of the 24 hours before `now`:
/// `{since, until, total, created, finished, failed, by_status, failed_runs}`.
///
/// `total` counts runs with any transition in the window, `by_status` their current statuses,
/// `created`/`finished`/`failed` the runs first seen, ended, or ended in failure in it;
/// `failed_runs` lists the latter (`{id, org_id, status, web_url, at}`), newest first.
pub fn summarize(store: &Store, now: DateTime<Utc>) -> Result<Value, StoreError> {
    let since = now - SUMMARY_WINDOW;
    let mut touched = BTreeSet::new();
    let mut created = BTreeSet::new();
    let mut finished = BTreeSet::new();
    let mut failed: BTreeMap<(i64, i64), (String, DateTime<Utc>)> = BTreeMap::new();
    for transition in store.transitions(Some(since)) {
        let t = transition?;
        if t.at > now {
            continue;
        }
        let run = (t.org_id, t.run_id);
        touched.insert(run);
        if t.first_sight {
            created.insert(run);
        }
        let Some(to) = t.to.as_deref() else { continue };
        if RunStatus::parse(to).is_terminal() {
            finished.insert(run);
        }
        if is_failure(to) {
            failed.insert(run, (to.to_owned(), t.at));
        }
    }
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let mut web_urls = BTreeMap::new();
    for &(org, id) in &touched {
        let record = store.get_run(org, id)?;
        let status = record
            .as_ref()
            .and_then(|r| r.status.clone())
            .unwrap_or_else(|| "UNKNOWN".to_owned());
        *by_status.entry(status).or_default() += 1;
        if let Some(url) = record.as_ref().and_then(|r| r.raw.get("web_url").cloned()) {
            web_urls.insert((org, id), url);
        }
    }
    let mut failed_runs: Vec<_> = failed.iter().collect();
    failed_runs.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(a.0.cmp(b.0)));
    let failed_runs: Vec<Value> = failed_runs
        .into_iter()
        .take(MAX_FAILED_RUNS)
        .map(|((org, id), (status, at))| {
            json!({
                "id": id,
                "org_id": org,
                "status": status,
                "web_url": web_urls.get(&(*org, *id)).cloned().unwrap_or(Value::Null),
                "at": rfc3339(*at),
            })
        })
        .collect();
    Ok(json!({
        "since": rfc3339(since),
        "until": rfc3339(now),
        "total": touched.len(),
        "created": created.len(),
        "finished": finished.len(),
        "failed": failed.len(),
        "by_status": by_status,
        "failed_runs": failed_runs,
    }))
}

//! One verified delivery into the store: the delivery and its `github.<event>` event, tied to
//! the agent run whose PR it concerns, written in one transaction and handed to the event sink
//! inside it (so the rules engine's decisions and jobs commit with it).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::subject::{pr_subject, PrSubject};
use crate::api::PullRequest;
use crate::events::{pr_context, EventKind, EventSink};
use crate::store::pr_index::{branch_key, parse_pr_url, pr_key};
use crate::store::{DeliveryRecord, EventRecord, EventSource, NewEvent, RunRecord, Tx, TxAbort};

/// A delivery whose signature and headers were checked and whose body parsed.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// `X-GitHub-Delivery`.
    pub id: &'a str,
    /// `X-GitHub-Event`.
    pub event: &'a str,
    pub received_at: DateTime<Utc>,
    /// The raw body, exactly the bytes the signature covered.
    pub body: &'a [u8],
    /// The parsed payload.
    pub payload: &'a Value,
}

/// What recording a delivery did.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// Stored with its new event.
    New(EventRecord),
    /// This delivery id was stored before: nothing written.
    Duplicate,
}

/// The stable id of the event of a delivery.
pub fn event_id(delivery: &str) -> String {
    format!("github/{delivery}")
}

/// Records `delivery` (see the module docs). Pure apart from `tx` writes: the store may run it
/// more than once.
pub fn record_delivery(
    tx: &Tx<'_>,
    delivery: &Delivery<'_>,
    sink: &dyn EventSink,
) -> Result<Recorded, TxAbort> {
    let stored = DeliveryRecord {
        id: delivery.id.to_owned(),
        event: delivery.event.to_owned(),
        received_at: delivery.received_at,
        body: delivery.body.to_vec(),
        processed: true,
    };
    if !tx.insert_delivery(&stored)? {
        return Ok(Recorded::Duplicate);
    }
    let subject = pr_subject(delivery.payload);
    let found = match &subject {
        Some(subject) => find_run(tx, subject)?,
        None => None,
    };
    let (run, pr) = match found {
        Some((record, pr)) => (Some(record), pr),
        None => (None, subject.and_then(|s| s.context)),
    };
    let event = NewEvent {
        id: event_id(delivery.id),
        kind: EventKind::Github(delivery.event.to_owned()).as_str(),
        at: delivery.received_at,
        source: EventSource::Webhook,
        org_id: run.as_ref().map(|r| r.org_id),
        run_id: run.as_ref().map(|r| r.run_id),
        data: event_data(delivery, run.map(|r| r.raw), pr),
    };
    // The event id derives from the delivery id, which was new: the event is new too, unless
    // retention kept an event longer than its delivery (it never does).
    let Some(seq) = tx.insert_event(event.clone())? else {
        return Ok(Recorded::Duplicate);
    };
    let record = EventRecord {
        seq,
        id: event.id,
        kind: event.kind,
        at: event.at,
        source: event.source,
        org_id: event.org_id,
        run_id: event.run_id,
        data: event.data,
    };
    sink.on_event(tx, &record)?;
    Ok(Recorded::New(record))
}

/// The event's data (contracts: `payload`, `action`, `delivery`, `run`, `pr`). Built as a map
/// rather than with `json!`, which would copy the payload by serializing it again.
fn event_data(delivery: &Delivery<'_>, run: Option<Value>, pr: Option<Value>) -> Value {
    let action = delivery.payload.get("action").and_then(Value::as_str);
    let mut data = serde_json::Map::with_capacity(5);
    data.insert("payload".into(), delivery.payload.clone());
    data.insert("action".into(), action.map_or(Value::Null, |a| json!(a)));
    data.insert("delivery".into(), json!(delivery.id));
    data.insert("run".into(), run.unwrap_or(Value::Null));
    data.insert("pr".into(), pr.unwrap_or(Value::Null));
    Value::Object(data)
}

/// The newest agent run with a PR named by `subject` (by number first, then by head branch),
/// with the `pr` context of that PR.
fn find_run(
    tx: &Tx<'_>,
    subject: &PrSubject,
) -> Result<Option<(RunRecord, Option<Value>)>, TxAbort> {
    let by_number = subject.numbers.iter().map(|&n| pr_key(&subject.repo, n));
    let by_branch = subject
        .branches
        .iter()
        .map(|b| branch_key(&subject.repo, b));
    for key in by_number.chain(by_branch) {
        let runs = tx.runs_for_pr(&key)?;
        let Some(&(org, run)) = runs.iter().max_by_key(|(_, run)| *run) else {
            continue;
        };
        if let Some(record) = tx.get_run(org, run)? {
            let pr = matching_pr(&record.raw, subject).or_else(|| subject.context.clone());
            return Ok(Some((record, pr)));
        }
    }
    Ok(None)
}

/// The `pr` context of the run's PR that `subject` names.
fn matching_pr(raw: &Value, subject: &PrSubject) -> Option<Value> {
    let prs: Vec<PullRequest> = raw
        .get("github_pull_requests")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let same_pr = |pr: &PullRequest| {
        pr.url
            .as_deref()
            .and_then(parse_pr_url)
            .is_some_and(|(repo, number)| {
                repo.eq_ignore_ascii_case(&subject.repo) && subject.numbers.contains(&number)
            })
    };
    let same_branch = |pr: &PullRequest| {
        let repo_matches = pr
            .url
            .as_deref()
            .and_then(parse_pr_url)
            .is_some_and(|(repo, _)| repo.eq_ignore_ascii_case(&subject.repo));
        repo_matches
            && pr
                .head_branch_name
                .as_ref()
                .is_some_and(|b| subject.branches.contains(b))
    };
    prs.iter()
        .find(|pr| same_pr(pr))
        .or_else(|| prs.iter().find(|pr| same_branch(pr)))
        .map(pr_context)
}

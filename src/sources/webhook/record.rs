//! One verified delivery into the store: the delivery and its `github.<event>` event, tied to
//! the agent run whose PR it concerns, written in one transaction and handed to the event sink
//! inside it (so the rules engine's decisions and jobs commit with it).
//!
//! The payload is stored once, verbatim, as the event's `data.payload`; the delivery record is
//! the dedupe marker and keeps only its id, event name and arrival time.

use std::cell::RefCell;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::subject::{pr_subject, PrSubject};
use crate::api::PullRequest;
use crate::events::{pr_context, EventKind, EventSink};
use crate::store::pr_index::{branch_key, parse_pr_url, pr_key};
use crate::store::{
    DeliveryRecord, EventRecord, EventSource, NewEvent, Payload, RunRecord, Tx, TxAbort,
};

/// A delivery whose signature and headers were checked and whose payload was read.
#[derive(Debug)]
pub struct Delivery {
    /// `X-GitHub-Delivery`.
    pub id: String,
    /// `X-GitHub-Event`.
    pub event: String,
    pub received_at: DateTime<Utc>,
    /// The payload's JSON text as received (the body, or a form body's `payload` field), checked
    /// as strictly as a parse into a `Value`; compressed when large, before it reaches the one
    /// delivery writer.
    raw: Payload,
    /// The payload parsed, when the sink wants it: lent to the event for the sink.
    payload: RefCell<Option<Value>>,
    /// The payload's `action`.
    action: Option<String>,
    /// What the payload says about its PR (read once, outside the transaction).
    subject: Option<PrSubject>,
}

/// What was read of a payload: all of it, or its [`skeleton`](super::skeleton::skeleton).
#[derive(Debug)]
pub enum Parsed {
    Full(Value),
    Skeleton(Value),
}

impl Delivery {
    /// A delivery of the JSON text `raw`, of which `parsed` was read: reading it (in full or as
    /// its skeleton) is what checked the text.
    pub fn new(
        id: String,
        event: String,
        received_at: DateTime<Utc>,
        raw: String,
        parsed: Parsed,
    ) -> Delivery {
        let read = match &parsed {
            Parsed::Full(value) | Parsed::Skeleton(value) => value,
        };
        let subject = pr_subject(read);
        let action = read
            .get("action")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let payload = match parsed {
            Parsed::Full(value) => Some(value),
            Parsed::Skeleton(_) => None,
        };
        Delivery {
            id,
            event,
            received_at,
            raw: Payload::new(raw),
            payload: RefCell::new(payload),
            action,
            subject,
        }
    }

    /// Approximate bytes held (for batching by size).
    pub fn size(&self) -> usize {
        self.raw.json().len()
    }
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
/// more than once. A new event comes back with a null `payload`: the store may still retry, so
/// the parsed payload stays with the delivery until [`take_payload`] after the commit.
pub fn record_delivery(
    tx: &Tx<'_>,
    delivery: &Delivery,
    sink: &dyn EventSink,
) -> Result<Recorded, TxAbort> {
    let stored = DeliveryRecord {
        id: delivery.id.clone(),
        event: delivery.event.clone(),
        received_at: delivery.received_at,
        body: Vec::new(),
        processed: true,
    };
    if !tx.insert_delivery(&stored)? {
        return Ok(Recorded::Duplicate);
    }
    let found = match &delivery.subject {
        Some(subject) => find_run(tx, subject)?,
        None => None,
    };
    let (run, pr) = match found {
        Some((record, pr)) => (Some(record), pr),
        None => (
            None,
            delivery.subject.as_ref().and_then(|s| s.context.clone()),
        ),
    };
    let kind = EventKind::Github(delivery.event.clone()).as_str();
    // Only a skeleton was read because no rule listened; one listens now (a reload in between).
    if delivery.payload.borrow().is_none() && sink.wants(&kind) {
        // The skeleton was checked as strictly as this parse: it does not fail.
        let full = serde_json::from_str(delivery.raw.json()).map_err(TxAbort::abort)?;
        delivery.payload.replace(Some(full));
    }
    let event = NewEvent {
        id: event_id(&delivery.id),
        kind,
        at: delivery.received_at,
        source: EventSource::Webhook,
        org_id: run.as_ref().map(|r| r.org_id),
        run_id: run.as_ref().map(|r| r.run_id),
        data: json!({
            "action": delivery.action,
            "delivery": delivery.id,
            "run": run.map(|r| r.raw).unwrap_or(Value::Null),
            "pr": pr.unwrap_or(Value::Null),
        }),
    };
    // The event id derives from the delivery id, which was new: the event is new too, unless
    // retention kept an event longer than its delivery (the event of an open job); then the
    // delivery is treated as the redelivery it is.
    let Some(seq) = tx.insert_event_with_payload(&event, &delivery.raw)? else {
        return Ok(Recorded::Duplicate);
    };
    let mut record = event.into_record(seq);
    // Lend the parsed payload to the sink without copying it, and take it back whatever the
    // sink answered: a retried transaction needs it again.
    let lent = delivery.payload.take();
    let parsed = lent.is_some();
    record.data["payload"] = lent.unwrap_or(Value::Null);
    let sunk = sink.on_event(tx, &record);
    if parsed {
        delivery
            .payload
            .replace(Some(record.data["payload"].take()));
    }
    sunk?;
    Ok(Recorded::New(record))
}

/// Completes an event [`record_delivery`] returned once its transaction committed: moves the
/// parsed payload into it (the payload stays null when it was not parsed: no rule listened).
pub fn take_payload(delivery: &Delivery, recorded: Recorded) -> Recorded {
    match recorded {
        Recorded::New(mut record) => {
            record.data["payload"] = delivery.payload.take().unwrap_or(Value::Null);
            Recorded::New(record)
        }
        duplicate => duplicate,
    }
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

//! Turning one fetched run into what the store records: the new snapshot, at most one transition,
//! and the events of DESIGN §5, all inside one store transaction.
//!
//! The comparison is made against the snapshot read *inside* the transaction, so overlapping or
//! repeated observations of the same state record nothing twice.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::api::{AgentRun, PullRequest, RunStatus};
use crate::events::{pr_opened_id, run_event_data, EventKind, EventSink};
use crate::store::{EventRecord, EventSource, NewEvent, NewTransition, RunRecord, Tx, TxAbort};

/// How an observation is to be recorded.
#[derive(Debug, Clone, Copy)]
pub struct ObserveContext {
    pub at: DateTime<Utc>,
    pub source: EventSource,
    /// A non-terminal status unchanged this long is reported once as `run.stalled`.
    pub stall_after: Duration,
    /// The first sync of an empty store: record snapshots and transitions, emit no events, so a
    /// new deployment does not react to the whole history of the organization.
    pub baseline: bool,
}

/// What one observation changed.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// The run was stored for the first time.
    pub first_sight: bool,
    /// The status changed (or was first seen).
    pub transitioned: bool,
    /// Events inserted by this observation (none if they existed already).
    pub events: Vec<EventRecord>,
}

/// The normalized status text stored and compared (known values uppercase, unknown as sent).
pub fn status_text(run: &AgentRun) -> Option<String> {
    run.status.as_ref().map(|s| s.as_str().to_owned())
}

fn parse_status(text: Option<&str>) -> Option<RunStatus> {
    text.map(RunStatus::parse)
}

fn is_terminal(status: &Option<RunStatus>) -> bool {
    status.as_ref().is_some_and(RunStatus::is_terminal)
}

/// Records one observation of `run` (whose API JSON is `raw`). Must be called inside
/// [`crate::store::Store::transaction`]; pure apart from `tx` writes.
pub fn record_run(
    tx: &Tx<'_>,
    run: &AgentRun,
    raw: &Value,
    ctx: &ObserveContext,
    sink: &dyn EventSink,
) -> Result<Observed, TxAbort> {
    let (org, id) = (run.organization_id.0, run.id.0);
    match tx.get_run(org, id)? {
        None => first_sight(tx, run, raw, ctx, sink),
        Some(stored) => follow_up(tx, stored, run, raw, ctx, sink),
    }
}

fn first_sight(
    tx: &Tx<'_>,
    run: &AgentRun,
    raw: &Value,
    ctx: &ObserveContext,
    sink: &dyn EventSink,
) -> Result<Observed, TxAbort> {
    let status = status_text(run);
    let mut record = RunRecord {
        org_id: run.organization_id.0,
        run_id: run.id.0,
        status: status.clone(),
        raw: raw.clone(),
        pr_ids: run.pull_requests().iter().map(|pr| pr.id).collect(),
        last_seq: 0,
        status_since: ctx.at,
        stalled_reported: false,
        first_seen: ctx.at,
        last_seen: ctx.at,
    };
    let change = NewTransition {
        from: None,
        to: status.clone(),
        first_sight: true,
        at: ctx.at,
        source: ctx.source,
    };
    let transition = tx.append_transition(&mut record, change)?;
    let mut observed = Observed {
        first_sight: true,
        transitioned: true,
        events: Vec::new(),
    };
    if ctx.baseline {
        return Ok(observed);
    }
    let mut emit = Emitter::new(tx, &record, ctx, sink, &mut observed);
    let first_pr = run.pull_requests().first();
    emit.transition_event(EventKind::RunCreated, transition.seq, None, first_pr)?;
    if is_terminal(&run.status) {
        emit.transition_event(EventKind::RunFinished, transition.seq, None, first_pr)?;
    }
    for pr in run.pull_requests() {
        emit.pr_opened(pr)?;
    }
    Ok(observed)
}

fn follow_up(
    tx: &Tx<'_>,
    stored: RunRecord,
    run: &AgentRun,
    raw: &Value,
    ctx: &ObserveContext,
    sink: &dyn EventSink,
) -> Result<Observed, TxAbort> {
    let mut record = stored.clone();
    let mut observed = Observed::default();
    let new_status = status_text(run);
    let old = parse_status(stored.status.as_deref());
    let new = run.status.clone();
    record.raw = raw.clone();

    let mut pending: Vec<(EventKind, u32)> = Vec::new();
    if new_status != stored.status {
        let change = NewTransition {
            from: stored.status.clone(),
            to: new_status.clone(),
            first_sight: false,
            at: ctx.at,
            source: ctx.source,
        };
        record.status = new_status;
        record.status_since = ctx.at;
        record.stalled_reported = false;
        let transition = tx.append_transition(&mut record, change)?;
        observed.transitioned = true;
        pending.push((EventKind::RunStatusChanged, transition.seq));
        if is_terminal(&new) {
            pending.push((EventKind::RunFinished, transition.seq));
        }
        let was_waiting = is_terminal(&old) || old == Some(RunStatus::Paused);
        if was_waiting && new.as_ref().is_some_and(RunStatus::is_active) {
            pending.push((EventKind::RunResumed, transition.seq));
        }
    } else if !is_terminal(&new)
        && !record.stalled_reported
        && stalled_for(ctx.at, record.status_since) >= ctx.stall_after
    {
        record.stalled_reported = true;
        pending.push((EventKind::RunStalled, record.last_seq));
    }
    let new_prs: Vec<&PullRequest> = run
        .pull_requests()
        .iter()
        .filter(|pr| !stored.pr_ids.contains(&pr.id))
        .collect();
    record.pr_ids.extend(new_prs.iter().map(|pr| pr.id));

    if record == stored {
        return Ok(observed);
    }
    record.last_seen = ctx.at;
    tx.put_run(&record)?;
    let from = stored.status.as_deref();
    let mut emit = Emitter::new(tx, &record, ctx, sink, &mut observed);
    let first_pr = run.pull_requests().first();
    for (kind, seq) in pending {
        emit.transition_event(kind, seq, from, first_pr)?;
    }
    for pr in new_prs {
        emit.pr_opened(pr)?;
    }
    Ok(observed)
}

fn stalled_for(now: DateTime<Utc>, since: DateTime<Utc>) -> Duration {
    (now - since).to_std().unwrap_or(Duration::ZERO)
}

/// Inserts events for one run and hands each new one to the sink.
struct Emitter<'a, 't> {
    tx: &'a Tx<'t>,
    record: &'a RunRecord,
    ctx: &'a ObserveContext,
    sink: &'a dyn EventSink,
    observed: &'a mut Observed,
}

impl<'a, 't> Emitter<'a, 't> {
    fn new(
        tx: &'a Tx<'t>,
        record: &'a RunRecord,
        ctx: &'a ObserveContext,
        sink: &'a dyn EventSink,
        observed: &'a mut Observed,
    ) -> Self {
        Emitter {
            tx,
            record,
            ctx,
            sink,
            observed,
        }
    }

    fn transition_event(
        &mut self,
        kind: EventKind,
        seq: u32,
        from: Option<&str>,
        pr: Option<&PullRequest>,
    ) -> Result<(), TxAbort> {
        let id = kind.run_event_id(self.record.org_id, self.record.run_id, seq);
        let to = self.record.status.as_deref();
        let data = run_event_data(&self.record.raw, from, to, pr);
        self.insert(id, kind, data)
    }

    fn pr_opened(&mut self, pr: &PullRequest) -> Result<(), TxAbort> {
        let id = pr_opened_id(self.record.org_id, self.record.run_id, pr.id);
        let status = self.record.status.as_deref();
        let data = run_event_data(&self.record.raw, status, status, Some(pr));
        self.insert(id, EventKind::RunPrOpened, data)
    }

    fn insert(&mut self, id: String, kind: EventKind, data: Value) -> Result<(), TxAbort> {
        let event = NewEvent {
            id,
            kind: kind.as_str(),
            at: self.ctx.at,
            source: self.ctx.source,
            org_id: Some(self.record.org_id),
            run_id: Some(self.record.run_id),
            data,
        };
        let Some(seq) = self.tx.insert_event(event.clone())? else {
            return Ok(());
        };
        let record = event.into_record(seq);
        self.sink.on_event(self.tx, &record)?;
        self.observed.events.push(record);
        Ok(())
    }
}
